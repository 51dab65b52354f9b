package main

import (
	"github.com/storage-initializer/storage-initializer/pkg/provider"
	"github.com/storage-initializer/storage-initializer/pkg/provider/hf"
	"github.com/storage-initializer/storage-initializer/pkg/provider/httpsrc"
	"github.com/storage-initializer/storage-initializer/pkg/provider/modelscope"
	"github.com/storage-initializer/storage-initializer/pkg/provider/oci"
	"github.com/storage-initializer/storage-initializer/pkg/provider/pvc"
	"github.com/storage-initializer/storage-initializer/pkg/provider/s3"
)

// buildProviders constructs every provider this binary ships.
func buildProviders(set provider.Settings, cfg *config, getenv func(string) string) []provider.Planner {
	ociOpts := []oci.Option{oci.WithGetenv(getenv), oci.WithPlatform(cfg.platform), oci.WithCABundle(cfg.caBundle)}
	if len(cfg.insecureRegistries) > 0 {
		ociOpts = append(ociOpts, oci.WithInsecure(cfg.insecureRegistries...))
	}
	if len(cfg.registryMirrors) > 0 {
		ociOpts = append(ociOpts, oci.WithRegistryMirrors(cfg.registryMirrors...))
	}
	return []provider.Planner{
		oci.New(set, ociOpts...),
		s3.New(set, s3.WithGetenv(getenv)),
		pvc.New(set, pvc.WithRoot(cfg.pvcRoot), pvc.WithMode(pvc.Mode(cfg.pvcMode)), pvc.WithManifest(cfg.manifest)),
		httpsrc.New(set, httpsrc.WithGetenv(getenv)),
		hf.New(hf.WithGetenv(getenv), hf.WithLogger(set.Logger()), hf.WithConns(set.Conns())),
		modelscope.New(modelscope.WithGetenv(getenv), modelscope.WithLogger(set.Logger()), modelscope.WithConns(set.Conns())),
	}
}
