package engine

import (
	"go.uber.org/zap"
)

// WithCache routes cacheable files through a node-local cache (see Cache).
func WithCache(c *Cache) Option { return func(e *Engine) { e.cache = c } }

// viaCache runs in a worker: it takes the entry's lock (waiting while
// another process fetches the same content), then materialises a verified
// hit into DEST, or starts the download into the cache.
func (r *run) viaCache(fr *fileRun) {
	c := r.e.cache
	k := cacheKey(fr)
	lk, err := c.lock(r.ctx, k, func() {
		r.e.log.Info("waiting for another process fetching the same content into the node cache", zap.String("path", fr.rel))
	})
	if err != nil {
		if r.ctx.Err() != nil {
			return
		}
		r.e.log.Warn("node cache lock failed; downloading directly", zap.String("path", fr.rel), zap.String("error", err.Error()))
		r.bg.Go(func() { r.begin(fr) })
		return
	}
	fr.cache = &cacheUse{key: k, lock: lk}
	if c.lookup(r.ctx, fr, k, r.e.log) {
		how, err := c.materialize(r.root, fr, k)
		lk.unlock()
		fr.cache.lock = nil
		if err != nil {
			r.fail(err)
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
	r.bg.Go(func() { r.begin(fr) })
}

// leaveCache sends a file back to the direct path, releasing its lock.
func (r *run) leaveCache(fr *fileRun) {
	if fr.cache != nil {
		fr.cache.lock.unlock()
		fr.cache = nil
	}
	fr.useStore(r.root, StateDir, tmpBase(fr.rel))
}

// commitViaCache moves a verified download into the cache, then
// materialises it into DEST, and releases the entry's lock.
func (r *run) commitViaCache(fr *fileRun) error {
	c := r.e.cache
	defer func() {
		fr.cache.lock.unlock()
		fr.cache.lock = nil
	}()
	// Entries are read-only: DEST hardlinks share their inode.
	if err := fr.seal(fileMode(fr.f.Mode) &^ 0o222); err != nil {
		return err
	}
	if err := c.insert(fr, fr.cache.key); err != nil {
		return err
	}
	_, err := c.materialize(r.root, fr, fr.cache.key)
	return err
}
