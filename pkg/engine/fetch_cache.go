package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// WithCache routes cacheable files through a node-local cache (see Cache).
func WithCache(c *Cache) Option { return func(e *Engine) { e.cache = c } }

// WithCacheWait bounds how long a file waits for another process filling
// the same cache entry without visible progress before it is downloaded
// directly (--cache-wait; DefaultCacheWait when 0).
func WithCacheWait(d time.Duration) Option { return func(e *Engine) { e.cacheWait = d } }

func (e *Engine) cacheWaitBound() time.Duration {
	if e.cacheWait > 0 {
		return e.cacheWait
	}
	return DefaultCacheWait
}

// cacheUse is a file's claim on a node-cache entry: the flight that makes
// it the one file of this process on the key, and the entry's lock.
type cacheUse struct {
	c      *Cache
	key    string
	flight *flight
	lock   *cacheLock
}

// release lets go of the entry's lock, then of the flight (waking the
// files of this process waiting for the same key).
func (u *cacheUse) release() {
	if u == nil {
		return
	}
	u.lock.unlock()
	u.lock = nil
	if u.flight != nil {
		u.c.land(u.key, u.flight)
		u.flight = nil
	}
}

// cacheSlot is one of the run's --concurrency slots for files going
// through the cache: it is held while a file is looked up, materialised or
// has chunks to queue, and let go while the file waits (for a flight of
// this process or another process's lock), so descriptors and locks are
// taken lazily, under the same bound as direct downloads.
type cacheSlot struct {
	r    *run
	held bool
}

func (s *cacheSlot) take() bool {
	if s.held {
		return true
	}
	select {
	case s.r.cacheSlots <- struct{}{}:
		s.held = true
		return true
	case <-s.r.ctx.Done():
		return false
	}
}

func (s *cacheSlot) free() {
	if s.held {
		<-s.r.cacheSlots
		s.held = false
	}
}

// fetchCached sends a file through the node cache. It never runs in a
// worker (a worker never waits on a cache lock): the producer or a
// re-queue takes a slot and starts it in a goroutine of its own.
func (r *run) fetchCached(fr *fileRun) {
	s := &cacheSlot{r: r}
	if !s.take() {
		return
	}
	r.bg.Go(func() {
		defer s.free()
		r.viaCache(fr, s)
	})
}

// viaCache materialises a verified hit into DEST, or starts the download
// into the cache. A file whose key another file of this process is on
// waits for it and looks again; one whose entry another process fills
// waits for it (bounded); any cache failure downloads the file directly.
func (r *run) viaCache(fr *fileRun, s *cacheSlot) {
	c := r.e.cache
	k := cacheKey(fr)
	fl, leader := c.claim(k)
	if !leader {
		s.free()
		select {
		case <-fl.done:
			if s.take() {
				r.viaCache(fr, s) // a hit now, or this file fills it
			}
		case <-r.ctx.Done():
		}
		return
	}
	use := &cacheUse{c: c, key: k, flight: fl}
	fr.cache = use
	hit, err := r.claimEntry(fr, use, s)
	if err != nil {
		if r.ctx.Err() != nil {
			r.dropCache(fr)
			return
		}
		if errors.Is(err, errCacheWait) {
			r.e.log.Warn("another process filling the same node-cache entry made no progress; downloading directly",
				zap.String("path", fr.rel), zap.Duration("waited", r.e.cacheWaitBound()))
		} else {
			r.e.log.Warn("node cache lock failed; downloading directly", zap.String("path", fr.rel), zap.String("error", err.Error()))
		}
		r.leaveCache(fr)
		if s.take() { // let go while waiting
			r.begin(fr)
		}
		return
	}
	if hit != nil {
		how, err := c.materialize(r.root, fr, k, hit)
		hit.close()
		r.dropCache(fr)
		if err != nil {
			r.e.log.Warn("node cache hit could not be materialised; downloading directly", zap.String("path", fr.rel),
				zap.String("error", err.Error()))
			r.leaveCache(fr)
			r.begin(fr)
			return
		}
		r.finish(fr, FileResult{Path: fr.rel, Size: fr.f.Size, Status: StatusCached, Verified: fr.verified(),
			Digest: digestOf(fr), Cache: "hit (" + how + ")"})
		return
	}
	if free, err := freeBytes(c.dir); err == nil && free < fr.f.Size {
		r.e.log.Warn("node cache is full; downloading directly", zap.String("path", fr.rel), zap.String("cache", c.dir))
		r.leaveCache(fr)
	} else {
		fr.useStore(c.root, "tmp", k)
	}
	r.begin(fr)
}

