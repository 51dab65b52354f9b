package main

import (
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
	"github.com/storage-initializer/storage-initializer/pkg/provider/httpsrc"
	"github.com/storage-initializer/storage-initializer/pkg/provider/pvc"
	"github.com/storage-initializer/storage-initializer/pkg/provider/s3"
)

// buildProviders constructs every provider this binary ships.
func buildProviders(eng *engine.Engine, cfg *config, getenv func(string) string) []provider.Provider {
	return []provider.Provider{
		s3.New(eng, s3.WithGetenv(getenv)),
		pvc.New(eng, pvc.WithRoot(cfg.pvcRoot), pvc.WithMode(pvc.Mode(cfg.pvcMode)), pvc.WithManifest(cfg.manifest)),
		httpsrc.New(eng, httpsrc.WithGetenv(getenv)),
	}
}
