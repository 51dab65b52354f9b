package engine

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/human"
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

const jobVerify = -1

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// fetchFiles produces files under root (DEST, or a unit's folder): every
// file is fetched in ranges (within the engine's one bound on requests in
// flight), written into a pre-allocated temporary file in the state
// folder, verified, and only then renamed to its final name. Files already
// complete are kept; partial ones resume. Planned was already reported.
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
		drained: make(chan struct{}), open: map[*fileRun]struct{}{}, cacheSlots: make(chan struct{}, e.concurrency)}

	var workers sync.WaitGroup
	for range min(e.concurrency, len(runs)*maxChunks(runs)) {
		workers.Go(r.work)
	}
	for _, fr := range runs {
		if ctx.Err() != nil {
			break
		}
		r.addPending(1)
		r.startFile(fr)
	}
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

// dryRunFiles lists the files Run would produce and how each would be
// verified, touching nothing.
func dryRunFiles(runs []*fileRun) *Report {
	rep := &Report{}
	for _, fr := range runs {
		verified := fr.verified()
		if fr.inBody {
			verified = "checksum sent with the download"
		}
		rep.Files = append(rep.Files, FileResult{Path: fr.rel, Size: fr.f.Size, Status: StatusPlanned,
			Verified: verified, Digest: digestOf(fr)})
		rep.Bytes += max(fr.f.Size, 0)
	}
	return rep
}

// plan validates paths and picks each file's verification up front, so bad
// input fails before a byte is fetched.
func (e *Engine) plan(files []File) ([]*fileRun, error) {
	seen := map[string]bool{}
	var runs []*fileRun
	for _, f := range files {
		rel, err := CleanRel(f.Path)
		if err != nil {
			return nil, fmt.Errorf("refusing to write %q: %w", f.Path, err)
		}
		if !f.Unfiltered && !e.keep(rel) {
			continue
		}
		if seen[rel] {
			return nil, fmt.Errorf("two source files map to the same path %s", rel)
		}
		seen[rel] = true
		if f.Size < 0 && !f.Stream || f.Size != 0 && f.Source == nil {
			return nil, fmt.Errorf("internal: file %s has size %d and no source", rel, f.Size)
		}
		chk, err := chooseCheck(f, e.verify)
		if err != nil && !f.ChecksumsInBody {
			return nil, err
		}
		fr := newFileRun(f, rel, chk, e.chunkSize)
		if f.ChecksumsInBody && len(f.Expect) == 0 && f.Size <= e.chunkSize && f.Size > 0 && e.verify != VerifySize {
			fr.inBody = true
		}
		runs = append(runs, fr)
	}
	return runs, nil
}

// checkSpace fails at once when DEST's filesystem cannot hold what is left
// to fetch, instead of failing halfway.
func (e *Engine) checkSpace(root *os.Root, dest string, runs []*fileRun, extra int64) error {
	need := extra
	for _, fr := range runs {
		if fr.f.Size < 0 {
			continue // a stream of unknown length: checked as it is written
		}
		if fi, err := root.Lstat(fr.rel); err == nil && fi.Mode().IsRegular() && fi.Size() == fr.f.Size {
			continue // probably present; verified later
		}
		need += fr.f.Size
		if fi, err := root.Stat(fr.tmpName()); err == nil {
			need -= fi.Size() // already allocated by an earlier run
		}
	}
	free, err := freeBytes(dest)
	if err != nil || need <= free {
		return nil
	}
	return fmt.Errorf("not enough space in %s: need %s more, %s available: free space or use a larger volume",
		dest, human.Bytes(need), human.Bytes(free))
}

