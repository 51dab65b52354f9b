package oci

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/extract"
)

// stagedRun is the tar-layer half of one Fetch.
type stagedRun struct {
	p      *Provider
	c      *repoClient
	plan   *Plan
	layers []Layer
	stage  *engine.Stage
	root   *os.Root

	extra   chan struct{} // read-ahead buffers shared by the layer streams
	mu      sync.Mutex
	records map[int]layerRecord
	fresh   map[int]bool // downloaded by this run (not kept from an earlier one)
	fetched int64
}

// openStage opens (or finds, after a kill) the staging folder of an image
// in DEST. It is created before any download starts and committed only
// after every other download of the Fetch ended: the engine's files share
// DEST's state folder, which is removed as soon as it is empty.
func (p *Provider) openStage(c *repoClient, plan *Plan, layers []Layer, dest string) (*stagedRun, error) {
	stage, err := engine.NewStage(dest, "oci-"+strings.TrimPrefix(plan.Digest, "sha256:"))
	if err != nil {
		return nil, err
	}
	return &stagedRun{p: p, c: c, plan: plan, layers: layers, stage: stage, root: stage.Root(),
		extra: make(chan struct{}, p.streamAhead()), records: map[int]layerRecord{}, fresh: map[int]bool{}}, nil
}

// build streams every tar layer into the stage (in parallel, each into its
// own folder), checks each digest and stacks the layers in order; commit
// then moves the tree into DEST.
func (r *stagedRun) build(ctx context.Context) error {
	p := r.p
	ph, err := currentPhase(r.root)
	if err != nil {
		return fmt.Errorf("inspect staging folder %s: %w", r.stage.Path(), err)
	}
	if ph == phaseReset {
		p.log.Info("an earlier run was interrupted while stacking layers; starting the image again", zap.String("stage", r.stage.Path()))
		if err := r.stage.Reset(); err != nil {
			return err
		}
		r.root, ph = r.stage.Root(), phaseExtract
	}
	if ph == phaseExtract {
		if err := r.extractAll(ctx); err != nil {
			return err
		}
		if err := r.merge(ctx); err != nil {
			return err
		}
	} else {
		p.log.Info("layers were stacked by an earlier run; committing", zap.String("stage", r.stage.Path()))
	}
	return clearState(r.root)
}

func (r *stagedRun) extractAll(ctx context.Context) error {
	if err := r.root.MkdirAll(stateFolder, 0o755); err != nil {
		return fmt.Errorf("create staging state: %w", err)
	}
	var todo []Layer
	var bytes int64
	for _, l := range r.layers {
		if rec, ok := readRecord(r.root, l.Index, l.Digest); ok {
			r.records[l.Index] = rec
			r.p.log.Info("layer kept from an earlier run", zap.Int("layer", l.Index), zap.String("digest", l.Digest))
			continue
		}
		if err := r.root.RemoveAll(layerDir(l.Index)); err != nil {
			return fmt.Errorf("clear partial layer %d: %w", l.Index, err)
		}
		todo = append(todo, l)
		bytes += l.Size
	}
	// Bytes are the compressed layers to download (what Transferred
	// counts); how many files they hold is known only once extracted.
	r.p.eng.Observer().Planned(0, bytes)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, r.p.cfg.layerJobs)
	var wg sync.WaitGroup
	var first error
	var once sync.Once
	for _, l := range todo {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := r.extractRetry(ctx, l); err != nil {
				once.Do(func() { first = err; cancel(err) })
				// Keep the verified layers for a rerun; drop this one.
				_ = r.root.RemoveAll(layerDir(l.Index))
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(ctx)
}

// extractRetry extracts a layer, once more from scratch when its digest
// did not match: bytes flipped in transit are caught only at the end of a
// streamed layer, and a second download tells them from a corrupt blob.
func (r *stagedRun) extractRetry(ctx context.Context, l Layer) error {
	err := r.extractOne(ctx, l)
	if err == nil || !errors.Is(err, ErrDigest) || ctx.Err() != nil {
		return err
	}
	r.p.log.Warn("layer digest mismatch; fetching the layer again", zap.Int("layer", l.Index),
		zap.String("digest", l.Digest), zap.Error(err))
	if err := r.root.RemoveAll(layerDir(l.Index)); err != nil {
		return fmt.Errorf("clear layer %d for a second try: %w", l.Index, err)
	}
	if err := r.extractOne(ctx, l); err != nil {
		if errors.Is(err, ErrDigest) {
			return fmt.Errorf("%w (after one refetch): the blob is corrupt in the registry; push the image again", err)
		}
		return err
	}
	return nil
}

// extractOne streams one layer into its folder and records it once its
// digest has been checked.
func (r *stagedRun) extractOne(ctx context.Context, l Layer) error {
	dir := layerDir(l.Index)
	if err := r.root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create folder for layer %d: %w", l.Index, err)
	}
	sub, err := r.root.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open folder for layer %d: %w", l.Index, err)
	}
	defer sub.Close()
	log := r.p.log.With(zap.Int("layer", l.Index), zap.String("digest", l.Digest))
	var (
		src      io.Reader
		verified func() bool
	)
	if r.p.eng.Caching() {
		blob, done, err := r.cachedBlob(ctx, l)
		if err != nil {
			return fmt.Errorf("layer %d (%s): %w", l.Index, l.Digest, err)
		}
		defer done()
		src, verified = blob, func() bool { return true } // the engine checked the digest
	} else {
		want, _ := hex.DecodeString(strings.TrimPrefix(l.Digest, "sha256:"))
		obs := r.p.eng.Observer()
		s := openStream(ctx, streamSpec{
			eng: r.p.eng, src: r.c.loader(l.Digest, r.p.log), digest: l.Digest, want: want, size: l.Size,
			chunk: r.p.cfg.chunk, ahead: r.p.streamAhead(), log: r.p.log, extra: r.extra,
			progress: func(n int64) {
				obs.Transferred(n)
				r.mu.Lock()
				r.fetched += n
				r.mu.Unlock()
			},
		})
		defer s.Close()
		src, verified = s, s.verified
	}
	st, format, err := r.untar(ctx, src, verified, sub, l, log)
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", l.Index, l.Digest, err)
	}
	rec := layerRecord{Digest: l.Digest, Roots: st.Roots, Bytes: st.Bytes}
	if err := writeMark(r.root, layerMark(l.Index), rec); err != nil {
		return err
	}
	log.Info("layer extracted and verified", zap.String("compression", format), zap.Int64("size", l.Size),
		zap.Int("files", st.Files), zap.Int64("bytes", st.Bytes), zap.Int("skipped", st.SkippedCount))
	r.mu.Lock()
	r.records[l.Index], r.fresh[l.Index] = rec, true
	r.mu.Unlock()
	return nil
}