// claimEntry takes entry k's lock and looks it up: a verified hit under a
// shared lock (warm pods never wait on each other), or a miss under the
// exclusive lock, which this file then fills. A lock another process holds
// is waited for without the slot, as long as that process makes progress.
func (r *run) claimEntry(fr *fileRun, use *cacheUse, s *cacheSlot) (*cacheHit, error) {
	c, k := r.e.cache, use.key
	waited := false
	lock := func(how int) (*cacheLock, error) {
		lk, err := c.tryLock(k, how)
		if !errors.Is(err, errCacheBusy) {
			return lk, err
		}
		s.free()
		lk, err = c.waitLock(r.ctx, k, how, r.e.cacheWaitBound(), func() {
			if !waited {
				waited = true
				r.e.log.Info("waiting for another process fetching the same content into the node cache",
					zap.String("path", fr.rel), zap.Duration("at most, without progress", r.e.cacheWaitBound()))
			}
		})
		if err != nil {
			return nil, err
		}
		if !s.take() {
			lk.unlock()
			return nil, context.Cause(r.ctx)
		}
		return lk, nil
	}
	for round := range 20 {
		if round > 0 {
			// Another process took the entry between our two locks.
			select {
			case <-time.After(time.Duration(round) * 10 * time.Millisecond):
			case <-r.ctx.Done():
				return nil, context.Cause(r.ctx)
			}
		}
		lk, err := lock(lockShared)
		if err != nil {
			return nil, err
		}
		if h := c.lookup(r.ctx, fr, k, r.e.log); h != nil {
			use.lock = lk
			return h, nil
		}
		lk.unlock()
		lk, err = c.tryLock(k, lockExclusive)
		if errors.Is(err, errCacheBusy) {
			continue // another process is filling or reading it: wait for it
		} else if err != nil {
			return nil, err
		}
		use.lock = lk
		// Filled by another process between the two locks?
		return c.lookup(r.ctx, fr, k, r.e.log), nil
	}
	return nil, fmt.Errorf("%w (the entry kept changing hands)", errCacheWait)
}

// dropCache lets go of a file's claim on the cache.
func (r *run) dropCache(fr *fileRun) {
	fr.cache.release()
	fr.cache = nil
}

// leaveCache sends a file back to the direct path, releasing its claim.
func (r *run) leaveCache(fr *fileRun) {
	r.dropCache(fr)
	fr.useStore(r.root, StateDir, tmpBase(fr.rel))
}

// commitViaCache moves a verified download into the cache, seals it,
// materialises it into DEST from the same descriptor, and lets go of the
// entry.
func (r *run) commitViaCache(fr *fileRun) error {
	c, k := r.e.cache, fr.cache.key
	defer r.dropCache(fr)
	h, err := c.insert(r.ctx, fr, k)
	if err != nil {
		return err
	}
	defer h.close()
	_, err = c.materialize(r.root, fr, k, h)
	return err
}

// redirect downloads a file directly after the cache failed it once its
// bytes had arrived (an insert or a materialisation that failed): a cache
// is an accelerator, never a reason to fail.
func (r *run) redirect(fr *fileRun, err error) {
	r.e.log.Warn("node cache failed after the download; downloading directly", zap.String("path", fr.rel),
		zap.String("error", err.Error()))
	fr.closeFiles()
	r.leaveCache(fr)
	fr.mu.Lock()
	fr.frontier, fr.resumed, fr.hasher = 0, false, nil
	fr.mu.Unlock()
	r.bg.Go(func() { r.begin(fr) })
}
