package engine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// logged returns a logger that records warnings and what it recorded.
func logged() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	return zap.New(core), logs
}

func hasLog(logs *observer.ObservedLogs, part string) bool {
	for _, e := range logs.All() {
		if strings.Contains(e.Message, part) {
			return true
		}
	}
	return false
}

// entryPath is the entry the cache keeps for f.
func entryPath(t *testing.T, dir string, f File, e *Engine) string {
	t.Helper()
	runs, err := e.plan([]File{f})
	require.NoError(t, err)
	return filepath.Join(dir, filepath.FromSlash(entryName(cacheKey(runs[0]))))
}

// Identical bytes at several paths of one run (an OCI artifact whose
// layers share a digest) at --concurrency 1, and 17 of them at 16: every
// file finishes, the store serves the bytes once.
func TestCacheDuplicateContentInOneRunFinishes(t *testing.T) {
	for _, tc := range []struct{ conc, files int }{{1, 2}, {1, 5}, {16, 17}} {
		t.Run(fmt.Sprintf("concurrency %d, %d files", tc.conc, tc.files), func(t *testing.T) {
			data := randBytes(40, 1<<20) // 16 chunks of 64 KiB
			src := &memSource{data: data}
			var files []File
			for i := range tc.files {
				f := cachedFile(data, src)
				f.Path = fmt.Sprintf("layer-%d/w.bin", i)
				files = append(files, f)
			}
			cache := openTestCache(t, t.TempDir(), 0)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			dest := t.TempDir()
			rep, err := fastEngine(WithCache(cache), WithConcurrency(tc.conc)).Fetch(ctx, dest, files)
			require.NoError(t, err, "the run must not wait on itself")
			for _, f := range files {
				requireFile(t, filepath.Join(dest, f.Path), data)
			}
			assert.Equal(t, int64(len(data)), src.served.Load(), "identical keys are fetched once")
			hits := 0
			for _, r := range rep.Files {
				if strings.HasPrefix(r.Cache, "hit") {
					hits++
				}
			}
			assert.Equal(t, tc.files-1, hits)
		})
	}
}

