package oci

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/storage-initializer/storage-initializer/internal/loadertest"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// TestLoaderConformance runs the engine.Loader suite on the blob loader
// against the real registry: each source is a ModelPack artifact whose
// one raw weight layer is the content, pulled through its own fault proxy.
func TestLoaderConformance(t *testing.T) {
	srv := testenv.Registry(t)
	reg := realRegistry(srv.Plain, "", "")
	repo := "si-test/" + strings.ToLower(t.Name())
	var n atomic.Int64
	loadertest.Run(t, func(t *testing.T, content []byte) loadertest.Source {
		tag := fmt.Sprintf("v%d", n.Add(1))
		raw := reg.blob(t, repo, "application/vnd.cncf.model.weight.v1.raw", content, map[string]string{annFilepath: "w.bin"})
		cfg := reg.blob(t, repo, mtModelPackConfig, []byte(`{}`), nil)
		reg.put(t, repo, tag, mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest,
			ArtifactType: mtModelPackManifest, Config: cfg, Layers: []descriptor{raw}})
		proxy, url := loadertest.Front(t, "http://"+srv.Plain)
		plan, err := newProvider(t, nil).Plan(t.Context(), "oci://"+strings.TrimPrefix(url, "http://")+"/"+repo+":"+tag)
		return loadertest.Source{Loader: loadertest.Only(t, plan, err, len(content)), Proxy: proxy}
	})
}
