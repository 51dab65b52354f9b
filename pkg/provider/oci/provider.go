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

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// Provider implements provider.Planner for oci:// and oci+fetch://.
type Provider struct {
	set provider.Settings
	cfg config
	log *zap.Logger
}

var _ provider.Planner = (*Provider)(nil)

// New returns an OCI provider planning with the run's settings.
func New(set provider.Settings, opts ...Option) *Provider {
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	return &Provider{set: set, cfg: cfg, log: set.Logger().With(zap.String("provider", "oci"))}
}

// Schemes implements provider.Planner.
func (p *Provider) Schemes() []string { return slices.Clone(schemes) }

// Inspect resolves src and says what its layers become, downloading no
// layer.
func (p *Provider) Inspect(ctx context.Context, src string) (*Plan, error) {
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

// Plan implements provider.Planner: layers that are files themselves
// (ModelPack .raw, oras files) become engine files, fetched with parallel
// ranged GETs and verified against their digest; tar layers become one
// unit, committed once every layer checked out.
func (p *Provider) Plan(ctx context.Context, src string) (*engine.Plan, error) {
	ref, err := parseRef(src, &p.cfg)
	if err != nil {
		return nil, err
	}
	c, plan, err := p.open(ctx, src, ref)
	if err != nil {
		return nil, err
	}
	if p.set.Caching && !p.set.DryRun {
		if err := p.checkBlobs(ctx, c, plan.Layers); err != nil {
			c.close()
			return nil, err
		}
	}
	out := &engine.Plan{Source: plan.Ref, Resolved: plan.Digest, Close: c.close}
	var tars []Layer
	for _, l := range plan.Layers {
		switch l.Action {
		case ActionFile:
			f, err := p.engineFile(c, l)
			if err != nil {
				c.close()
				return nil, err
			}
			out.Files = append(out.Files, f)
		case ActionExtract:
			tars = append(tars, l)
		default:
			out.Skipped = append(out.Skipped, fmt.Sprintf("layer %d (%s): %s", l.Index, l.Digest, l.Reason))
		}
	}
	if len(tars) > 0 {
		u, err := p.imageUnit(c, plan, tars)
		if err != nil {
			c.close()
			return nil, err
		}
		out.Units = []engine.Unit{u}
	}
	return out, nil
}