// A unit whose two blobs have the same content (two layers, one digest)
// through the cache at --concurrency 1.
func TestCacheDuplicateBlobsOfAUnitFinish(t *testing.T) {
	data := randBytes(41, 512<<10)
	srcs := map[string]*memSource{}
	u := testUnit(map[string][]byte{"a": data, "b": data}, srcs)
	for i := range u.Blobs {
		u.Blobs[i].Identity = "oci reg/repo@sha256:same"
	}
	cache := openTestCache(t, t.TempDir(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dest := t.TempDir()
	_, err := fastEngine(WithCache(cache), WithConcurrency(1), WithBlobJobs(2)).Run(ctx, dest, &Plan{Source: "test", Units: []Unit{u}})
	require.NoError(t, err)
	requireFile(t, filepath.Join(dest, "a"), data)
	requireFile(t, filepath.Join(dest, "b"), data)
	assert.Equal(t, int64(len(data)), srcs["a"].served.Load()+srcs["b"].served.Load())
}

// Another process holding an entry's lock without progress is waited for
// at most --cache-wait; then the file is downloaded directly.
func TestCacheWaitOnAStuckProcessIsBounded(t *testing.T) {
	data := randBytes(42, 256<<10)
	dir := t.TempDir()
	cache := openTestCache(t, dir, 0)
	f := cachedFile(data, &memSource{data: data})
	log, logs := logged()
	e := fastEngine(WithCache(cache), WithCacheWait(300*time.Millisecond), WithLogger(log))
	// "Another process": a descriptor of its own holding the flock.
	runs, err := e.plan([]File{f})
	require.NoError(t, err)
	lf, err := os.OpenFile(filepath.Join(dir, "locks", cacheKey(runs[0])+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	require.NoError(t, err)
	defer lf.Close()
	require.NoError(t, unix.Flock(int(lf.Fd()), unix.LOCK_EX))

	start := time.Now()
	dest := t.TempDir()
	rep, err := e.Fetch(context.Background(), dest, []File{f})
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Empty(t, rep.Files[0].Cache, "downloaded directly")
	requireFile(t, filepath.Join(dest, f.Path), data)
	assert.True(t, hasLog(logs, "made no progress; downloading directly"), "the fallback is a warning")
}

// How an entry can be attacked on disk; each must never be served.
var entryAttacks = map[string]func(t *testing.T, entry string, data []byte){
	"tampered in place": func(t *testing.T, entry string, data []byte) {
		require.NoError(t, os.Chmod(entry, 0o644))
		f, err := os.OpenFile(entry, os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteAt([]byte("evil"), int64(len(data)/2))
		require.NoError(t, err)
		require.NoError(t, f.Close())
	},
	"tampered, mtime restored": func(t *testing.T, entry string, data []byte) {
		fi, err := os.Stat(entry)
		require.NoError(t, err)
		require.NoError(t, os.Chmod(entry, 0o644))
		f, err := os.OpenFile(entry, os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteAt([]byte("evil"), 0)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		require.NoError(t, os.Chmod(entry, fi.Mode()))
		require.NoError(t, os.Chtimes(entry, fi.ModTime(), fi.ModTime()))
	},
	"truncated": func(t *testing.T, entry string, data []byte) {
		require.NoError(t, os.Truncate(entry, int64(len(data)/2)))
	},
	"swapped (another file renamed over it)": func(t *testing.T, entry string, data []byte) {
		bad := bytes.Repeat([]byte{'x'}, len(data))
		other := entry + ".evil"
		require.NoError(t, os.WriteFile(other, bad, 0o444))
		require.NoError(t, os.Rename(other, entry))
	},
	"a symlink planted as the entry": func(t *testing.T, entry string, data []byte) {
		bad := filepath.Join(filepath.Dir(entry), "planted")
		require.NoError(t, os.WriteFile(bad, bytes.Repeat([]byte{'y'}, len(data)), 0o444))
		require.NoError(t, os.Remove(entry))
		require.NoError(t, os.Symlink(bad, entry))
	},
	"the seal removed": func(t *testing.T, entry string, data []byte) {
		require.NoError(t, os.Remove(entry+".seal"))
		require.NoError(t, os.Chmod(entry, 0o644))
		require.NoError(t, os.WriteFile(entry, bytes.Repeat([]byte{'z'}, len(data)), 0o444))
	},
}

// A tampered, truncated, swapped or symlinked entry is never served, for a
// size-only source (an http file without a digest, an S3 multipart upload
// without checksums), a CRC-only one and a SHA-256 one: the seal decides.
func TestCacheAttackedEntryIsNeverServed(t *testing.T) {
	sources := map[string]func([]byte) []checksum.Value{
		"size only": func([]byte) []checksum.Value { return nil },
		"crc64nvme": func(b []byte) []checksum.Value { return []checksum.Value{sumOf(checksum.CRC64NVME, b)} },
		"sha256":    func(b []byte) []checksum.Value { return []checksum.Value{sumOf(checksum.SHA256, b)} },
	}
	for sname, expect := range sources {
		for aname, attack := range entryAttacks {
			t.Run(sname+"/"+aname, func(t *testing.T) {
				data := randBytes(43, 300<<10)
				dir := t.TempDir()
				cache := openTestCache(t, dir, 0)
				f := cachedFile(data, &memSource{data: data})
				f.Expect = expect(data)
				_, err := fastEngine(WithCache(cache)).Fetch(context.Background(), t.TempDir(), []File{f})
				require.NoError(t, err)
				entry := entryPath(t, dir, f, fastEngine())
				attack(t, entry, data)

				src := &memSource{data: data}
				f.Source = src
				dest := t.TempDir()
				rep, err := fastEngine(WithCache(cache)).Fetch(context.Background(), dest, []File{f})
				require.NoError(t, err)
				requireFile(t, filepath.Join(dest, f.Path), data)
				assert.Equal(t, "miss", rep.Files[0].Cache, "an attacked entry is not a hit")
				assert.Equal(t, int64(len(data)), src.served.Load())
				// The entry was replaced by the good bytes, sealed again.
				fi, err := os.Lstat(entry)
				require.NoError(t, err)
				assert.True(t, fi.Mode().IsRegular())
				requireFile(t, entry, data)
				warm := &memSource{data: data}
				f.Source = warm
				rep, err = fastEngine(WithCache(cache)).Fetch(context.Background(), t.TempDir(), []File{f})
				require.NoError(t, err)
				assert.Equal(t, StatusCached, rep.Files[0].Status)
				assert.Zero(t, warm.calls.Load())
			})
		}
	}
}

// An entry copied elsewhere and back (another inode, same bytes) is hashed
// again and served: the seal binds the content, the inode only saves work.
func TestCacheEntryWithSameBytesInAnotherInodeIsServed(t *testing.T) {
	data := randBytes(44, 200<<10)
	dir := t.TempDir()
	cache := openTestCache(t, dir, 0)
	f := cachedFile(data, &memSource{data: data})
	f.Expect = nil // size only: the seal alone vouches for it
	_, err := fastEngine(WithCache(cache)).Fetch(context.Background(), t.TempDir(), []File{f})
	require.NoError(t, err)
	entry := entryPath(t, dir, f, fastEngine())
	copyPath := entry + ".copy"
	require.NoError(t, os.WriteFile(copyPath, data, 0o444))
	require.NoError(t, os.Rename(copyPath, entry))
	warm := &memSource{data: data}
	f.Source = warm
	dest := t.TempDir()
	rep, err := fastEngine(WithCache(cache)).Fetch(context.Background(), dest, []File{f})
	require.NoError(t, err)
	assert.Equal(t, StatusCached, rep.Files[0].Status)
	assert.Zero(t, warm.calls.Load())
	requireFile(t, filepath.Join(dest, f.Path), data)
}

// A hardlinked DEST file shares the entry's inode: writing to it (after a
// chmod, as its owner may) is caught by the seal on the next hit.
func TestCacheWriteThroughAHardlinkIsCaught(t *testing.T) {
	data := randBytes(45, 200<<10)
	dir := t.TempDir()
	cache := openTestCache(t, dir, 0)
	f := cachedFile(data, &memSource{data: data})
	f.Expect = nil
	first := t.TempDir()
	_, err := fastEngine(WithCache(cache)).Fetch(context.Background(), first, []File{f})
	require.NoError(t, err)
	linked := filepath.Join(first, f.Path)
	require.NoError(t, os.Chmod(linked, 0o644))
	w, err := os.OpenFile(linked, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = w.WriteAt([]byte("evil"), 10)
	require.NoError(t, err)
	require.NoError(t, w.Close())

	src := &memSource{data: data}
	f.Source = src
	dest := t.TempDir()
	rep, err := fastEngine(WithCache(cache)).Fetch(context.Background(), dest, []File{f})
	require.NoError(t, err)
	assert.Equal(t, "miss", rep.Files[0].Cache)
	requireFile(t, filepath.Join(dest, f.Path), data)
}

// Eviction ignores what the cache did not write: a one-character file
// name under entries/, foreign files and folders, symlinks.
func TestCacheEvictionIgnoresForeignFiles(t *testing.T) {
	dir := t.TempDir()
	cache := openTestCache(t, dir, 1) // everything unused is over the bound
	data := randBytes(46, 100<<10)
	f := cachedFile(data, &memSource{data: data})
	_, err := fastEngine(WithCache(cache)).Fetch(context.Background(), t.TempDir(), []File{f})
	require.NoError(t, err)
	foreign := []string{"entries/x", "entries/ab/x", "entries/zz/" + strings.Repeat("z", 64), "tmp/notes.txt", "locks/x.lock"}
	for _, p := range foreign {
		p = filepath.Join(dir, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("mine"), 0o644))
	}
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "entries", "ab", strings.Repeat("a", 64))))
	require.NotPanics(t, func() { cache.evict(zap.NewNop()) })
	for _, p := range foreign {
		_, err := os.Lstat(filepath.Join(dir, p))
		assert.NoError(t, err, "%s is not the cache's to remove", p)
	}
	_, err = os.Lstat(filepath.Join(dir, "entries", "ab", strings.Repeat("a", 64)))
	assert.NoError(t, err)
}

// Lock files and orphaned temporary files count towards --cache-max-bytes
// and are cleaned; a temporary file another process is filling is not.
func TestCacheHousekeepingCleansOrphansAndLocks(t *testing.T) {
	dir := t.TempDir()
	cache := openTestCache(t, dir, 0)
	orphanKey := strings.Repeat("1", 64)
	busyKey := strings.Repeat("2", 64)
	staleKey := strings.Repeat("3", 64)
	old := time.Now().Add(-2 * orphanAge)
	for _, n := range []string{"tmp/" + orphanKey + ".part", "tmp/" + orphanKey + ".journal", "tmp/" + busyKey + ".part",
		"locks/" + staleKey + ".lock", "tmp/.probe-999999"} {
		p := filepath.Join(dir, n)
		require.NoError(t, os.WriteFile(p, make([]byte, 8192), 0o600))
		require.NoError(t, os.Chtimes(p, old, old))
	}
	busy, err := cache.tryLock(busyKey, lockExclusive) // "another process" filling it
	require.NoError(t, err)
	// A second handle, as another process would have, holds the flock.
	other := openTestCache(t, dir, 0)
	cache.evict(zap.NewNop())
	_, err = other.tryLock(busyKey, lockExclusive)
	assert.ErrorIs(t, err, errCacheBusy)
	busy.unlock()

	entries, temps, locks := cache.scan()
	assert.Empty(t, entries)
	var names []string
	for _, f := range append(temps, locks...) {
		names = append(names, f.name)
	}
	assert.ElementsMatch(t, []string{"tmp/" + busyKey + ".part", "locks/" + busyKey + ".lock"}, names)

	// Over the bound, even a young orphan goes, before any entry.
	young := filepath.Join(dir, "tmp", orphanKey+".part")
	require.NoError(t, os.WriteFile(young, make([]byte, 64<<10), 0o600))
	bounded := openTestCache(t, dir, 4096)
	bounded.evict(zap.NewNop())
	_, err = os.Stat(young)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// Any cache failure once the bytes arrived (here: the entry's folder
// cannot be created) downloads the file directly, with a warning.
func TestCacheInsertFailureFallsBackToDirect(t *testing.T) {
	data := randBytes(47, 300<<10)
	dir := t.TempDir()
	cache := openTestCache(t, dir, 0)
	f := cachedFile(data, &memSource{data: data})
	entry := entryPath(t, dir, f, fastEngine())
	require.NoError(t, os.WriteFile(filepath.Dir(entry), []byte("in the way"), 0o644))
	log, logs := logged()
	dest := t.TempDir()
	rep, err := fastEngine(WithCache(cache), WithLogger(log)).Fetch(context.Background(), dest, []File{f})
	require.NoError(t, err)
	requireFile(t, filepath.Join(dest, f.Path), data)
	assert.Equal(t, StatusDownloaded, rep.Files[0].Status)
	assert.True(t, hasLog(logs, "node cache failed after the download; downloading directly"))
}

// The fill's own hardlink into DEST moves the entry's ctime; the seal is
// bound again, so a warm start is served without hashing the entry.
func TestCacheSealStillBindsAfterHardlinks(t *testing.T) {
	data := randBytes(49, 200<<10)
	dir := t.TempDir()
	cache := openTestCache(t, dir, 0)
	f := cachedFile(data, &memSource{data: data})
	for range 3 {
		rep, err := fastEngine(WithCache(cache)).Fetch(context.Background(), t.TempDir(), []File{f})
		require.NoError(t, err)
		assert.NotEqual(t, "hit (copy)", rep.Files[0].Cache)
		runs, err := fastEngine().plan([]File{f})
		require.NoError(t, err)
		k := cacheKey(runs[0])
		s, ok := cache.readSeal(k)
		require.True(t, ok)
		var st unix.Stat_t
		require.NoError(t, unix.Stat(entryPath(t, dir, f, fastEngine()), &st))
		assert.True(t, s.binds(&st), "the seal binds the entry as it is now")
	}
}
