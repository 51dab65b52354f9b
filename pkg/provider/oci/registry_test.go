package oci

import (
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/storage-initializer/storage-initializer/pkg/engine"

	"github.com/storage-initializer/storage-initializer/internal/faultproxy"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
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

// TestRealRegistryFaults puts a fault-injecting proxy between the provider
// and distribution: resets, truncations, throttling, server errors and a
// flipped bit must all be survived, by range retries or a layer refetch.
func TestRealRegistryFaults(t *testing.T) {
	srv := testenv.Registry(t)
	reg := realRegistry(srv.Plain, "", "")
	repo := "si-test/" + strings.ToLower(t.Name())
	rnd := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 100_000)
	for i := range buf {
		buf[i] = byte(rnd.IntN(256))
	}
	big := hex.EncodeToString(buf) // compresses to about half: ~100 streamed ranges
	weights := []byte(strings.Repeat("bf16", 40_000))
	layer := reg.blob(t, repo, mtLayerGzip, gz(t, tarOf(t, f("models/w.bin", big))), nil)
	reg.pushImage(t, repo, "car", mtOCIImageConfig, layer)
	raw := reg.blob(t, repo, "application/vnd.cncf.model.weight.v1.raw", weights, map[string]string{annFilepath: "w.raw"})
	cfg := reg.blob(t, repo, mtModelPackConfig, []byte(`{}`), nil)
	reg.put(t, repo, "pack", mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest, Config: cfg, Layers: []descriptor{raw}})

	blobs := `/blobs/sha256:`
	proxy, url := faultproxy.Start(t, "http://"+srv.Plain, faultproxy.Config{Seed: 1, Rules: []faultproxy.Rule{
		{Kind: faultproxy.Reset, Path: blobs, Skip: 1, Times: 1, At: 100},
		{Kind: faultproxy.Truncate, Path: blobs, Skip: 3, Times: 1, At: 10},
		{Kind: faultproxy.TooManyRequests, Path: blobs, Skip: 5, Times: 1, RetryAfter: 1},
		{Kind: faultproxy.InternalError, Path: blobs, Skip: 7, Times: 1},
		{Kind: faultproxy.Flip, Path: blobs, Skip: 9, Times: 2, At: 5},
	}})
	host := strings.TrimPrefix(url, "http://")
	eng := engine.New(engine.WithConcurrency(4), engine.WithChunkSize(1<<10),
		engine.WithRetry(6, time.Millisecond, 10*time.Millisecond), engine.WithLogger(zaptest.NewLogger(t)))
	p := newWith(eng, WithGetenv(func(string) string { return "" }))
	dest, _, err := fetch(t, p, "oci://"+host+"/"+repo+":car")
	require.NoError(t, err)
	assert.Equal(t, []string{"f w.bin " + big}, tree(t, dest))
	dest, _, err = fetch(t, p, "oci://"+host+"/"+repo+":pack")
	require.NoError(t, err)
	assert.Equal(t, []string{"f w.raw " + string(weights)}, tree(t, dest))
	st := proxy.Stats()
	assert.Equal(t, int64(1), st.Faults[faultproxy.Reset])
	assert.Equal(t, int64(2), st.Faults[faultproxy.Flip])
}
