package main

import (
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
	"github.com/storage-initializer/storage-initializer/pkg/provider/httpsrc"
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
	return append([]provider.Provider{
		oci.New(eng, ociOpts...),
		s3.New(eng, s3.WithGetenv(getenv)),
		pvc.New(eng, pvc.WithRoot(cfg.pvcRoot), pvc.WithMode(pvc.Mode(cfg.pvcMode)), pvc.WithManifest(cfg.manifest)),
		httpsrc.New(eng, httpsrc.WithGetenv(getenv)),
	}, cloudProviders(eng, getenv)...)
}
