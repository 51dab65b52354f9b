package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"sync"
	"time"
)

// Cache is a node-local store of verified files, keyed by the origin and
// exact version of each file (see cacheKey). The engine downloads a miss
// into the cache (parallel, verified, resumable, exactly like a download
// into DEST), seals it, then materialises the entry into DEST by hardlink,
// reflink or copy from the very descriptor it verified (see
// cache_entry.go). docs/node-cache.md states what it protects against.
//
// Within one process, files with the same key are fetched once (one
// flight per key; the others wait for it without holding a worker).
// Between processes, a per-entry flock serialises the fill; a process that
// finds it taken waits without holding a worker or a descriptor, for at
// most the wait bound without progress, and then downloads directly.
//
// Layout: entries/KK/KEY (data, read-only), entries/KK/KEY.seal (what the
// inserting side verified), entries/KK/KEY.used (mtime = last use, for
// LRU), tmp/KEY.part + tmp/KEY.journal (downloads in progress),
// locks/KEY.lock.
type Cache struct {
	dir      string
	root     *os.Root
	maxBytes int64

	mu      sync.Mutex
	flights map[string]*flight
}

// flight is one file of this process fetching or materialising a key; the
// other files with that key wait for done and then look the entry up.
type flight struct{ done chan struct{} }

// DefaultCacheWait bounds the wait on another process filling the same
// entry, measured from its last visible progress (--cache-wait).
const DefaultCacheWait = 2 * time.Minute

// OpenCache opens (creating it if needed) a cache folder. maxBytes > 0
// bounds its size (entries, temporary files and locks) by evicting what
// no process uses, least recently used first. Callers treat an error as
// "no cache" and warn: a cache is an accelerator, never a reason to fail.
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
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	probe := path.Join("tmp", fmt.Sprintf(".probe-%x", rnd)) // random: in containers every process may be PID 1
	f, err := root.OpenFile(probe, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("cache folder %s is not writable: %w", dir, err)
	}
	f.Close()
	_ = root.Remove(probe)
	return &Cache{dir: dir, root: root, maxBytes: maxBytes, flights: map[string]*flight{}}, nil
}

// Close releases the cache folder.
func (c *Cache) Close() error { return c.root.Close() }

// Dir is the cache folder.
func (c *Cache) Dir() string { return c.dir }

// cacheKey addresses content by the identity the source gives, which names
// its origin and exact version (S3 endpoint, bucket, key and ETag; the
// URL and validator; the registry, repository and digest), together with
// the size and the checksum that will be verified.
func cacheKey(fr *fileRun) string {
	h := sha256.New()
	fmt.Fprintf(h, "v1\x00%s\x00%d\x00", fr.f.Identity, fr.f.Size)
	if fr.chk.want != nil {
		fmt.Fprintf(h, "%s:%s", fr.chk.want.Algorithm, fr.chk.want.String())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// isKey says a file name is one the cache wrote (a hex SHA-256): eviction
// and lookups ignore anything else found in the folder.
func isKey(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// cacheable reports whether a file can go through the cache: it needs a
// source identity, else two different objects could share an entry.
func cacheable(fr *fileRun) bool { return fr.f.Identity != "" && fr.f.Size > 0 }

func entryDir(k string) string  { return path.Join("entries", k[:2]) }
func entryName(k string) string { return path.Join(entryDir(k), k) }
func lockName(k string) string  { return path.Join("locks", k+".lock") }

// claim makes the caller the one file of this process working on key k
// (leader true), or returns the flight of the file that is.
func (c *Cache) claim(k string) (*flight, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.flights[k]; ok {
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	c.flights[k] = f
	return f, true
}

// land ends a flight: the files waiting on it look the entry up again (and
// one of them fills it when the leader could not).
func (c *Cache) land(k string, f *flight) {
	c.mu.Lock()
	if c.flights[k] == f {
		delete(c.flights, k)
	}
	c.mu.Unlock()
	close(f.done)
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
	_ = c.root.Remove(entryName(k) + ".seal")
	_ = c.root.Remove(entryName(k) + ".used")
}
