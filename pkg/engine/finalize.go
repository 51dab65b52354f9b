package engine

// The end of a file: verification, one refetch on a mismatch, commit or
// keeping a file already present.

import (
	"errors"
	"fmt"
	"time"
)

// checkExisting keeps a file already at its final name (or, held, the
// verified copy an earlier run of a CommitTogether plan left) when it
// verifies, else downloads it (the existing file stays untouched until the
// commit).
func (r *run) checkExisting(fr *fileRun, held bool) {
	name, status := fr.rel, StatusPresent
	if held {
		name, status = fr.heldName(), StatusResumed
	}
	if fr.verifyExisting(r.ctx, r.root, name) {
		verified := fr.verified()
		if fr.recorded != "" {
			verified = fr.recorded + " (when fetched)"
		}
		r.finish(fr, FileResult{Path: fr.rel, Size: fr.f.Size, Status: status,
			Verified: verified, Digest: digestOf(fr)})
		return
	}
	if r.ctx.Err() != nil {
		return
	}
	// Queue from another goroutine: a worker must not block on the queue.
	r.bg.Go(func() { r.fetch(fr) })
}

func digestOf(fr *fileRun) string {
	if fr.chk.want == nil {
		return ""
	}
	return fr.chk.want.String()
}

// finalize verifies a complete temp file and commits it. A checksum
// mismatch refetches the file once before failing.
func (r *run) finalize(fr *fileRun) {
	waited := time.Now()
	sums, err := fr.computed()
	if err != nil {
		if r.ctx.Err() == nil {
			r.fail(fr.named(fmt.Errorf("verify %s: %w", fr.rel, err)))
		}
		return
	}
	fr.logHashing(r.e.log, time.Since(waited))
	digest, err := fr.compare(sums)
	var mm *errMismatch
	if errors.As(err, &mm) && !fr.retried {
		fr.retried = true
		r.e.log.Sugar().Warnw("checksum mismatch; fetching the file again", "file", fr.rel, "error", err.Error())
		missing, rerr := fr.reset()
		if rerr != nil {
			r.fail(fmt.Errorf("refetch %s: %w", fr.rel, rerr))
			return
		}
		r.queue(&fileQueue{fr: fr, missing: missing})
		return
	}
	if err != nil {
		r.fail(fr.named(fmt.Errorf("%w (after one refetch): the object is corrupt at the source or changed; check it or re-upload", err)))
		return
	}
	res := FileResult{Path: fr.rel, Size: fr.f.Size, Status: StatusDownloaded, Verified: fr.verified(),
		Digest: digest, Fetched: fr.fetched.Load()}
	if fr.resumed {
		res.Status = StatusResumed
	}
	if fr.cache != nil {
		res.Cache = "miss"
		if fr.resumed {
			res.Cache = "partial"
		}
		if err = r.commitViaCache(fr); err != nil && r.ctx.Err() == nil {
			r.redirect(fr, err)
			return
		}
	} else {
		err = fr.commit(r.root)
	}
	if err != nil {
		r.fail(err)
		return
	}
	r.mu.Lock()
	delete(r.open, fr)
	r.mu.Unlock()
	r.finish(fr, res)
}

func (r *run) finish(fr *fileRun, res FileResult) {
	fr.status = res.Status
	r.mu.Lock()
	r.report.Files = append(r.report.Files, res)
	r.report.Fetched += res.Fetched
	r.mu.Unlock()
	if !fr.blob {
		r.e.observer.FileDone(res)
	}
	r.e.log.Debug("file committed", zapResult(res)...)
	r.addPending(-1)
}