// named adds the file's origin to an error about it.
func (fr *fileRun) named(err error) error {
	if fr.f.Origin == "" {
		return err
	}
	return fmt.Errorf("%s: %w", fr.f.Origin, err)
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
// which bounds the number of files (and descriptors) open at once.
func (r *run) startFile(fr *fileRun) {
	if fi, err := r.root.Lstat(fr.rel); err == nil && fi.Mode().IsRegular() && fi.Size() == fr.f.Size {
		r.send(job{fr: fr, chunk: jobVerify}) // verify the existing file in a worker
		return
	}
	r.fetch(fr)
}

// fetch gets a file that is not in DEST: through the node cache when there
// is one (fetchCached), else directly.
func (r *run) fetch(fr *fileRun) {
	if r.e.cache != nil && cacheable(fr) && !fr.inBody {
		r.fetchCached(fr)
		return
	}
	r.begin(fr)
}

// begin opens the temp file and queues the missing chunks.
func (r *run) begin(fr *fileRun) {
	if fr.store == nil {
		fr.store = r.root
	}
	missing, err := fr.open()
	if err != nil && fr.cache != nil {
		// A full or broken cache never fails a download: go direct.
		r.e.log.Warn("node cache unusable for this file; downloading directly", zap.String("path", fr.rel), zap.String("error", err.Error()))
		r.leaveCache(fr)
		missing, err = fr.open()
	}
	if err != nil {
		r.fail(fr.named(fmt.Errorf("prepare %s: %w", fr.rel, err)))
		return
	}
	r.mu.Lock()
	r.open[fr] = struct{}{}
	r.mu.Unlock()
	if len(missing) == 0 {
		r.bg.Go(func() { r.finalize(fr) })
		return
	}
	for _, i := range missing {
		if !r.send(job{fr: fr, chunk: i}) {
			return
		}
	}
}

func (r *run) work() {
	for {
		select {
		case <-r.ctx.Done():
			return
		case j := <-r.jobs:
			if j.chunk == jobVerify {
				r.checkExisting(j.fr)
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

// checkExisting keeps a file already at its final name when it verifies,
// else downloads it (the existing file stays untouched until the commit).
func (r *run) checkExisting(fr *fileRun) {
	if fr.verifyExisting(r.ctx, r.root) {
		verified := fr.verified()
		if fr.recorded != "" {
			verified = fr.recorded + " (when fetched)"
		}
		r.finish(fr, FileResult{Path: fr.rel, Size: fr.f.Size, Status: StatusPresent,
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

// fetchChunk reads one range into the temp file, computing its CRC inline.
func (r *run) fetchChunk(fr *fileRun, i int) error {
	c := fr.chunks[i]
	alg := fr.crcAlg()
	var crc uint64
	var got int64
	err := r.e.load(r.ctx, fr.f.Source, fr.rel, c.length, c.off, func(body io.Reader) error {
		var h hash.Hash
		switch {
		case alg != "":
			h = alg.New()
		case fr.inlineHash():
			h = fr.chk.want.Algorithm.NewSized(fr.f.Size)
		}
		if fr.inBody {
			var err error
			if h, err = fr.checkFromBody(body, r.e.verify); err != nil {
				return err
			}
		}
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		buf := *bp
		var n int64
		for c.length < 0 || n < c.length {
			want := int64(len(buf))
			if c.length >= 0 {
				want = min(want, c.length-n)
			}
			m, rerr := body.Read(buf[:want])
			if m > 0 {
				if werr := fr.writeAt(buf[:m], c.off+n); werr != nil {
					r.e.observer.Transferred(-n)
					return Permanent(fmt.Errorf("write %s: %w", fr.rel, werr))
				}
				if h != nil {
					h.Write(buf[:m])
				}
				n += int64(m)
				fr.fetched.Add(int64(m))
				r.e.observer.Transferred(int64(m))
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				r.e.observer.Transferred(-n)
				return rerr
			}
		}
		if n < c.length {
			r.e.observer.Transferred(-n)
			return fmt.Errorf("short body: got %d of %d bytes: %w", n, c.length, io.ErrUnexpectedEOF)
		}
		got = n
		switch {
		case (fr.inBody || fr.inlineHash()) && h != nil:
			fr.bodySum = h.Sum(nil)
		case h != nil:
			crc = checksum.CRCFromSum(h.Sum(nil))
		}
		return nil
	})
	if err != nil {
		if c.length < 0 {
			return fmt.Errorf("fetch %s: %w", fr.rel, err)
		}
		return fmt.Errorf("fetch %s bytes %d-%d: %w", fr.rel, c.off, c.off+c.length-1, err)
	}
	if fr.f.Stream {
		if err := fr.streamDone(got); err != nil {
			return Permanent(err)
		}
	}
	complete, err := fr.chunkDone(i, crc)
	if err != nil {
		return Permanent(err)
	}
	if complete {
		r.bg.Go(func() { r.finalize(fr) })
	}
	return nil
}

// finalize verifies a complete temp file and commits it. A checksum
// mismatch refetches the file once before failing.
func (r *run) finalize(fr *fileRun) {
	sums, err := fr.computed()
	if err != nil {
		if r.ctx.Err() == nil {
			r.fail(fr.named(fmt.Errorf("verify %s: %w", fr.rel, err)))
		}
		return
	}
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
		for _, i := range missing {
			if !r.send(job{fr: fr, chunk: i}) {
				return
			}
		}
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
