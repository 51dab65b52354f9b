package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

// cacheLock is a flock on one entry: shared while a process materialises
// a hit (warm pods never wait on each other), exclusive while one fills it
// or evicts it.
type cacheLock struct{ f *os.File }

const (
	lockShared    = unix.LOCK_SH
	lockExclusive = unix.LOCK_EX
)

func (l *cacheLock) unlock() {
	if l != nil && l.f != nil {
		l.f.Close() // closing the descriptor releases the flock
		l.f = nil
	}
}

// errCacheBusy: another process holds the entry's lock.
var errCacheBusy = errors.New("the entry is being filled by another process")

// tryLock takes the entry's lock (lockShared or lockExclusive) without
// waiting (errCacheBusy when another process holds it in a conflicting mode). Eviction removes lock files (holding their
// lock), so a lock taken on a file that is no longer the one at its name
// is let go and taken again.
func (c *Cache) tryLock(k string, how int) (*cacheLock, error) {
	for range 3 {
		f, err := c.root.OpenFile(lockName(k), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open cache lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, errCacheBusy
			}
			return nil, fmt.Errorf("lock cache entry: %w", err)
		}
		if sameFile(f, c.root, lockName(k)) {
			return &cacheLock{f}, nil
		}
		f.Close()
	}
	return nil, errCacheBusy
}

// sameFile says name (in root) is still the file f has open.
func sameFile(f *os.File, root *os.Root, name string) bool {
	var a unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil {
		return false
	}
	d, err := root.Open(path.Dir(name))
	if err != nil {
		return false
	}
	defer d.Close()
	var b unix.Stat_t
	if unix.Fstatat(int(d.Fd()), path.Base(name), &b, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// errCacheWait: the wait on another process ran out.
var errCacheWait = errors.New("no progress from the process filling the entry")

// waitLock waits for another process to let go of the entry's lock,
// polling (no descriptor is held between tries, no worker is blocked),
// for as long as that process makes progress: the wait ends with
// errCacheWait after `bound` without any write to its temporary file or
// journal. onWait is called once, before the first wait.
func (c *Cache) waitLock(ctx context.Context, k string, how int, bound time.Duration, onWait func()) (*cacheLock, error) {
	onWait()
	deadline := time.Now().Add(bound)
	last := c.progress(k)
	delay := 10 * time.Millisecond
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-t.C:
		}
		lk, err := c.tryLock(k, how)
		if !errors.Is(err, errCacheBusy) {
			return lk, err
		}
		if p := c.progress(k); p != last {
			last, deadline = p, time.Now().Add(bound)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, errCacheWait
		}
		delay = min(delay*2, 250*time.Millisecond, left)
		t.Reset(delay)
	}
}

// progress is what changes while a process fills entry k: the mtime and
// size of its temporary file and journal.
func (c *Cache) progress(k string) string {
	var s string
	for _, n := range []string{path.Join("tmp", k+".part"), path.Join("tmp", k+".journal")} {
		if fi, err := c.root.Lstat(n); err == nil {
			s += fmt.Sprintf("%d/%d ", fi.ModTime().UnixNano(), fi.Size())
		}
	}
	return s
}
