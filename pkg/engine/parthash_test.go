package engine

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// multipartETag is what S3 makes of an upload in parts of these sizes:
// "hex(md5(md5(part1) ‖ … ‖ md5(partN)))-N", parsed.
func multipartETag(t *testing.T, data []byte, sizes []int64) (checksum.Value, []Part) {
	t.Helper()
	var cat []byte
	var parts []Part
	var off int64
	for _, s := range sizes {
		sum := md5.Sum(data[off : off+s])
		cat = append(cat, sum[:]...)
		parts = append(parts, Part{Size: s})
		off += s
	}
	require.Equal(t, int64(len(data)), off)
	v, err := checksum.ParseMultipartETag(fmt.Sprintf("%x-%d", md5.Sum(cat), len(sizes)))
	require.NoError(t, err)
	return v, parts
}

func TestMultipartETagVerifiedFromPartMD5s(t *testing.T) {
	data := randBytes(21, 1<<20+5000)
	for _, tc := range []struct {
		name  string
		sizes []int64
		conc  int
	}{
		// 64 KiB parts = 64 KiB chunks; parts queue for md5-simd's lanes.
		{"parts fit a range", repeatParts(64<<10, 16, 5000), 16},
		{"one request at a time", repeatParts(64<<10, 16, 5000), 1},
		// 160 KiB parts over 64 KiB ranges.
		{"parts span ranges", repeatParts(160<<10, 6, 1<<20+5000-6*(160<<10)), 16},
		{"unequal parts", []int64{100 << 10, 300 << 10, 64 << 10, 1<<20 + 5000 - 464<<10}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			etag, parts := multipartETag(t, data, tc.sizes)
			dest := t.TempDir()
			rep, err := fastEngine(WithConcurrency(tc.conc), WithVerify(VerifyStrict)).Fetch(context.Background(), dest,
				[]File{{Path: "w.bin", Size: int64(len(data)), Parts: parts, Expect: []checksum.Value{etag}, Source: &memSource{data: data}}})
			require.NoError(t, err)
			requireFile(t, filepath.Join(dest, "w.bin"), data)
			assert.Equal(t, fmt.Sprintf("md5 of %d parts (multipart ETag)", len(parts)), rep.Files[0].Verified)
			assert.Equal(t, etag.String(), rep.Files[0].Digest)
		})
	}
}

func repeatParts(size int64, n int, last int64) []int64 {
	out := make([]int64, 0, n+1)
	for range n {
		out = append(out, size)
	}
	return append(out, last)
}

func TestMultipartETagMismatchRefetchesOnceThenFails(t *testing.T) {
	data := randBytes(22, 600<<10)
	for _, sizes := range [][]int64{repeatParts(64<<10, 9, 24<<10), repeatParts(200<<10, 2, 200<<10)} { // inline, read back
		etag, parts := multipartETag(t, data, sizes)
		bad := append([]byte(nil), data...)
		bad[len(bad)/2] ^= 1
		src := &memSource{data: bad}
		dest := t.TempDir()
		_, err := fastEngine(WithConcurrency(16)).Fetch(context.Background(), dest,
			[]File{{Path: "w.bin", Size: int64(len(data)), Parts: parts, Expect: []checksum.Value{etag}, Source: src}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "checksum mismatch for w.bin: md5 of")
		assert.Contains(t, err.Error(), "(multipart ETag) expected "+etag.String()+", got ")
		assert.Contains(t, err.Error(), "after one refetch")
		assert.Equal(t, 2*int64(len(data)), src.served.Load(), "fetched twice, then failed")
		_, statErr := os.Stat(filepath.Join(dest, "w.bin"))
		assert.True(t, errors.Is(statErr, os.ErrNotExist), "a corrupt file never gets its final name")
	}
}

func TestMultipartETagResumeReadsBackWrittenParts(t *testing.T) {
	data := randBytes(23, 2<<20)
	etag, parts := multipartETag(t, data, repeatParts(64<<10, 31, 64<<10))
	file := func(src Loader) []File {
		return []File{{Path: "w.bin", Size: int64(len(data)), Identity: "v1", Parts: parts, Expect: []checksum.Value{etag}, Source: src}}
	}
	dest := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	first := &memSource{data: data}
	first.fault = func(call, off, length int64) (io.Reader, error) {
		if call == 16 {
			cancel()
		}
		return nil, nil
	}
	_, err := fastEngine(WithConcurrency(4)).Fetch(ctx, dest, file(first))
	require.Error(t, err)
	second := &memSource{data: data}
	rep, err := fastEngine(WithConcurrency(16)).Fetch(context.Background(), dest, file(second))
	require.NoError(t, err)
	assert.Equal(t, StatusResumed, rep.Files[0].Status)
	assert.Less(t, second.served.Load(), int64(len(data)))
	assert.Equal(t, "md5 of 32 parts (multipart ETag)", rep.Files[0].Verified)
	requireFile(t, filepath.Join(dest, "w.bin"), data)
}

func TestPartDigestsMatchCryptoMD5(t *testing.T) {
	data := randBytes(24, 3<<20+17)
	want := md5.Sum(data)
	for _, simd := range []bool{false, true} {
		d := newPartDigests(simd)
		h := d.newHash(checksum.MD5)
		for off := 0; off < len(data); off += 100_000 {
			h.Write(data[off:min(off+100_000, len(data))])
		}
		assert.Equal(t, want[:], h.Sum(nil), "simd %v", simd)
		h.Close()
		d.close()
		after := d.newHash(checksum.MD5) // after close: stdlib, never the closed server
		after.Write(data)
		assert.Equal(t, want[:], after.Sum(nil))
	}
}

func TestMultipartETagThroughTheNodeCache(t *testing.T) {
	data := randBytes(25, 1<<20)
	etag, parts := multipartETag(t, data, repeatParts(128<<10, 7, 128<<10))
	file := func(src Loader) []File {
		return []File{{Path: "w/model.bin", Size: int64(len(data)), Identity: `s3://b/model.bin etag="` + etag.String() + `"`,
			Parts: parts, Expect: []checksum.Value{etag}, Source: src}}
	}
	cache := openTestCache(t, t.TempDir(), 0)
	rep, err := fastEngine(WithCache(cache), WithConcurrency(16)).Fetch(context.Background(), t.TempDir(), file(&memSource{data: data}))
	require.NoError(t, err)
	assert.Equal(t, "miss", rep.Files[0].Cache)
	assert.Equal(t, "md5 of 8 parts (multipart ETag)", rep.Files[0].Verified)

	dest := t.TempDir()
	warm := &memSource{data: data}
	rep, err = fastEngine(WithCache(cache), WithConcurrency(16)).Fetch(context.Background(), dest, file(warm))
	require.NoError(t, err)
	assert.Equal(t, StatusCached, rep.Files[0].Status)
	assert.Zero(t, warm.calls.Load())
	requireFile(t, filepath.Join(dest, "w/model.bin"), data)
}
