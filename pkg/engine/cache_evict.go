package engine

import (
	"io/fs"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// orphanAge is how long a temporary file nobody holds the lock of is kept
// for a resume before it is removed.
const orphanAge = time.Hour

// cacheFile is one file the cache wrote: an entry (with its sidecars), a
// temporary file or a lock, with the space it takes.
type cacheFile struct {
	name string // relative to the cache folder
	key  string
	size int64
	used time.Time
}

// usage is what a file takes on disk: its blocks, at least one block for
// its inode and name (lock files are empty).
func usage(fi fs.FileInfo) int64 {
	n := fi.Size()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		n = st.Blocks * 512
	}
	return max(n, 4096)
}

// scan lists what the cache wrote; anything else found in its folder
// (a file it never names, a symlink, a folder) is ignored, never removed.
func (c *Cache) scan() (entries, temps, locks []cacheFile) {
	list := func(dir string) []fs.FileInfo {
		d, err := c.root.Open(dir)
		if err != nil {
			return nil
		}
		defer d.Close()
		fis, _ := d.Readdir(-1)
		var out []fs.FileInfo
		for _, fi := range fis {
			if fi.Mode().IsRegular() {
				out = append(out, fi)
			}
		}
		return out
	}
	entryDirs, _ := fs.ReadDir(c.root.FS(), "entries")
	for _, d := range entryDirs {
		if !d.IsDir() || len(d.Name()) != 2 {
			continue
		}
		dir := path.Join("entries", d.Name())
		byKey := map[string]*cacheFile{}
		var order []string
		for _, fi := range list(dir) {
			k, ext, _ := strings.Cut(fi.Name(), ".")
			if !isKey(k) || k[:2] != d.Name() || ext != "" && ext != "seal" && ext != "used" {
				continue
			}
			e := byKey[k]
			if e == nil {
				e = &cacheFile{name: path.Join(dir, k), key: k}
				byKey[k] = e
				order = append(order, k)
			}
			e.size += usage(fi)
			if ext == "used" || ext == "" && e.used.IsZero() {
				e.used = fi.ModTime()
			}
		}
		for _, k := range order {
			entries = append(entries, *byKey[k])
		}
	}
	for _, fi := range list("tmp") {
		k, _, _ := strings.Cut(fi.Name(), ".")
		if isKey(k) || strings.HasPrefix(fi.Name(), ".probe-") {
			temps = append(temps, cacheFile{name: path.Join("tmp", fi.Name()), key: k, size: usage(fi), used: fi.ModTime()})
		}
	}
	return entries, temps, c.scanLocks()
}

func (c *Cache) scanLocks() []cacheFile {
	d, err := c.root.Open("locks")
	if err != nil {
		return nil
	}
	defer d.Close()
	fis, _ := d.Readdir(-1)
	var locks []cacheFile
	for _, fi := range fis {
		if k, ok := strings.CutSuffix(fi.Name(), ".lock"); ok && isKey(k) && fi.Mode().IsRegular() {
			locks = append(locks, cacheFile{name: path.Join("locks", fi.Name()), key: k, size: usage(fi), used: fi.ModTime()})
		}
	}
	return locks
}

// evict keeps the cache tidy and within its bound: temporary files nobody
// holds the lock of are removed once older than orphanAge (and first when
// over the bound), then least-recently-used entries no process uses, and
// the lock files of keys with nothing left. Everything the cache wrote
// counts towards --cache-max-bytes; what it did not write is left alone.
func (c *Cache) evict(log *zap.Logger) {
	entries, temps, locks := c.scan()
	var total int64
	for _, l := range [][]cacheFile{entries, temps, locks} {
		for _, f := range l {
			total += f.size
		}
	}
	over := func() bool { return c.maxBytes > 0 && total > c.maxBytes }
	// Orphaned temporary files: oldest first.
	sort.Slice(temps, func(i, j int) bool { return temps[i].used.Before(temps[j].used) })
	for _, t := range temps {
		if time.Since(t.used) < orphanAge && !over() {
			continue
		}
		if t.key == "" { // a probe left by a killed process
			if time.Since(t.used) >= orphanAge && c.root.Remove(t.name) == nil {
				total -= t.size
			}
			continue
		}
		lk, err := c.tryLock(t.key, lockExclusive)
		if err != nil {
			continue // being filled: never removed
		}
		if c.root.Remove(t.name) == nil {
			total -= t.size
			log.Info("orphaned cache temporary file removed", zap.String("file", t.name), zap.Int64("size", t.size))
		}
		lk.unlock()
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].used.Before(entries[j].used) })
	kept := map[string]bool{}
	for _, e := range entries {
		kept[e.key] = true
	}
	for _, e := range entries {
		if !over() {
			break
		}
		lk, err := c.tryLock(e.key, lockExclusive)
		if err != nil {
			continue // in use by a running process: never evicted
		}
		c.drop(e.key)
		delete(kept, e.key)
		total -= e.size
		lk.unlock()
		log.Info("cache entry evicted", zap.String("entry", e.key), zap.Int64("size", e.size))
	}
	// Lock files of keys with no entry and no temporary file left.
	for _, t := range temps {
		if _, err := c.root.Lstat(t.name); err == nil {
			kept[t.key] = true
		}
	}
	for _, l := range c.scanLocks() { // again: removing orphans took locks
		if kept[l.key] {
			continue
		}
		lk, err := c.tryLock(l.key, lockExclusive)
		if err != nil {
			continue
		}
		// Removed while held: a process that opened it before takes its
		// lock on a file no longer at the name and tries again (tryLock).
		if _, err := c.root.Lstat(path.Join("tmp", l.key+".part")); err != nil && c.root.Remove(l.name) == nil {
			total -= l.size
		}
		lk.unlock()
	}
}
