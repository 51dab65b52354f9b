package oci

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/internal/testenv"
)

// These tests run against CNCF distribution (hack/registry.sh start DIR;
// . DIR/registry.env), which serves blobs and ranges its own way.

func TestRealRegistryModelcar(t *testing.T) {
	srv := testenv.Registry(t)
	reg := realRegistry(srv.Plain, "", "")
	repo := "si-test/" + strings.ToLower(t.Name())
	big := strings.Repeat("0123456789abcdef", 20_000) // 320 kB: many streamed ranges
	reg.pushImage(t, repo, "v1", mtOCIImageConfig,
		reg.blob(t, repo, mtLayerGzip, gz(t, tarOf(t, busyboxLayer(t)...)), nil),
		reg.blob(t, repo, mtLayerZstd, zst(t, tarOf(t, d("models/"), f("models/w.bin", big), f("models/old", "o"))), nil),
		reg.blob(t, repo, mtLayerGzip, gz(t, tarOf(t, f("models/.wh.old", ""), f("models/config.json", "{}"))), nil))
	dest, rep, err := fetch(t, newProvider(t, nil), "oci://"+srv.Plain+"/"+repo+":v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"f config.json {}", "f w.bin " + big}, tree(t, dest))
	assert.Len(t, rep.Files, 2)
}

func TestRealRegistryModelPackWithBasicAuth(t *testing.T) {
	srv := testenv.Registry(t)
	reg := realRegistry(srv.Auth, srv.User, srv.Pass)
	repo := "si-test/" + strings.ToLower(t.Name())
	weights := []byte(strings.Repeat("bf16", 100_000))
	w := reg.blob(t, repo, "application/vnd.cncf.model.weight.v1.raw", weights, map[string]string{annFilepath: "model.safetensors"})
	doc := reg.blob(t, repo, "application/vnd.cncf.model.doc.v1.tar+gzip", gz(t, tarOf(t, f("README.md", "hi"))), map[string]string{annFilepath: "README.md"})
	cfg := reg.blob(t, repo, mtModelPackConfig, []byte(`{}`), nil)
	reg.put(t, repo, "v1", mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest,
		ArtifactType: mtModelPackManifest, Config: cfg, Layers: []descriptor{w, doc}})

	env := map[string]string{"KSERVE_OCI_DOCKER_CONFIG": srv.DockerConfig(t)}
	dest, _, err := fetch(t, newProvider(t, env), "oci://"+srv.Auth+"/"+repo+":v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"f README.md hi", "f model.safetensors " + string(weights)}, tree(t, dest))

	_, _, err = fetch(t, newProvider(t, nil), "oci://"+srv.Auth+"/"+repo+":v1")
	require.Error(t, err, "anonymous pull from the authenticated registry")
	assert.NotContains(t, err.Error(), srv.Pass)
}
