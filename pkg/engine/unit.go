package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// Units run in the state folder, DEST/.storage-initializer/unit-ID/:
//
//	blob-NNNN/        what blob N unpacked
//	blob-NNNN.done    written after blob N was unpacked and verified
//	blob-NNNN.data    a blob fetched whole first (seekable, cached, streamed)
//	tree/             the merged tree, moved into DEST by the commit
//	files.json        the tree's files, written before "merged"
//	phase             "merging", "merged" or "committing", written when
//	                  that phase starts (merged: when merging ended)
//
// Every phase is read from the phase marker, never inferred from which
// folders exist: an interrupted merge starts the unit over (its blob
// folders were being consumed), a merged tree is committed, an interrupted
// commit moves what is left. Markers are written with write + rename.
const (
	streamAhead   = 4 // ranges of one streamed blob in flight
	unitTreeDir   = "tree"
	unitFilesFile = "files.json"
	unitPhaseFile = "phase"

	phaseUnpack     = ""
	phaseMerging    = "merging"
	phaseMerged     = "merged"
	phaseCommitting = "committing"
)

func blobDir(i int) string  { return fmt.Sprintf("blob-%04d", i) }
func blobMark(i int) string { return blobDir(i) + ".done" }
func blobData(i int) string { return blobDir(i) + ".data" }

// unitRun is the state of one unit during a Run.
type unitRun struct {
	e     *Engine
	u     Unit
	dest  *os.Root // DEST
	rel   string   // the unit's folder, relative to DEST
	root  *os.Root // the unit's folder
	extra chan struct{}

	mu      sync.Mutex
	stats   []UnpackStats
	fresh   bool // a blob was fetched by this run
	fetched atomic.Int64
}

// runUnit fetches, verifies and unpacks a unit's blobs, merges them and
// commits the tree into DEST. A unit that failed for its content (an unsafe
// or corrupt archive, a tree that fails its check) leaves nothing behind;
// one interrupted or cut off from its server keeps its state for a rerun.
//
// With a gate (Plan.CommitTogether) the unit stops once its tree is merged
// and checked, and commits it only when the gate opens.
func (e *Engine) runUnit(ctx context.Context, dest *os.Root, u Unit, gate *commitGate) (*Report, error) {
	rep, err := e.runUnitOnce(ctx, dest, u, gate)
	if err != nil && IsPermanent(err) {
		// Blobs verified before the failure stay for a rerun (a corrupt
		// layer re-pushed); with none, nothing of the unit is left.
		rel := path.Join(StateDir, "unit-"+safeID(u.ID))
		if !hasBlobMarks(dest, rel, len(u.Blobs)) {
			_ = dest.RemoveAll(rel)
		}
	}
	return rep, err
}

func hasBlobMarks(dest *os.Root, rel string, n int) bool {
	for i := range n {
		if _, err := dest.Lstat(path.Join(rel, blobMark(i))); err == nil {
			return true
		}
	}
	return false
}

