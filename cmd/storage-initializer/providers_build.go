package main

import (
	"context"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
	"github.com/storage-initializer/storage-initializer/pkg/provider/hf"
	"github.com/storage-initializer/storage-initializer/pkg/provider/httpsrc"
	"github.com/storage-initializer/storage-initializer/pkg/provider/modelscope"
	"github.com/storage-initializer/storage-initializer/pkg/provider/oci"
	"github.com/storage-initializer/storage-initializer/pkg/provider/pvc"
	"github.com/storage-initializer/storage-initializer/pkg/provider/s3"
)

// buildProviders constructs every provider this binary ships.
func buildProviders(eng *engine.Engine, cfg *config, getenv func(string) string) []provider.Provider {
	ociOpts := []oci.Option{oci.WithGetenv(getenv), oci.WithPlatform(cfg.platform), oci.WithCABundle(cfg.caBundle),
		oci.WithLimits(cfg.maxExtractBytes, cfg.maxExtractEntries)}
	if len(cfg.insecureRegistries) > 0 {
		ociOpts = append(ociOpts, oci.WithInsecure(cfg.insecureRegistries...))
	}
	if len(cfg.registryMirrors) > 0 {
		ociOpts = append(ociOpts, oci.WithRegistryMirrors(cfg.registryMirrors...))
	}
	return []provider.Provider{
		oci.New(eng, ociOpts...),
		s3.New(eng, s3.WithGetenv(getenv)),
		pvc.New(eng, pvc.WithRoot(cfg.pvcRoot), pvc.WithMode(pvc.Mode(cfg.pvcMode)), pvc.WithManifest(cfg.manifest)),
		httpsrc.New(eng, httpsrc.WithGetenv(getenv)),
		planFetcher{eng, hf.New(hf.WithGetenv(getenv), hf.WithLogger(eng.Logger()), hf.WithConns(eng.Concurrency()))},
		planFetcher{eng, modelscope.New(modelscope.WithGetenv(getenv), modelscope.WithLogger(eng.Logger()),
			modelscope.WithConns(eng.Concurrency()))},
	}
}

// planFetcher runs a Planner's plain files on the current engine until
// Engine.Run replaces Fetch (hf:// and modelscope:// plans have Files only).
type planFetcher struct {
	eng *engine.Engine
	provider.Planner
}

func (p planFetcher) Fetch(ctx context.Context, src, dest string) (*engine.Report, error) {
	plan, err := p.Plan(ctx, src)
	if err != nil {
		return nil, err
	}
	if plan.Close != nil {
		defer plan.Close()
	}
	return p.eng.Fetch(ctx, dest, plan.Files)
}
