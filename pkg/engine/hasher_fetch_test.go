package engine

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// brokenBody yields body and then fails, like a range whose transactional
// checksum did not match after its bytes were handed on.
type brokenBody struct{ r io.Reader }

func (b brokenBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errors.New("transactional md5 mismatch")
	}
	return n, err
}

// The first chunk holds the hashed frontier and hashes inline; its first
// attempt delivers corrupt bytes and then fails. The retry rewrites them,
// and the digest must be the one of the bytes on disk: the file verifies
// without a whole-file refetch.
func TestFetchFrontierAttemptFailingAfterCorruptBytesNeedsNoRefetch(t *testing.T) {
	data := randBytes(31, 256<<10) // 4 chunks of 64 KiB
	want := sumOf(checksum.SHA256, data)
	var once atomic.Bool
	src := &memSource{data: data}
	src.fault = func(call, off, length int64) (io.Reader, error) {
		if off == 0 && once.CompareAndSwap(false, true) {
			b := append([]byte(nil), data[:length/2]...)
			b[7] ^= 0xff
			return brokenBody{strings.NewReader(string(b))}, nil
		}
		return nil, nil
	}
	dest := t.TempDir()
	rep, err := fastEngine().Fetch(context.Background(), dest, []File{{Path: "w", Size: int64(len(data)), Expect: []checksum.Value{want}, Source: src}})
	require.NoError(t, err)
	requireFile(t, filepath.Join(dest, "w"), data)
	assert.Equal(t, "sha256", rep.Files[0].Verified)
	assert.Equal(t, int64(5), src.calls.Load(), "4 chunks + 1 retry: no refetch of the whole file after a mismatch")
}

func TestResumeMidFileHashesTheResumedPrefixFromDisk(t *testing.T) {
	data := randBytes(32, 2<<20) // 32 chunks
	for _, alg := range []checksum.Algorithm{checksum.SHA256, checksum.MD5} {
		want := sumOf(alg, data)
		dest := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		first := &memSource{data: data}
		first.fault = func(call, off, length int64) (io.Reader, error) {
			if call == 12 {
				cancel()
			}
			return nil, nil
		}
		f := File{Path: "m", Size: int64(len(data)), Identity: "v1", Expect: []checksum.Value{want}}
		f.Source = first
		_, err := fastEngine().Fetch(ctx, dest, []File{f})
		require.ErrorContains(t, err, "interrupted")
		second := &memSource{data: data}
		f.Source = second
		rep, err := fastEngine().Fetch(context.Background(), dest, []File{f})
		require.NoError(t, err)
		requireFile(t, filepath.Join(dest, "m"), data)
		assert.Equal(t, StatusResumed, rep.Files[0].Status, alg)
		assert.Equal(t, string(alg), rep.Files[0].Verified)
		assert.Less(t, second.served.Load(), int64(len(data)), "%s: only the missing chunks are fetched", alg)
	}
}

// orderedSource records which file each request was for.
type orderedSource struct {
	*memSource
	name string
	mu   *sync.Mutex
	log  *[]string
}

func (o orderedSource) Load(ctx context.Context, length, offset int64, fn func(io.Reader) error) error {
	o.mu.Lock()
	*o.log = append(*o.log, o.name)
	o.mu.Unlock()
	return o.memSource.Load(ctx, length, offset, fn)
}

// Large files with sequential digests are downloaded side by side, so
// their digests can run on every core during the download.
func TestFilesHandOutChunksInTurn(t *testing.T) {
	var mu sync.Mutex
	var log []string
	var files []File
	for i, name := range []string{"a", "b", "c"} {
		data := randBytes(uint64(40+i), 16*64<<10)
		files = append(files, File{Path: name, Size: int64(len(data)), Expect: []checksum.Value{sumOf(checksum.SHA256, data)},
			Source: orderedSource{memSource: &memSource{data: data}, name: name, mu: &mu, log: &log}})
	}
	dest := t.TempDir()
	rep, err := fastEngine().Fetch(context.Background(), dest, files)
	require.NoError(t, err)
	require.Len(t, rep.Files, 3)
	for _, f := range files {
		requireFile(t, filepath.Join(dest, f.Path), f.Source.(orderedSource).data)
	}
	first := map[string]bool{}
	for _, n := range log[:6] {
		first[n] = true
	}
	assert.GreaterOrEqual(t, len(first), 2, "the first requests go to several files: %v", log[:6])
}

func TestEmptyFileWithADigestIsVerified(t *testing.T) {
	dest := t.TempDir()
	rep, err := fastEngine().Fetch(context.Background(), dest, []File{
		{Path: "e", Size: 0, Expect: []checksum.Value{sumOf(checksum.SHA256, nil)}, Source: &memSource{}},
		{Path: "g", Size: 0, Expect: []checksum.Value{{Algorithm: checksum.GitSHA1, Sum: gitSHA1Of(nil)}}, Source: &memSource{}},
	})
	require.NoError(t, err)
	require.Len(t, rep.Files, 2)
	for _, name := range []string{"e", "g"} {
		fi, err := os.Stat(filepath.Join(dest, name))
		require.NoError(t, err)
		assert.Zero(t, fi.Size())
	}
}

func gitSHA1Of(b []byte) []byte {
	h := checksum.GitSHA1.NewSized(int64(len(b)))
	h.Write(b)
	return h.Sum(nil)
}
