package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Cache is a node-local, content-addressed store of verified files that the
// pods on a node share (a hostPath or local PV mounted into each init
// container). The engine downloads a miss into the cache (parallel,
// verified, resumable, exactly like a download into DEST), then
// materialises the entry into DEST by hardlink, reflink or copy. Two
// processes asking for the same content serialise on a per-entry flock: the
// second waits (no polling) and then links. A holder that dies releases its
// lock with its descriptors; its journal lets the next holder resume.
//
// Layout: entries/KK/KEY (data, read-only), entries/KK/KEY.used (mtime =
// last use, for LRU), tmp/KEY.part + tmp/KEY.journal (downloads in
// progress), locks/KEY.lock.
type Cache struct {
	dir      string
	root     *os.Root
	maxBytes int64
}

// OpenCache opens (creating it if needed) a cache folder. maxBytes > 0
// bounds its size by evicting least-recently-used entries not in use.
// Callers treat an error as "no cache" and warn: a cache is an accelerator,
// never a reason to fail.
func OpenCache(dir string, maxBytes int64) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache folder %s is not usable: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("cache folder %s is not usable: %w", dir, err)
	}
	// Sub-folders through the root: a symlink planted in the cache cannot
	// send them elsewhere.
	for _, sub := range []string{"entries", "tmp", "locks"} {
		if err := root.MkdirAll(sub, 0o755); err != nil {
			root.Close()
			return nil, fmt.Errorf("cache folder %s is not usable: %w", dir, err)
		}
	}
	probe := path.Join("tmp", fmt.Sprintf(".probe-%d", os.Getpid()))
	f, err := root.OpenFile(probe, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("cache folder %s is not writable: %w", dir, err)
	}
	f.Close()
	_ = root.Remove(probe)
	return &Cache{dir: dir, root: root, maxBytes: maxBytes}, nil
}

// Close releases the cache folder.
func (c *Cache) Close() error { return c.root.Close() }

// Dir is the cache folder.
func (c *Cache) Dir() string { return c.dir }