func (e *Engine) runUnitOnce(ctx context.Context, dest *os.Root, u Unit, gate *commitGate) (*Report, error) {
	rel := path.Join(StateDir, "unit-"+safeID(u.ID))
	if _, err := dest.Lstat(rel); err != nil {
		if rep, ok := e.unitPresent(dest, u); ok {
			if err := gate.pass(ctx); err != nil {
				return nil, err
			}
			e.log.Info("already in DEST from an earlier run; nothing to fetch", zap.String("unit", u.Name),
				zap.Int("files", len(rep.Files)))
			return rep, nil
		}
	}
	if err := dest.MkdirAll(rel, 0o755); err != nil {
		return nil, fmt.Errorf("create staging folder for %s: %w", u.Name, err)
	}
	ur := &unitRun{e: e, u: u, dest: dest, rel: rel, extra: make(chan struct{}, streamAhead*e.blobJobs),
		stats: make([]UnpackStats, len(u.Blobs))}
	if err := ur.open(); err != nil {
		return nil, err
	}
	defer func() {
		if ur.root != nil {
			ur.root.Close()
		}
	}()

	ph, err := ur.phase()
	if err != nil {
		return nil, err
	}
	if ph == phaseMerging {
		e.log.Info("an earlier run was interrupted while merging; starting over", zap.String("unit", u.Name))
		if err := ur.reset(); err != nil {
			return nil, err
		}
		ph = phaseUnpack
	}
	if ph == phaseUnpack {
		if err := ur.unpackAll(ctx); err != nil {
			return nil, err
		}
		if err := ur.merge(ctx); err != nil {
			return nil, err
		}
		ph = phaseMerged
	} else {
		e.log.Info("resuming a unit merged by an earlier run", zap.String("unit", u.Name), zap.String("phase", ph))
	}
	files, err := ur.readFiles()
	if err != nil {
		return nil, err
	}
	// A commit an earlier run started was already let through its gate:
	// it goes on whatever the others do now.
	if err := gate.pass(ctx); err != nil && ph != phaseCommitting {
		return nil, err
	}
	if ph != phaseCommitting {
		if err := ur.setPhase(phaseCommitting); err != nil {
			return nil, err
		}
	}
	if err := commitTree(ctx, dest, path.Join(rel, unitTreeDir)); err != nil {
		return nil, fmt.Errorf("commit %s into %s: %w", u.Name, dest.Name(), err)
	}
	e.recordUnit(dest, u, files)
	ur.root.Close()
	ur.root = nil
	if err := dest.RemoveAll(rel); err != nil {
		return nil, fmt.Errorf("remove staging folder of %s: %w", u.Name, err)
	}
	return ur.report(files), nil
}

func (ur *unitRun) open() error {
	r, err := ur.dest.OpenRoot(ur.rel)
	if err != nil {
		return fmt.Errorf("open staging folder for %s: %w", ur.u.Name, err)
	}
	ur.root = r
	return nil
}

// reset empties the unit's folder.
func (ur *unitRun) reset() error {
	ur.root.Close()
	if err := ur.dest.RemoveAll(ur.rel); err != nil {
		return fmt.Errorf("reset staging folder of %s: %w", ur.u.Name, err)
	}
	if err := ur.dest.MkdirAll(ur.rel, 0o755); err != nil {
		return fmt.Errorf("reset staging folder of %s: %w", ur.u.Name, err)
	}
	return ur.open()
}

