package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

func fastEngine(opts ...Option) *Engine {
	base := []Option{WithChunkSize(64 << 10), WithConcurrency(4), WithRetry(4, time.Millisecond, 5*time.Millisecond)}
	return New(append(base, opts...)...)
}

func TestFetchManyFilesVerifiesEachWithItsStrongestChecksum(t *testing.T) {
	dest := t.TempDir()
	big := randBytes(1, 1<<20+333) // 17 chunks of 64 KiB
	shaData := randBytes(2, 300<<10)
	md5Data := randBytes(3, 1000)
	plain := randBytes(4, 5000)
	files := []File{
		{Path: "weights/model.bin", Size: int64(len(big)), Source: &memSource{data: big},
			Expect: []checksum.Value{sumOf(checksum.CRC64NVME, big), sumOf(checksum.MD5, big)}},
		{Path: "config.json", Size: int64(len(shaData)), Source: &memSource{data: shaData},
			Expect: []checksum.Value{sumOf(checksum.CRC32C, shaData), sumOf(checksum.SHA256, shaData)}},
		{Path: "a/b/c/tok.txt", Size: int64(len(md5Data)), Source: &memSource{data: md5Data},
			Expect: []checksum.Value{sumOf(checksum.MD5, md5Data)}},
		{Path: "plain", Size: int64(len(plain)), Source: &memSource{data: plain}},
		{Path: "empty", Size: 0, Expect: []checksum.Value{sumOf(checksum.CRC32, nil)}},
	}
	obs := &collector{}
	rep, err := fastEngine(WithObserver(obs)).Fetch(context.Background(), dest, files)
	require.NoError(t, err)
	requireFile(t, filepath.Join(dest, "weights/model.bin"), big)
	requireFile(t, filepath.Join(dest, "config.json"), shaData)
	requireFile(t, filepath.Join(dest, "a/b/c/tok.txt"), md5Data)
	requireFile(t, filepath.Join(dest, "plain"), plain)
	requireFile(t, filepath.Join(dest, "empty"), nil)

	verified := map[string]string{}
	for _, f := range rep.Files {
		verified[f.Path] = f.Verified
		assert.Equal(t, StatusDownloaded, f.Status, f.Path)
	}
	assert.Equal(t, map[string]string{"weights/model.bin": "crc64nvme", "config.json": "sha256",
		"a/b/c/tok.txt": "md5", "plain": "size only", "empty": "crc32"}, verified)
	assert.Len(t, obs.files, 5)
	assert.Equal(t, int64(len(big)+len(shaData)+len(md5Data)+len(plain)), obs.bytes.Load())
	_, err = os.Stat(filepath.Join(dest, StateDir))
	assert.True(t, errors.Is(err, os.ErrNotExist), "state folder must be gone after success")
	fi, err := os.Stat(filepath.Join(dest, "plain"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
}

func TestFetchLargeFileInParallelWithinTheGlobalBound(t *testing.T) {
	data := randBytes(5, 2<<20)
	src := &memSource{data: data, gate: make(chan struct{})}
	// Release tokens slowly so requests pile up to the bound.
	go func() {
		for range 200 {
			src.gate <- struct{}{}
			time.Sleep(time.Millisecond)
		}
	}()
	small := make([]File, 20)
	smallSrc := &memSource{data: randBytes(6, 100), gate: src.gate}
	for i := range small {
		small[i] = File{Path: fmt.Sprintf("s/%02d", i), Size: 100, Source: smallSrc}
	}
	files := append([]File{{Path: "big", Size: int64(len(data)), Source: src,
		Expect: []checksum.Value{sumOf(checksum.CRC32, data)}}}, small...)
	_, err := fastEngine(WithConcurrency(6)).Fetch(context.Background(), t.TempDir(), files)
	require.NoError(t, err)
	assert.Equal(t, int64(32), src.calls.Load(), "2 MiB in 64 KiB chunks")
	assert.Greater(t, src.maxIn.Load(), int64(1), "one large file must be fetched in parallel")
	assert.LessOrEqual(t, src.maxIn.Load()+smallSrc.maxIn.Load(), int64(6+6))
	assert.LessOrEqual(t, src.maxIn.Load(), int64(6))
}

func TestCompositeChecksumChecksEachPart(t *testing.T) {
	data := randBytes(7, 200<<10)
	parts := []int64{80 << 10, 80 << 10, 40 << 10}
	var sums [][]byte
	var ps []Part
	off := int64(0)
	for _, p := range parts {
		v := sumOf(checksum.SHA256, data[off:off+p])
		sums = append(sums, v.Sum)
		ps = append(ps, Part{Size: p, Expect: []checksum.Value{v}})
		off += p
	}
	comp := checksum.Composite(checksum.SHA256, sums)
	dest := t.TempDir()
	src := &memSource{data: data}
	rep, err := fastEngine().Fetch(context.Background(), dest, []File{{Path: "m", Size: int64(len(data)), Parts: ps,
		Expect: []checksum.Value{comp}, Source: src}})
	require.NoError(t, err)
	assert.Equal(t, "sha256 (composite of 3 parts)", rep.Files[0].Verified)
	// 80 KiB parts in 64 KiB chunks: 64+16, 64+16, 40 → 5 requests, none straddling a part.
	assert.Equal(t, int64(5), src.calls.Load())
	requireFile(t, filepath.Join(dest, "m"), data)

	// A composite CRC over the same layout, with one part corrupted at the source.
	crcSums := [][]byte{}
	off = 0
	for _, p := range parts {
		crcSums = append(crcSums, sumOf(checksum.CRC32C, data[off:off+p]).Sum)
		off += p
	}
	bad := append([]byte(nil), data...)
	bad[100<<10] ^= 0xff
	dest2 := t.TempDir()
	_, err = fastEngine().Fetch(context.Background(), dest2, []File{{Path: "m", Size: int64(len(data)),
		Parts:  []Part{{Size: parts[0]}, {Size: parts[1]}, {Size: parts[2]}},
		Expect: []checksum.Value{checksum.Composite(checksum.CRC32C, crcSums)}, Source: &memSource{data: bad}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "checksum mismatch for m: crc32c (composite of 3 parts) expected")
	_, statErr := os.Stat(filepath.Join(dest2, "m"))
	assert.True(t, errors.Is(statErr, os.ErrNotExist), "a corrupt file must never get its final name")
}

func TestMismatchRefetchesOnceThenFailsNamingTheValues(t *testing.T) {
	data := randBytes(8, 100<<10)
	want := sumOf(checksum.SHA256, data)

	// Corrupt on the first pass only: the refetch repairs it.
	flaky := &memSource{data: data}
	flaky.fault = func(call, off, length int64) (io.Reader, error) {
		if call == 1 {
			b := append([]byte(nil), data[off:off+length]...)
			b[0] ^= 1
			return strings.NewReader(string(b)), nil
		}
		return nil, nil
	}
	dest := t.TempDir()
	_, err := fastEngine().Fetch(context.Background(), dest, []File{{Path: "w", Size: int64(len(data)), Expect: []checksum.Value{want}, Source: flaky}})
	require.NoError(t, err)
	requireFile(t, filepath.Join(dest, "w"), data)

	// Always corrupt: fail with file, algorithm, expected and actual values.
	bad := append([]byte(nil), data...)
	bad[5] ^= 1
	dest = t.TempDir()
	_, err = fastEngine().Fetch(context.Background(), dest, []File{{Path: "w", Size: int64(len(data)), Expect: []checksum.Value{want}, Source: &memSource{data: bad}}})
	require.Error(t, err)
	got := sumOf(checksum.SHA256, bad)
	assert.Contains(t, err.Error(), fmt.Sprintf("checksum mismatch for w: sha256 expected %s, got %s", want, got))
	_, statErr := os.Stat(filepath.Join(dest, "w"))
	assert.True(t, errors.Is(statErr, os.ErrNotExist))
}

func TestRetriesTransientErrorsAndBoundsAttempts(t *testing.T) {
	data := randBytes(9, 10<<10)
	src := &memSource{data: data}
	src.fault = func(call, off, length int64) (io.Reader, error) {
		switch call {
		case 1:
			return nil, errors.New("connection reset by peer")
		case 2:
			return strings.NewReader(string(data[off : off+length/2])), nil // short body
		}
		return nil, nil
	}
	dest := t.TempDir()
	_, err := fastEngine().Fetch(context.Background(), dest, []File{{Path: "f", Size: int64(len(data)), Source: src}})
	require.NoError(t, err)
	assert.Equal(t, int64(3), src.calls.Load())
	requireFile(t, filepath.Join(dest, "f"), data)

	always := &memSource{data: data, fault: func(int64, int64, int64) (io.Reader, error) { return nil, errors.New("503 SlowDown") }}
	_, err = fastEngine().Fetch(context.Background(), t.TempDir(), []File{{Path: "f", Size: int64(len(data)), Source: always}})
	require.ErrorContains(t, err, "gave up after 4 attempts: 503 SlowDown")
	assert.Equal(t, int64(4), always.calls.Load())

	perm := &memSource{data: data, fault: func(int64, int64, int64) (io.Reader, error) {
		return nil, Permanent(errors.New("access denied"))
	}}
	_, err = fastEngine().Fetch(context.Background(), t.TempDir(), []File{{Path: "f", Size: int64(len(data)), Source: perm}})
	require.ErrorContains(t, err, "access denied")
	assert.Equal(t, int64(1), perm.calls.Load(), "permanent errors are not retried")
}

func TestStalledRequestIsCancelledAndRetried(t *testing.T) {
	data := randBytes(10, 1000)
	src := &memSource{data: data}
	src.fault = func(call, off, length int64) (io.Reader, error) {
		if call == 1 {
			return stallReader{}, nil
		}
		return nil, nil
	}
	dest := t.TempDir()
	start := time.Now()
	_, err := fastEngine(WithReadTimeout(100*time.Millisecond)).Fetch(context.Background(), dest,
		[]File{{Path: "f", Size: int64(len(data)), Source: src}})
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, int64(2), src.calls.Load())
}

// stallReader never yields a byte (the ctxReader wrapper notices cancellation).
type stallReader struct{}

func (stallReader) Read(p []byte) (int, error) { time.Sleep(10 * time.Millisecond); return 0, nil }

func TestResumeAfterKillFetchesOnlyWhatIsMissing(t *testing.T) {
	data := randBytes(11, 4<<20) // 64 chunks
	want := sumOf(checksum.CRC64NVME, data)
	dest := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	first := &memSource{data: data}
	first.fault = func(call, off, length int64) (io.Reader, error) {
		if call == 30 {
			cancel() // the "kill": in-flight requests are abandoned
		}
		return nil, nil
	}
	_, err := fastEngine().Fetch(ctx, dest, []File{{Path: "m", Size: int64(len(data)), Identity: "v1", Expect: []checksum.Value{want}, Source: first}})
	require.ErrorContains(t, err, "interrupted")
	_, statErr := os.Stat(filepath.Join(dest, "m"))
	require.True(t, errors.Is(statErr, os.ErrNotExist), "no partial file under the final name")

	second := &memSource{data: data}
	rep, err := fastEngine().Fetch(context.Background(), dest, []File{{Path: "m", Size: int64(len(data)), Identity: "v1", Expect: []checksum.Value{want}, Source: second}})
	require.NoError(t, err)
	requireFile(t, filepath.Join(dest, "m"), data)
	assert.Equal(t, StatusResumed, rep.Files[0].Status)
	chunk := int64(64 << 10)
	// At most what the first run had not written, plus one chunk per request in flight.
	notWritten := int64(len(data)) - (first.served.Load()/chunk-4)*chunk
	assert.LessOrEqual(t, second.served.Load(), notWritten+4*chunk)
	assert.Less(t, second.served.Load(), int64(len(data)))

	// A third run finds the file present and fetches nothing.
	third := &memSource{data: data}
	rep, err = fastEngine().Fetch(context.Background(), dest, []File{{Path: "m", Size: int64(len(data)), Identity: "v1", Expect: []checksum.Value{want}, Source: third}})
	require.NoError(t, err)
	assert.Equal(t, StatusPresent, rep.Files[0].Status)
	assert.Equal(t, int64(0), third.calls.Load())
}

func TestResumeJournalOfAnotherVersionIsDiscarded(t *testing.T) {
	old := randBytes(12, 1<<20)
	data := randBytes(13, 1<<20)
	dest := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	first := &memSource{data: old, fault: func(call, _, _ int64) (io.Reader, error) {
		if call == 8 {
			cancel()
		}
		return nil, nil
	}}
	_, err := fastEngine().Fetch(ctx, dest, []File{{Path: "m", Size: int64(len(old)), Identity: "etag-1", Source: first}})
	require.Error(t, err)
	// Size-only verification would not catch mixed versions: the identity must.
	_, err = fastEngine().Fetch(context.Background(), dest, []File{{Path: "m", Size: int64(len(data)), Identity: "etag-2", Source: &memSource{data: data}}})
	require.NoError(t, err)
	requireFile(t, filepath.Join(dest, "m"), data)
}

func TestRejectsPathsLeavingDest(t *testing.T) {
	parent := t.TempDir()
	dest := filepath.Join(parent, "dest")
	outside := filepath.Join(parent, "outside")
	require.NoError(t, os.MkdirAll(dest, 0o755))
	require.NoError(t, os.MkdirAll(outside, 0o755))
	require.NoError(t, os.Symlink(outside, filepath.Join(dest, "link")))
	data := []byte("payload")
	for _, p := range []string{"../escape", "/etc/passwd", "a/../../x", "link/file", ".storage-initializer/x", "nul\x00byte"} {
		_, err := fastEngine().Fetch(context.Background(), dest, []File{{Path: p, Size: int64(len(data)), Source: &memSource{data: data}}})
		require.Error(t, err, p)
	}
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing may be written outside DEST")
	_, err = os.Stat(filepath.Join(parent, "escape"))
	assert.True(t, errors.Is(err, os.ErrNotExist))
}

func TestStrictModeNeedsAChecksum(t *testing.T) {
	data := []byte("abc")
	_, err := fastEngine(WithVerify(VerifyStrict)).Fetch(context.Background(), t.TempDir(),
		[]File{{Path: "f", Size: 3, Source: &memSource{data: data}}})
	require.ErrorContains(t, err, "--verify=strict")
	rep, err := fastEngine(WithVerify(VerifySize)).Fetch(context.Background(), t.TempDir(),
		[]File{{Path: "f", Size: 3, Expect: []checksum.Value{sumOf(checksum.MD5, []byte("xyz"))}, Source: &memSource{data: data}}})
	require.NoError(t, err, "size mode ignores checksums")
	assert.Equal(t, "size only", rep.Files[0].Verified)
}

func TestExistingFileIsVerifiedNotTrusted(t *testing.T) {
	data := randBytes(14, 5000)
	dest := t.TempDir()
	// Same size, different content, no stamp: must be replaced.
	require.NoError(t, os.WriteFile(filepath.Join(dest, "f"), make([]byte, len(data)), 0o644))
	src := &memSource{data: data}
	rep, err := fastEngine().Fetch(context.Background(), dest, []File{{Path: "f", Size: int64(len(data)),
		Expect: []checksum.Value{sumOf(checksum.SHA256, data)}, Source: src}})
	require.NoError(t, err)
	assert.Equal(t, StatusDownloaded, rep.Files[0].Status)
	requireFile(t, filepath.Join(dest, "f"), data)
	// Same content written by someone else, no stamp: verified and kept.
	dest2 := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dest2, "f"), data, 0o644))
	src2 := &memSource{data: data}
	rep, err = fastEngine().Fetch(context.Background(), dest2, []File{{Path: "f", Size: int64(len(data)),
		Expect: []checksum.Value{sumOf(checksum.SHA256, data)}, Source: src2}})
	require.NoError(t, err)
	assert.Equal(t, StatusPresent, rep.Files[0].Status)
	assert.Equal(t, int64(0), src2.calls.Load())
}