// cacheKey addresses content by the strongest identity the source gives:
// its version identity (OCI digest; S3 location + ETag + version id; HTTP URL
// + ETag) together with the size and the checksum that will be verified.
func cacheKey(fr *fileRun) string {
	h := sha256.New()
	fmt.Fprintf(h, "v1\x00%s\x00%d\x00", fr.f.Identity, fr.f.Size)
	if fr.chk.want != nil {
		fmt.Fprintf(h, "%s:%s", fr.chk.want.Algorithm, fr.chk.want.String())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cacheable reports whether a file can go through the cache: it needs a
// source identity, else two different objects could share an entry.
func cacheable(fr *fileRun) bool { return fr.f.Identity != "" && fr.f.Size > 0 }

func entryDir(k string) string  { return path.Join("entries", k[:2]) }
func entryName(k string) string { return path.Join(entryDir(k), k) }

// cacheLock is an exclusive flock on one entry.
type cacheLock struct{ f *os.File }

// lock takes the entry's lock, waiting (blocked in flock, not polling) while
// another process fetches the same content. onWait is called if it must wait.
func (c *Cache) lock(ctx context.Context, k string, onWait func()) (*cacheLock, error) {
	f, err := c.root.OpenFile(path.Join("locks", k+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open cache lock: %w", err)
	}
	fd := int(f.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err == nil {
		return &cacheLock{f}, nil
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, fmt.Errorf("lock cache entry: %w", err)
	}
	onWait()
	done := make(chan error, 1)
	go func() { done <- unix.Flock(fd, unix.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock cache entry: %w", err)
		}
		return &cacheLock{f}, nil
	case <-ctx.Done():
		go func() { <-done; f.Close() }() // release once flock returns
		return nil, context.Cause(ctx)
	}
}

func (l *cacheLock) unlock() {
	if l != nil {
		l.f.Close() // closing the descriptor releases the flock
	}
}

// lookup reports whether a usable entry exists for fr. The entry is
// re-checked against the source's checksum on every hit, so a tampered or
// corrupted entry is detected, removed and fetched again.
func (c *Cache) lookup(ctx context.Context, fr *fileRun, k string, log *zap.Logger) bool {
	f, err := c.root.Open(entryName(k))
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != fr.f.Size {
		c.drop(k)
		return false
	}
	if fr.chk.want != nil {
		h := newSeqHasher(fr.chk.want.Algorithm, f, fr.bounds())
		h.advance(fr.f.Size)
		sums, err := h.result()
		if err == nil {
			_, err = fr.compare(sums)
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("cache entry failed verification; replacing it", zap.String("path", fr.rel),
					zap.String("entry", path.Join(c.dir, entryName(k))), zap.String("error", err.Error()))
				c.drop(k)
			}
			return false
		}
	}
	c.touch(k)
	return true
}

// insert moves a verified download (tmp/KEY.part) into its entry.
func (c *Cache) insert(fr *fileRun, k string) error {
	if err := c.root.MkdirAll(entryDir(k), 0o755); err != nil {
		return fmt.Errorf("cache insert: %w", err)
	}
	if err := c.root.Rename(fr.tmpName(), entryName(k)); err != nil {
		return fmt.Errorf("cache insert: %w", err)
	}
	c.touch(k)
	return nil
}

func (c *Cache) touch(k string) {
	used := entryName(k) + ".used"
	now := time.Now()
	if err := c.root.Chtimes(used, now, now); err != nil {
		if f, err := c.root.OpenFile(used, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
}

func (c *Cache) drop(k string) {
	_ = c.root.Remove(entryName(k))
	_ = c.root.Remove(entryName(k) + ".used")
}

// materialize puts entry k at rel in DEST: a hardlink when DEST is on the
// cache's filesystem, else a reflink, else a parallel copy; always through a
// temporary name and a rename, like every commit.
func (c *Cache) materialize(dest *os.Root, fr *fileRun, k string) (string, error) {
	tmp := path.Join(StateDir, fr.base+".part")
	_ = dest.Remove(tmp)
	how, err := c.linkInto(dest, k, tmp)
	if err != nil {
		if how, err = c.copyInto(dest, fr, k, tmp); err != nil {
			return "", err
		}
	}
	if err := replace(dest, tmp, fr.rel); err != nil {
		return "", fmt.Errorf("commit %s: %w", fr.rel, err)
	}
	return how, nil
}

func (c *Cache) linkInto(dest *os.Root, k, tmp string) (string, error) {
	src, err := c.root.Open(entryDir(k))
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := dest.Open(path.Dir(tmp))
	if err != nil {
		return "", err
	}
	defer dst.Close()
	if err := unix.Linkat(int(src.Fd()), k, int(dst.Fd()), path.Base(tmp), 0); err != nil {
		return "", err // EXDEV across filesystems; the caller copies
	}
	return "hardlink", nil
}

func (c *Cache) copyInto(dest *os.Root, fr *fileRun, k, tmp string) (string, error) {
	src, err := c.root.Open(entryName(k))
	if err != nil {
		return "", fmt.Errorf("open cache entry: %w", err)
	}
	defer src.Close()
	dst, err := dest.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("materialise %s: %w", fr.rel, err)
	}
	defer dst.Close()
	how := "reflink"
	if err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())); err != nil {
		how = "copy"
		if err := parallelCopy(dst, src, fr.f.Size); err != nil {
			return "", fmt.Errorf("copy %s from the cache: %w", fr.rel, err)
		}
	}
	if err := dst.Chmod(fileMode(fr.f.Mode)); err != nil {
		return "", err
	}
	if !fr.f.ModTime.IsZero() {
		_ = dest.Chtimes(tmp, fr.f.ModTime, fr.f.ModTime)
	}
	sealStamp(dst, fr.stampValue())
	return how, dst.Close()
}

// parallelCopy copies in a few concurrent slices, with copy_file_range (in
// the kernel, no user-space buffer) where the filesystems allow it, else
// with a buffer per slice.
func parallelCopy(dst, src *os.File, size int64) error {
	const slices = 4
	step := (size + slices - 1) / slices
	errs := make(chan error, slices)
	for i := int64(0); i < slices; i++ {
		go func(off int64) { errs <- copySlice(dst, src, off, min(off+step, size)) }(i * step)
	}
	var first error
	for range slices {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func copySlice(dst, src *os.File, off, end int64) error {
	roff, woff := off, off
	for roff < end {
		n, err := unix.CopyFileRange(int(src.Fd()), &roff, int(dst.Fd()), &woff, int(end-roff), 0)
		if err != nil {
			break // EXDEV, EINVAL, ENOSYS…: copy through a buffer below
		}
		if n == 0 {
			return fmt.Errorf("unexpected end of cache entry at %d", roff)
		}
	}
	buf := make([]byte, 1<<20)
	for roff < end {
		n, err := src.ReadAt(buf[:min(int64(len(buf)), end-roff)], roff)
		if n > 0 {
			if _, werr := dst.WriteAt(buf[:n], roff); werr != nil {
				return werr
			}
			roff += int64(n)
		}
		if err != nil && roff < end {
			return err
		}
	}
	return nil
}

// evict removes least-recently-used entries until the cache fits its
// bound, skipping any entry another process holds a lock on.
func (c *Cache) evict(log *zap.Logger) {
	if c.maxBytes <= 0 {
		return
	}
	type entry struct {
		k    string
		size int64
		used time.Time
	}
	var entries []entry
	var total int64
	_ = fs.WalkDir(c.root.FS(), "entries", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) == ".used" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		e := entry{k: path.Base(p), size: fi.Size(), used: fi.ModTime()}
		if ui, err := c.root.Stat(p + ".used"); err == nil {
			e.used = ui.ModTime()
		}
		entries = append(entries, e)
		total += fi.Size()
		return nil
	})
	sort.Slice(entries, func(i, j int) bool { return entries[i].used.Before(entries[j].used) })
	for _, e := range entries {
		if total <= c.maxBytes {
			return
		}
		f, err := c.root.OpenFile(path.Join("locks", e.k+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close() // in use by a running process: never evicted
			continue
		}
		c.drop(e.k)
		f.Close()
		total -= e.size
		log.Info("cache entry evicted", zap.String("entry", e.k), zap.Int64("size", e.size))
	}
}