// unpackAll fetches and unpacks every blob not kept from an earlier run,
// a few at a time; the first failure stops the others (the blobs already
// verified stay for a rerun).
func (ur *unitRun) unpackAll(ctx context.Context) error {
	var todo []int
	for i, b := range ur.u.Blobs {
		if st, ok := ur.readMark(i, b); ok {
			ur.stats[i] = st
			ur.e.log.Info("blob kept from an earlier run", zap.String("unit", ur.u.Name), zap.String("blob", b.Path))
			continue
		}
		if err := ur.root.RemoveAll(blobDir(i)); err != nil {
			return fmt.Errorf("clear partial %s: %w", b.Path, err)
		}
		todo = append(todo, i)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, ur.e.blobJobs)
	var wg sync.WaitGroup
	for _, i := range todo {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := ur.unpackRetry(ctx, i); err != nil {
				cancel(err)
				_ = ur.root.RemoveAll(blobDir(i))
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	var total int64
	for _, st := range ur.stats {
		total += st.Bytes
	}
	if total > ur.e.maxBytes {
		return Permanent(fmt.Errorf("%s unpacks to %d bytes, more than the limit %d (--max-extract-bytes)", ur.u.Name, total, ur.e.maxBytes))
	}
	return nil
}

// unpackRetry unpacks blob i, once more from scratch when its checksum did
// not match: bytes flipped in transit are caught only at the end of a
// streamed blob, and a second download tells them from a corrupt blob.
func (ur *unitRun) unpackRetry(ctx context.Context, i int) error {
	b := ur.u.Blobs[i]
	err := ur.unpackOne(ctx, i)
	if err == nil || !errors.Is(err, ErrBlobMismatch) || ctx.Err() != nil {
		return err
	}
	ur.e.log.Warn("blob checksum mismatch; fetching it again", zap.String("unit", ur.u.Name), zap.String("blob", b.Path),
		zap.String("error", err.Error()))
	if err := ur.root.RemoveAll(blobDir(i)); err != nil {
		return fmt.Errorf("clear %s for a second try: %w", b.Path, err)
	}
	if err := ur.unpackOne(ctx, i); err != nil {
		if errors.Is(err, ErrBlobMismatch) {
			return Permanent(fmt.Errorf("%w (after one refetch): the blob is corrupt at the source; publish it again", err))
		}
		return err
	}
	return nil
}

// unpackOne fetches blob i and unpacks it into its folder, then records it.
func (ur *unitRun) unpackOne(ctx context.Context, i int) error {
	b := ur.u.Blobs[i]
	chk, err := chooseCheck(b.File, blobVerifyMode(ur.e.verify))
	if err != nil {
		return Permanent(err)
	}
	if err := ur.root.MkdirAll(blobDir(i), 0o755); err != nil {
		return fmt.Errorf("create folder for %s: %w", b.Path, err)
	}
	sub, err := ur.root.OpenRoot(blobDir(i))
	if err != nil {
		return fmt.Errorf("open folder for %s: %w", b.Path, err)
	}
	defer sub.Close()
	opts := UnpackOptions{Keep: ur.e.keep, MaxBytes: ur.e.maxBytes, MaxEntries: ur.e.maxEntries, FreeBytes: ur.freeBytes,
		Log: ur.e.log.With(zap.String("unit", ur.u.Name), zap.String("blob", b.Path))}
	var st UnpackStats
	if ur.streamable(b, chk) {
		st, err = ur.unpackStreamed(ctx, b, *chk.want, sub, opts)
	} else {
		st, err = ur.unpackFetched(ctx, i, b, chk, sub, opts)
	}
	if err != nil {
		return fmt.Errorf("%s: %s: %w", ur.u.Name, b.Path, err)
	}
	if err := writeMarker(ur.root, blobMark(i), blobRecord{Identity: b.Identity, Stats: st}); err != nil {
		return err
	}
	_ = ur.root.Remove(blobData(i))
	ur.e.log.Info("unpacked and verified", zap.String("unit", ur.u.Name), zap.String("blob", b.Path),
		zap.String("format", st.Format), zap.Int64("size", b.Size), zap.Int("files", st.Files),
		zap.Int64("bytes", st.Bytes), zap.Int("skipped", st.Skipped))
	ur.mu.Lock()
	ur.stats[i], ur.fresh = st, true
	ur.mu.Unlock()
	return nil
}

// streamable: a blob with a known size and checksum, read without the
// node cache and not needed whole on disk, streams straight into its
// unpacker (no temporary copy).
func (ur *unitRun) streamable(b Blob, chk check) bool {
	return ur.e.cache == nil && !b.Seekable && !b.Stream && b.Size > 0 && chk.want != nil && !chk.want.Composite
}

func (ur *unitRun) unpackStreamed(ctx context.Context, b Blob, want checksum.Value, sub *os.Root, opts UnpackOptions) (UnpackStats, error) {
	obs := ur.e.observer
	s := openBlobStream(ctx, streamSpec{e: ur.e, src: b.Source, name: b.Path, want: want, size: b.Size,
		chunk: min(ur.e.chunkSize, streamChunk), ahead: max(1, min(streamAhead, ur.e.concurrency)), extra: ur.extra,
		progress: func(n int64) { obs.Transferred(n); ur.fetched.Add(n) }})
	defer s.Close()
	st, err := b.Unpack(ctx, UnpackSource{Reader: s, Size: b.Size}, sub, opts)
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrBlobMismatch) {
		if s.err != nil && s.err != io.EOF {
			return st, err // the stream failed (its server): resumable
		}
		// A decompressor or tar error on corrupt bytes: the mismatch, found
		// by reading the rest, is the clearer cause to report.
		if _, derr := io.Copy(io.Discard, s); errors.Is(derr, ErrBlobMismatch) {
			return st, fmt.Errorf("%w (unpacking had failed with: %v)", derr, err)
		} else if derr != nil && !errors.Is(derr, ErrBlobMismatch) {
			return st, err
		}
		return st, Permanent(err) // the content itself is refused
	}
	if err != nil {
		return st, err
	}
	// Read to the end, so the checksum is checked even when the archive
	// ended early.
	if _, err := io.Copy(io.Discard, s); err != nil {
		return st, err
	}
	if !s.verified() {
		return st, fmt.Errorf("%w: the blob was not read to its end", ErrBlobMismatch)
	}
	return st, nil
}

// unpackFetched fetches the blob whole (ranged, verified, resumable, and
// through the node cache when there is one), then unpacks it from disk.
func (ur *unitRun) unpackFetched(ctx context.Context, i int, b Blob, chk check, sub *os.Root, opts UnpackOptions) (UnpackStats, error) {
	f := b.File
	f.Path, f.Unfiltered, f.Mode = blobData(i), true, 0o600
	fr := newFileRun(f, f.Path, chk, ur.e.chunkSize)
	fr.alloc = ur.e.alloc
	fr.blob = true
	rep, err := ur.e.fetchFiles(ctx, ur.root, []*fileRun{fr})
	if err != nil {
		return UnpackStats{}, err
	}
	ur.fetched.Add(rep.Fetched)
	fh, err := ur.root.Open(f.Path)
	if err != nil {
		return UnpackStats{}, fmt.Errorf("open fetched blob: %w", err)
	}
	defer fh.Close()
	size := fr.f.Size
	st, err := b.Unpack(ctx, UnpackSource{Reader: io.NewSectionReader(fh, 0, size), File: fh, Size: size}, sub, opts)
	if err != nil && ctx.Err() == nil {
		err = Permanent(err) // the verified blob itself is refused
	}
	return st, err
}

// freeBytes is the space left on DEST's filesystem, -1 when unknown.
func (ur *unitRun) freeBytes() int64 {
	n, err := freeBytes(ur.dest.Name())
	if err != nil {
		return -1
	}
	return n
}

// merge stacks the unpacked blobs into the unit's tree and lists its files.
func (ur *unitRun) merge(ctx context.Context) error {
	if err := ur.setPhase(phaseMerging); err != nil {
		return err
	}
	if err := ur.root.MkdirAll(unitTreeDir, 0o755); err != nil {
		return fmt.Errorf("create tree of %s: %w", ur.u.Name, err)
	}
	dirs := make([]string, len(ur.u.Blobs))
	for i := range ur.u.Blobs {
		dirs[i] = blobDir(i)
	}
	var err error
	if ur.u.Merge != nil {
		err = ur.u.Merge(ctx, ur.root, dirs, unitTreeDir)
	} else {
		for _, d := range dirs {
			if err = moveTree(ctx, ur.root, d, unitTreeDir); err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("merge %s: %w", ur.u.Name, err)
	}
	if ur.u.Check != nil {
		tree, err := ur.root.OpenRoot(unitTreeDir)
		if err != nil {
			return fmt.Errorf("open tree of %s: %w", ur.u.Name, err)
		}
		err = ur.u.Check(tree, ur.stats)
		tree.Close()
		if err != nil {
			// The content itself is wrong: a rerun starts over.
			_ = ur.reset()
			return Permanent(err)
		}
	}
	files, err := listTree(ur.root, unitTreeDir)
	if err != nil {
		return fmt.Errorf("list tree of %s: %w", ur.u.Name, err)
	}
	if err := writeMarker(ur.root, unitFilesFile, files); err != nil {
		return err
	}
	return ur.setPhase(phaseMerged)
}

// report lists the unit's committed files.
func (ur *unitRun) report(files []treeFile) *Report {
	status := StatusDownloaded
	if !ur.fresh {
		status = StatusResumed
	}
	verified := ur.verified()
	rep := &Report{Fetched: ur.fetched.Load()}
	for _, f := range files {
		res := FileResult{Path: f.Path, Size: f.Size, Status: status, Verified: verified}
		rep.Files = append(rep.Files, res)
		rep.Bytes += f.Size
		ur.e.observer.FileDone(res)
	}
	return rep
}

// verified says how a unit's files were verified.
func (ur *unitRun) verified() string {
	if ur.u.Verified != "" {
		return ur.u.Verified
	}
	if len(ur.u.Blobs) > 0 {
		chk, _ := chooseCheck(ur.u.Blobs[0].File, blobVerifyMode(ur.e.verify))
		return chk.describe() + " (of the archive)"
	}
	return "size only"
}