// untar decompresses and extracts the stream, then reads it to its end so
// the digest is checked even when the tar ended early. When extraction
// fails on what looks like corrupt data, the rest of the blob is read too:
// a digest mismatch is the clearer cause to report.
func (r *stagedRun) untar(ctx context.Context, s io.Reader, verified func() bool, sub *os.Root, l Layer, log *zap.Logger) (extract.Stats, string, error) {
	var st extract.Stats
	dec, format, err := extract.Decompress(s)
	if err == nil {
		defer dec.Close()
		st, err = extract.Tar(ctx, dec, sub, extract.Options{
			Prefix: l.Prefix, Base: l.Path, KeepWhiteouts: l.Whiteouts,
			MaxBytes: r.p.cfg.maxBytes, MaxEntries: r.p.cfg.maxEntries,
			Keep: r.p.eng.Keep, Logger: log,
		})
	}
	if err != nil && !errors.Is(err, ErrDigest) && !errors.Is(err, extract.ErrUnsafe) &&
		!errors.Is(err, extract.ErrLimit) && ctx.Err() == nil {
		if _, derr := io.Copy(io.Discard, s); errors.Is(derr, ErrDigest) {
			return st, format, fmt.Errorf("%w (extraction had failed with: %v)", derr, err)
		}
	}
	if err != nil {
		return st, format, err
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		return st, format, err
	}
	if !verified() {
		return st, format, fmt.Errorf("%w: layer was not read to its end", ErrDigest)
	}
	return st, format, nil
}

// streamAhead is how many ranges of one layer may be fetched at once,
// within the engine's bound on requests in flight.
func (p *Provider) streamAhead() int {
	return max(1, min(streamAhead, p.eng.Concurrency()))
}

// merge stacks the extracted layers onto the stage root in manifest order.
func (r *stagedRun) merge(ctx context.Context) error {
	if err := writeMark(r.root, markMerging, r.plan.Digest); err != nil {
		return err
	}
	var total int64
	for _, l := range r.layers {
		if err := extract.ApplyLayer(ctx, r.root, layerDir(l.Index), "."); err != nil {
			return err
		}
		total += r.records[l.Index].Bytes
	}
	if r.p.cfg.maxBytes > 0 && total > r.p.cfg.maxBytes {
		_ = r.stage.Discard()
		return fmt.Errorf("%w: the layers of %s hold %d bytes, more than the limit %d", extract.ErrLimit, r.plan.Ref, total, r.p.cfg.maxBytes)
	}
	if err := r.checkNotEmpty(); err != nil {
		_ = r.stage.Discard()
		return err
	}
	if err := writeMark(r.root, markMerged, r.plan.Digest); err != nil {
		return err
	}
	return r.root.Remove(markMerging)
}

// checkNotEmpty fails a modelcar without files under /models, saying
// what the image holds instead.
func (r *stagedRun) checkNotEmpty() error {
	found := false
	_ = fs.WalkDir(r.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return fs.SkipAll
		}
		if p == stateFolder {
			return fs.SkipDir
		}
		if !d.IsDir() {
			found = true
		}
		return nil
	})
	if found {
		return nil
	}
	var roots []string
	for _, rec := range r.records {
		roots = append(roots, rec.Roots...)
	}
	slices.Sort(roots)
	roots = slices.Compact(roots)
	if r.plan.Kind == KindModelcar {
		return fmt.Errorf("%s (%s) has no files under /%s; the image's top-level entries are: %s (build the modelcar with the model copied to /%s)",
			r.plan.Ref, r.plan.Digest, modelsDir, orNone(roots), modelsDir)
	}
	return fmt.Errorf("%s (%s): its layers hold no files", r.plan.Ref, r.plan.Digest)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}

// commit moves the stacked tree into DEST and reports each file.
func (r *stagedRun) commit(ctx context.Context, dest string) (*engine.Report, error) {
	moved, err := r.stage.Commit(ctx)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", dest, err)
	}
	defer root.Close()
	status := engine.StatusDownloaded
	if len(r.fresh) == 0 {
		status = engine.StatusResumed
	}
	rep := &engine.Report{Fetched: r.fetched}
	obs := r.p.eng.Observer()
	for _, p := range moved {
		fi, err := root.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		fr := engine.FileResult{Path: p, Size: fi.Size(), Status: status, Verified: "sha256 (OCI layer digest)"}
		rep.Files = append(rep.Files, fr)
		rep.Bytes += fr.Size
		obs.FileDone(fr)
	}
	return rep, nil
}
