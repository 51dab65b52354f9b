// Package oci fetches models stored in OCI registries: modelcar images
// (the model under /models of an ordinary image), CNCF ModelPack artifacts,
// KitOps ModelKits and files pushed with oras.
//
// Layers that are files themselves (ModelPack .raw, oras files) go to the
// engine, which fetches them with parallel ranged GETs and verifies their
// sha256. Tar layers stream through decompression into a staging folder in
// DEST, several at once, each checked against its digest; modelcar layers
// are then stacked in order (whiteouts applied) and the tree is committed
// into DEST only after every digest checked out.
package oci

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Provider implements provider.Provider for oci:// and oci+fetch://.
type Provider struct {
	eng *engine.Engine
	cfg config
	log *zap.Logger
}

// New returns an OCI provider fetching through eng.
func New(eng *engine.Engine, opts ...Option) *Provider {
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	return &Provider{eng: eng, cfg: cfg, log: eng.Logger().With(zap.String("provider", "oci"))}
}

// Schemes implements provider.Provider.
func (p *Provider) Schemes() []string { return slices.Clone(schemes) }

// Plan resolves src and says what Fetch would do, downloading no layer.
func (p *Provider) Plan(ctx context.Context, src string) (*Plan, error) {
	ref, err := parseRef(src, &p.cfg)
	if err != nil {
		return nil, err
	}
	c, plan, err := p.open(ctx, src, ref)
	if err != nil {
		return nil, err
	}
	c.close()
	return plan, nil
}

// Fetch implements provider.Provider.
func (p *Provider) Fetch(ctx context.Context, src, dest string) (*engine.Report, error) {
	start := time.Now()
	ref, err := parseRef(src, &p.cfg)
	if err != nil {
		return nil, err
	}
	c, plan, err := p.open(ctx, src, ref)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if p.eng.DryRun() {
		return dryRunReport(plan), nil
	}
	var raw, tars []Layer
	for _, l := range plan.Layers {
		switch l.Action {
		case ActionFile:
			raw = append(raw, l)
		case ActionExtract:
			tars = append(tars, l)
		default:
			p.log.Info("layer skipped", zap.Int("layer", l.Index), zap.String("digest", l.Digest), zap.String("reason", l.Reason))
		}
	}
	files, err := p.engineFiles(c, raw)
	if err != nil {
		return nil, err
	}

	var staged *stagedRun
	if len(tars) > 0 {
		if staged, err = p.openStage(c, plan, tars, dest); err != nil {
			return nil, err
		}
	}

	// Raw files and tar layers download at the same time; the first
	// failure cancels the other half.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var fileRep *engine.Report
	if len(files) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if fileRep, err = p.eng.Fetch(ctx, dest, files); err != nil {
				cancel(nameLayer(err, raw))
			}
		}()
	}
	if staged != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := staged.build(ctx); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	var tarRep *engine.Report
	if staged != nil {
		if tarRep, err = staged.commit(ctx, dest); err != nil {
			return nil, err
		}
	}
	rep := &engine.Report{}
	rep.Add(fileRep)
	rep.Add(tarRep)
	rep.Duration = time.Since(start)
	p.log.Info("OCI fetch done", zap.String("ref", src), zap.String("digest", plan.Digest),
		zap.Int("files", len(rep.Files)), zap.Int64("bytes", rep.Bytes), zap.Int64("fetched", rep.Fetched),
		zap.Duration("took", rep.Duration))
	return rep, nil
}

// nameLayer adds the layer digest to an engine error about one of the
// files that came from a raw layer, so the message names the blob to check.
func nameLayer(err error, raw []Layer) error {
	msg := err.Error()
	for _, l := range raw {
		if strings.Contains(msg, " "+l.Path+":") || strings.Contains(msg, " "+l.Path+" ") {
			return fmt.Errorf("layer %d (%s, file %s): %w", l.Index, l.Digest, l.Path, err)
		}
	}
	return err
}