func TestNotEnoughSpaceFailsBeforeFetching(t *testing.T) {
	free, err := freeBytes(t.TempDir())
	require.NoError(t, err)
	src := &memSource{data: []byte("x")}
	_, err = fastEngine().Fetch(context.Background(), t.TempDir(), []File{{Path: "huge", Size: free + 1<<40, Source: src}})
	require.ErrorContains(t, err, "not enough space")
	assert.Equal(t, int64(0), src.calls.Load())
}

func TestDryRunPlansWithoutTouchingDest(t *testing.T) {
	parent := t.TempDir()
	dest := filepath.Join(parent, "dest")
	data := randBytes(50, 1000)
	src := &memSource{data: data}
	rep, err := fastEngine(WithDryRun(true)).Fetch(context.Background(), dest, []File{
		{Path: "a", Size: 1000, Expect: []checksum.Value{sumOf(checksum.SHA256, data)}, Source: src},
		{Path: "b", Size: 1000, ChecksumsInBody: true, Source: src},
	})
	require.NoError(t, err)
	assert.Equal(t, int64(2000), rep.Bytes)
	assert.Equal(t, StatusPlanned, rep.Files[0].Status)
	assert.Equal(t, "sha256", rep.Files[0].Verified)
	assert.Equal(t, "checksum sent with the download", rep.Files[1].Verified)
	assert.Equal(t, int64(0), src.calls.Load())
	_, err = os.Stat(dest)
	assert.True(t, errors.Is(err, os.ErrNotExist), "a dry run creates nothing")
}
