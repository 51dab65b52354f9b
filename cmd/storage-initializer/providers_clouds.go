package main

import (
	"context"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
	"github.com/storage-initializer/storage-initializer/pkg/provider/azblob"
	"github.com/storage-initializer/storage-initializer/pkg/provider/gcs"
)

// Interim glue until Engine.Run executes plans: the gs:// and Azure Blob
// planners run through engine.Fetch. Drop this file when Run lands and
// register the planners directly.

// azureBlobKey is the registry key of the Azure Blob provider: its URIs
// are https:// URIs of Azure's hosts, routed by azblob.Matches.
const azureBlobKey = "azure-blob"

func cloudProviders(eng *engine.Engine, getenv func(string) string) []provider.Provider {
	return []provider.Provider{
		&planFetcher{
			Planner: gcs.New(gcs.WithGetenv(getenv), gcs.WithConcurrency(eng.Concurrency()), gcs.WithLogger(eng.Logger())),
			eng:     eng, schemes: []string{"gs"},
		},
		&planFetcher{
			Planner: azblob.New(azblob.WithGetenv(getenv), azblob.WithConcurrency(eng.Concurrency()), azblob.WithLogger(eng.Logger())),
			eng:     eng, schemes: []string{azureBlobKey},
		},
	}
}

// planFetcher adapts a Planner to the old Provider interface.
type planFetcher struct {
	provider.Planner
	eng     *engine.Engine
	schemes []string
}

func (p *planFetcher) Schemes() []string { return p.schemes }

func (p *planFetcher) Fetch(ctx context.Context, src, dest string) (*engine.Report, error) {
	plan, err := p.Plan(ctx, src)
	if err != nil {
		return nil, err
	}
	if plan.Close != nil {
		defer plan.Close()
	}
	rep, err := p.eng.Fetch(ctx, dest, plan.Files)
	if err != nil {
		return nil, err
	}
	// A file the source vouches for with nothing but its size was still
	// checked range by range in transit (Azure's transactional MD5): say so.
	checks := map[string]string{}
	for _, f := range plan.Files {
		if rc, ok := f.Source.(interface{ RangeCheck() string }); ok {
			checks[f.Path] = rc.RangeCheck()
		}
	}
	for i, r := range rep.Files {
		if c, ok := checks[r.Path]; ok && r.Verified == "size only" {
			rep.Files[i].Verified = c
		}
	}
	return rep, nil
}
