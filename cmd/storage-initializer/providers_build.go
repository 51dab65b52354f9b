package main

import (
	"github.com/storage-initializer/storage-initializer/internal/httpx"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
	"github.com/storage-initializer/storage-initializer/pkg/provider/azblob"
	"github.com/storage-initializer/storage-initializer/pkg/provider/gcs"
	"github.com/storage-initializer/storage-initializer/pkg/provider/hf"
	"github.com/storage-initializer/storage-initializer/pkg/provider/httpsrc"
	"github.com/storage-initializer/storage-initializer/pkg/provider/modelscope"
	"github.com/storage-initializer/storage-initializer/pkg/provider/oci"
	"github.com/storage-initializer/storage-initializer/pkg/provider/pvc"
	"github.com/storage-initializer/storage-initializer/pkg/provider/s3"
)

// buildProviders constructs every provider this binary ships.
//
// Every data request already holds one of the engine's --concurrency
// tokens; the S3, OCI, http(s), Hugging Face and ModelScope transports also
// share one limiter of the same size at the wire, so planning requests
// (listings, HEADs, manifests, registry tokens) never add to what the
// servers see.
func buildProviders(set provider.Settings, cfg *config, getenv func(string) string) []provider.Planner {
	wire := httpx.NewLimiter(set.Conns())
	ociOpts := []oci.Option{oci.WithGetenv(getenv), oci.WithPlatform(cfg.platform), oci.WithCABundle(cfg.caBundle),
		oci.WithLimiter(wire)}
	if len(cfg.insecureRegistries) > 0 {
		ociOpts = append(ociOpts, oci.WithInsecure(cfg.insecureRegistries...))
	}
	if len(cfg.registryMirrors) > 0 {
		ociOpts = append(ociOpts, oci.WithRegistryMirrors(cfg.registryMirrors...))
	}
	return []provider.Planner{
		oci.New(set, ociOpts...),
		s3.New(set, s3.WithGetenv(getenv), s3.WithLimiter(wire)),
		pvc.New(set, pvc.WithRoot(cfg.pvcRoot), pvc.WithMode(pvc.Mode(cfg.pvcMode)), pvc.WithManifest(cfg.manifest)),
		httpsrc.New(set, httpsrc.WithGetenv(getenv), httpsrc.WithLimiter(wire)),
		hf.New(set, hf.WithGetenv(getenv), hf.WithLimiter(wire)),
		modelscope.New(set, modelscope.WithGetenv(getenv), modelscope.WithLimiter(wire)),
		gcs.New(set, gcs.WithGetenv(getenv), gcs.WithLimiter(wire)),
		azureBlob{azblob.New(set, azblob.WithGetenv(getenv), azblob.WithLimiter(wire))},
	}
}

// azureBlob registers the Azure Blob provider under azureBlobKey rather
// than "https", which belongs to the generic web provider.
type azureBlob struct{ *azblob.Provider }

func (azureBlob) Schemes() []string { return []string{azureBlobKey} }
