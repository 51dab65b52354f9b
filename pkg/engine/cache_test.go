package engine

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

func cachedFile(data []byte, src Loader) File {
	return File{Path: "w/model.bin", Size: int64(len(data)), Identity: "s3://b/model.bin etag=\"1\"",
		Expect: []checksum.Value{sumOf(checksum.CRC64NVME, data)}, Source: src}
}

func openTestCache(t *testing.T, dir string, max int64) *Cache {
	t.Helper()
	c, err := OpenCache(dir, max)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCacheWarmHitHardlinksWithoutFetching(t *testing.T) {
	data := randBytes(20, 1<<20)
	cache := openTestCache(t, t.TempDir(), 0)
	cold := &memSource{data: data}
	rep, err := fastEngine(WithCache(cache)).Fetch(context.Background(), t.TempDir(), []File{cachedFile(data, cold)})
	require.NoError(t, err)
	assert.Equal(t, "miss", rep.Files[0].Cache)

	dest := t.TempDir()
	warm := &memSource{data: data}
	rep, err = fastEngine(WithCache(cache)).Fetch(context.Background(), dest, []File{cachedFile(data, warm)})
	require.NoError(t, err)
	assert.Equal(t, StatusCached, rep.Files[0].Status)
	assert.Equal(t, "hit (hardlink)", rep.Files[0].Cache)
	assert.Equal(t, int64(0), warm.calls.Load())
	requireFile(t, filepath.Join(dest, "w/model.bin"), data)
	fi, err := os.Stat(filepath.Join(dest, "w/model.bin"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o444), fi.Mode().Perm(), "cache entries and their links are read-only")
	_, err = os.Stat(filepath.Join(dest, StateDir))
	assert.True(t, os.IsNotExist(err))
}

func TestCacheConcurrentColdPullsFetchOnce(t *testing.T) {
	data := randBytes(21, 4<<20)
	dir := t.TempDir()
	src := &memSource{data: data}
	var wg sync.WaitGroup
	dests := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	errs := make([]error, len(dests))
	for i, d := range dests {
		wg.Go(func() {
			// A cache handle of its own, as a separate process would have.
			c, err := OpenCache(dir, 0)
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			_, errs[i] = fastEngine(WithCache(c)).Fetch(context.Background(), d, []File{cachedFile(data, src)})
		})
	}
	wg.Wait()
	for i, d := range dests {
		require.NoError(t, errs[i])
		requireFile(t, filepath.Join(d, "w/model.bin"), data)
	}
	assert.LessOrEqual(t, src.served.Load(), int64(len(data))*11/10, "the store serves the model once")
}

func TestCacheTamperedEntryIsDetectedAndReplaced(t *testing.T) {
	data := randBytes(22, 256<<10)
	dir := t.TempDir()
	cache := openTestCache(t, dir, 0)
	_, err := fastEngine(WithCache(cache)).Fetch(context.Background(), t.TempDir(), []File{cachedFile(data, &memSource{data: data})})
	require.NoError(t, err)
	// Poison the entry in place (same size).
	var entry string
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "entries"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && isKey(d.Name()) {
			entry = p
		}
		return err
	}))
	require.NoError(t, os.Chmod(entry, 0o644))
	bad := append([]byte(nil), data...)
	bad[1000] ^= 0xff
	require.NoError(t, os.WriteFile(entry, bad, 0o644))

	dest := t.TempDir()
	src := &memSource{data: data}
	rep, err := fastEngine(WithCache(cache)).Fetch(context.Background(), dest, []File{cachedFile(data, src)})
	require.NoError(t, err)
	assert.Equal(t, "miss", rep.Files[0].Cache, "a poisoned entry is not a hit")
	assert.Equal(t, int64(len(data)), src.served.Load())
	requireFile(t, filepath.Join(dest, "w/model.bin"), data)
	requireFile(t, entry, data)
}

func TestCacheOnAnotherFilesystemFallsBackToCopy(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "si-cache-")
	if err != nil {
		t.Skipf("no tmpfs at /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	data := randBytes(23, 3<<20+17)
	cache := openTestCache(t, shm, 0)
	_, err = fastEngine(WithCache(cache)).Fetch(context.Background(), t.TempDir(), []File{cachedFile(data, &memSource{data: data})})
	require.NoError(t, err)
	dest := t.TempDir()
	rep, err := fastEngine(WithCache(cache)).Fetch(context.Background(), dest, []File{cachedFile(data, &memSource{data: data})})
	require.NoError(t, err)
	assert.Contains(t, []string{"hit (copy)", "hit (reflink)"}, rep.Files[0].Cache)
	requireFile(t, filepath.Join(dest, "w/model.bin"), data)
}

func TestCacheEvictsLeastRecentlyUsedWithinBound(t *testing.T) {
	dir := t.TempDir()
	cache := openTestCache(t, dir, 2<<20+64<<10) // room for two 1 MiB entries with their seals and locks
	var files []File
	for i := range 4 {
		data := randBytes(uint64(30+i), 1<<20)
		f := cachedFile(data, &memSource{data: data})
		f.Path = filepath.Join("m", string(rune('a'+i)))
		f.Identity += string(rune('a' + i))
		files = append(files, f)
		_, err := fastEngine(WithCache(cache)).Fetch(context.Background(), t.TempDir(), []File{f})
		require.NoError(t, err)
	}
	var total int64
	var n int
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "entries"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && isKey(d.Name()) {
			fi, _ := d.Info()
			total += fi.Size()
			n++
		}
		return err
	}))
	assert.LessOrEqual(t, total, int64(2<<20))
	assert.Equal(t, 2, n)
	// The newest entry survived: a warm fetch of it fetches nothing.
	last := files[3]
	src := &memSource{data: last.Source.(*memSource).data}
	last.Source = src
	rep, err := fastEngine(WithCache(cache)).Fetch(context.Background(), t.TempDir(), []File{last})
	require.NoError(t, err)
	assert.Equal(t, StatusCached, rep.Files[0].Status)
}

func TestCacheKilledDownloadIsResumedByTheNextProcess(t *testing.T) {
	data := randBytes(24, 4<<20)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	first := &memSource{data: data, fault: func(call, _, _ int64) (io.Reader, error) {
		if call == 30 {
			cancel()
		}
		return nil, nil
	}}
	c1 := openTestCache(t, dir, 0)
	_, err := fastEngine(WithCache(c1)).Fetch(ctx, t.TempDir(), []File{cachedFile(data, first)})
	require.Error(t, err)
	c2 := openTestCache(t, dir, 0)
	second := &memSource{data: data}
	dest := t.TempDir()
	rep, err := fastEngine(WithCache(c2)).Fetch(context.Background(), dest, []File{cachedFile(data, second)})
	require.NoError(t, err)
	assert.Equal(t, "partial", rep.Files[0].Cache)
	assert.Less(t, second.served.Load(), int64(len(data)))
	requireFile(t, filepath.Join(dest, "w/model.bin"), data)
}

func TestUnwritableCacheIsRefused(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	_, err := OpenCache(filepath.Join(f, "cache"), 0)
	require.ErrorContains(t, err, "not usable")
}
