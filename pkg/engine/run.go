package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Run executes a provider's plan into dest: the plan's files and units are
// fetched at the same time under the engine's one bound on requests in
// flight, every byte is verified before anything gets its final name, and
// a rerun after a failure resumes. It is the only way bytes reach DEST.
func (e *Engine) Run(ctx context.Context, dest string, p *Plan) (*Report, error) {
	if p.Close != nil {
		defer p.Close()
	}
	start := time.Now()
	runs, err := e.plan(p.Files)
	if err != nil {
		return nil, err
	}
	for _, fr := range runs {
		fr.hold = p.CommitTogether
	}
	if err := validateUnits(p.Units); err != nil {
		return nil, err
	}
	if len(p.Files) > 0 && len(runs) == 0 && len(p.Units) == 0 && len(p.Links) == 0 {
		return nil, Permanent(fmt.Errorf("%s: none of its %d files matches the include/exclude patterns (STORAGE_ALLOW_PATTERNS/STORAGE_IGNORE_PATTERNS): check them",
			p.Source, len(p.Files)))
	}
	for _, s := range p.Skipped {
		e.log.Info("skipped by the provider", zap.String("source", p.Source), zap.String("what", s))
	}
	if e.dryRun {
		return e.dryRunPlan(p, runs), nil
	}
	if len(runs) == 0 && len(p.Units) == 0 && len(p.Links) == 0 {
		// Nothing to write (a no-op source, a verify-only plan): DEST is
		// not touched.
		rep := &Report{Files: p.Checked, Duration: time.Since(start)}
		for _, c := range p.Checked {
			rep.Bytes += c.Size
			e.observer.FileDone(c)
		}
		return rep, nil
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, fmt.Errorf("create destination %s: %w", dest, err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", dest, err)
	}
	defer root.Close()

	var unitBytes int64
	for _, u := range p.Units {
		for _, b := range u.Blobs {
			unitBytes += max(b.Size, 0)
		}
	}
	if len(runs) > 0 || len(p.Units) > 0 {
		if err := root.MkdirAll(StateDir, 0o755); err != nil {
			return nil, fmt.Errorf("create state folder in %s: %w", dest, err)
		}
		// Units are checked for what their blobs announce; what they
		// unpack is checked again as it is written.
		if err := e.checkSpace(root, dest, runs, unitBytes); err != nil {
			return nil, err
		}
	}
	var total int64
	for _, fr := range runs {
		total += max(fr.f.Size, 0)
	}
	e.observer.Planned(len(runs), total+unitBytes)

	rep := &Report{}
	var leftAlone []string
	for _, l := range p.Links {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res, err := e.link(root, l, &leftAlone)
		if err != nil {
			return nil, err
		}
		for _, r := range res {
			rep.Files = append(rep.Files, r)
			rep.Bytes += r.Size
		}
	}
	// Files and units run side by side; the first failure cancels the rest.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		out []*Report
	)
	collect := func(r *Report, err error) {
		if err != nil {
			cancel(err)
			return
		}
		mu.Lock()
		out = append(out, r)
		mu.Unlock()
	}
	var gate *commitGate // CommitTogether: files (as one) and units commit once all verified
	if p.CommitTogether {
		gate = newCommitGate(len(p.Units) + min(len(runs), 1))
	}
	if len(runs) > 0 {
		wg.Go(func() {
			rep, err := e.fetchFiles(ctx, root, runs)
			if err == nil && gate != nil {
				if err = gate.pass(ctx); err == nil {
					err = commitHeld(ctx, root, runs)
				}
			}
			collect(rep, err)
		})
	}
	for _, u := range p.Units {
		wg.Go(func() { collect(e.runUnit(ctx, root, u, gate)) })
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		removeStateDirIfEmpty(root)
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("interrupted; rerun with the same arguments to resume: %w", err)
		}
		return nil, err
	}
	for _, r := range out {
		rep.Add(r)
	}
	if e.cache != nil {
		e.cache.evict(e.log)
	}
	removeStaleUnits(root, p.Units)
	removeStaleHeld(root)
	removeStateDirIfEmpty(root)
	rep.Duration = time.Since(start)
	if p.Resolved != "" {
		e.log.Info("fetched", zap.String("source", p.Source), zap.String("resolved", p.Resolved),
			zap.Int("files", len(rep.Files)), zap.Int64("bytes", rep.Bytes), zap.Int64("fetched", rep.Fetched),
			zap.Duration("took", rep.Duration))
	}
	return rep, nil
}

// Fetch runs a plan of plain files (a convenience for tests and callers
// with nothing else to describe).
func (e *Engine) Fetch(ctx context.Context, dest string, files []File) (*Report, error) {
	return e.Run(ctx, dest, &Plan{Source: dest, Files: files})
}

// validateUnits refuses units the engine cannot run safely.
func validateUnits(units []Unit) error {
	ids := map[string]bool{}
	for _, u := range units {
		if u.ID == "" || ids[u.ID] {
			return fmt.Errorf("internal: unit %q has an empty or repeated id", u.Name)
		}
		ids[u.ID] = true
		for _, b := range u.Blobs {
			if b.Unpack == nil || b.Source == nil && b.Size != 0 {
				return fmt.Errorf("internal: blob %s of %s has no source or unpacker", b.Path, u.Name)
			}
		}
	}
	return nil
}
