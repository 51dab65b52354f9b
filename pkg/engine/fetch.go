package engine

import (
	"context"
	"fmt"
	"os"
	"sync"

	"go.uber.org/zap"
)

// run is the state shared by one Fetch.
type run struct {
	e      *Engine
	ctx    context.Context
	cancel context.CancelCauseFunc
	root   *os.Root
	jobs   chan job

	pendingMu sync.Mutex
	pending   int           // files started and not yet committed
	drained   chan struct{} // closed when the producer is done and pending is 0
	produced  bool

	cacheSlots chan struct{} // see cacheSlot
	dirs       *dirFDs       // the state folder and DEST, opened once
	digests    *partDigests  // per-part hashing (parthash.go)

	mu     sync.Mutex
	open   map[*fileRun]struct{}
	report Report
	bg     sync.WaitGroup // finalizers and re-queues
}

// job is one unit of work for a worker: a chunk to fetch, or an existing
// file to verify (jobVerify). Node-cache lookups never run in a worker
// (fetch_cache.go): a worker never waits on a cache lock.
type job struct {
	fr    *fileRun
	chunk int
}

const (
	jobVerify     = -1
	jobVerifyHeld = -2 // a held file (hold.go) an earlier run verified
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// fetchFiles produces files under root (DEST, or a unit's folder): every
// file is fetched in ranges (within the engine's one bound on requests in
// flight), written into a temporary file in the state folder (pre-allocated
// when it has several ranges), verified, and only then renamed to its final
// name. Files already complete are kept; partial ones resume. Planned was
// already reported.
func (e *Engine) fetchFiles(ctx context.Context, root *os.Root, runs []*fileRun) (*Report, error) {
	if len(runs) == 0 {
		return &Report{}, nil
	}
	if err := root.MkdirAll(StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create state folder in %s: %w", root.Name(), err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &run{e: e, ctx: ctx, cancel: cancel, root: root, jobs: make(chan job),
		drained: make(chan struct{}), open: map[*fileRun]struct{}{}, cacheSlots: make(chan struct{}, e.concurrency),
		dirs: newDirFDs(), digests: newPartDigests(true)}
	defer r.dirs.close() // after the workers and finalizers below are done
	defer r.digests.close()

	var workers sync.WaitGroup
	for range min(e.concurrency, len(runs)*maxChunks(runs)) {
		workers.Go(r.work)
	}
	r.produce(runs)
	r.addPending(0) // mark the producer done
	select {
	case <-r.drained:
	case <-ctx.Done():
	}
	failure := context.Cause(ctx) // nil when every file was committed
	cancel(nil)
	workers.Wait()
	r.bg.Wait()
	r.mu.Lock()
	for fr := range r.open {
		fr.close() // temp files and journals stay for a resume
		if failure != nil && fr.f.Stream {
			_ = fr.store.Remove(fr.tmpName()) // a single stream cannot resume
		}
	}
	r.mu.Unlock()
	if failure != nil {
		return nil, failure
	}
	for _, fr := range runs {
		r.report.Bytes += fr.f.Size
	}
	return &r.report, nil
}

// maxChunks is the largest chunk count of one file: workers beyond the
// chunks there are would only wait.
func maxChunks(runs []*fileRun) int {
	n := 1
	for _, fr := range runs {
		if fr.f.Size > 0 {
			n = max(n, int((fr.f.Size+fr.chunkSize-1)/fr.chunkSize))
		}
	}
	return n
}

// fail stops the whole run with err (the first error wins).
func (r *run) fail(err error) { r.cancel(err) }

func (r *run) addPending(d int) {
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	if d == 0 {
		r.produced = true
	}
	r.pending += d
	if r.produced && r.pending == 0 {
		close(r.drained)
	}
}

// send queues a job unless the run is over.
func (r *run) send(j job) bool {
	select {
	case r.jobs <- j:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// startFile is called by the producer; it blocks while workers are busy,
// which bounds the number of files (and descriptors) open at once. A file
// downloaded directly is returned with its chunks for the producer to
// queue (produce); every other path queues its own work.
func (r *run) startFile(fr *fileRun) *fileQueue {
	if fr.present(r.root) {
		r.send(job{fr: fr, chunk: jobVerify}) // verify the existing file in a worker
		return nil
	}
	if fr.heldReady(r.root) {
		r.send(job{fr: fr, chunk: jobVerifyHeld})
		return nil
	}
	return r.fetchQueue(fr)
}

// fetch gets a file that is not in DEST: through the node cache when there
// is one (fetchCached), else directly.
func (r *run) fetch(fr *fileRun) {
	if q := r.fetchQueue(fr); q != nil {
		r.queue(q)
	}
}

// fetchQueue starts fetching a file that is not in DEST and returns the
// chunks to queue when it is downloaded directly (the node cache path
// queues its own).
func (r *run) fetchQueue(fr *fileRun) *fileQueue {
	if r.e.cache != nil && cacheable(fr) && !fr.inBody {
		r.fetchCached(fr)
		return nil
	}
	if missing := r.prepare(fr); len(missing) > 0 {
		return &fileQueue{fr: fr, missing: missing}
	}
	return nil
}

// begin opens the temp file and queues the missing chunks.
func (r *run) begin(fr *fileRun) {
	if missing := r.prepare(fr); len(missing) > 0 {
		r.queue(&fileQueue{fr: fr, missing: missing})
	}
}

// queue hands a file's chunks to the workers, in order.
func (r *run) queue(q *fileQueue) {
	for _, i := range q.missing {
		if !r.send(job{fr: q.fr, chunk: i}) {
			return
		}
	}
}

// prepare opens the temp file and returns the chunks to fetch (none: the
// file failed the run, or is complete and being finalised).
func (r *run) prepare(fr *fileRun) []int {
	if fr.store == nil {
		fr.store = r.root
	}
	fr.dirs = r.dirs
	fr.digests = r.digests
	missing, err := fr.open()
	if err != nil && fr.cache != nil {
		// A full or broken cache never fails a download: go direct.
		r.e.log.Warn("node cache unusable for this file; downloading directly", zap.String("path", fr.rel), zap.String("error", err.Error()))
		r.leaveCache(fr)
		missing, err = fr.open()
	}
	if err != nil {
		r.fail(fr.named(fmt.Errorf("prepare %s: %w", fr.rel, err)))
		return nil
	}
	r.mu.Lock()
	r.open[fr] = struct{}{}
	r.mu.Unlock()
	if len(missing) == 0 {
		r.bg.Go(func() { r.finalize(fr) })
	}
	return missing
}

func (r *run) work() {
	for {
		select {
		case <-r.ctx.Done():
			return
		case j := <-r.jobs:
			if j.chunk == jobVerify || j.chunk == jobVerifyHeld {
				r.checkExisting(j.fr, j.chunk == jobVerifyHeld)
				continue
			}
			if err := r.fetchChunk(j.fr, j.chunk); err != nil {
				if r.ctx.Err() == nil {
					r.fail(j.fr.named(err))
				}
				return
			}
		}
	}
}
