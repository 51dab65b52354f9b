package oci

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestModelPack(t *testing.T) {
	reg := newRegistry(t)
	weights := []byte(strings.Repeat("bf16", 50_000)) // 200 kB: several engine chunks
	meta := `{"name":"model.safetensors","mode":420,"uid":0,"gid":0,"size":200000,"mtime":"2024-03-04T05:06:07Z","typeflag":48}`
	layers := []descriptor{
		reg.blob(t, "mp", "application/vnd.cncf.model.weight.v1.raw", weights, map[string]string{
			annFilepath: "weights/model.safetensors", annFileMetadata: meta}),
		reg.blob(t, "mp", "application/vnd.cncf.model.weight.config.v1.raw", []byte(`{"dim":8}`), map[string]string{
			annFilepath: "config.json"}),
		// modctl names tar entries relative to the model root…
		reg.blob(t, "mp", "application/vnd.cncf.model.doc.v1.tar+gzip", gz(t, tarOf(t, f("docs/README.md", "hi"))), map[string]string{
			annFilepath: "docs"}),
		// …others relative to the annotated folder: both land under it.
		reg.blob(t, "mp", "application/vnd.cncf.model.code.v1.tar+zstd", zst(t, tarOf(t, f("run.py", "print()"))), map[string]string{
			annFilepath: "code"}),
		reg.blob(t, "mp", "application/vnd.cncf.model.dataset.v1.tar", tarOf(t, f("data/x.csv", "1,2")), map[string]string{
			annFilepath: "data"}),
	}
	cfg := reg.blob(t, "mp", mtModelPackConfig, []byte(`{"descriptor":{"name":"m"}}`), nil)
	reg.put(t, "mp", "v1", mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest,
		ArtifactType: mtModelPackManifest, Config: cfg, Layers: layers})

	p := newProvider(t, nil)
	dest, rep, err := fetch(t, p, "oci://"+reg.host+"/mp:v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"d code", "d data", "d docs", "d weights", "f code/run.py print()", `f config.json {"dim":8}`,
		"f data/x.csv 1,2", "f docs/README.md hi", "f weights/model.safetensors " + string(weights)}, tree(t, dest))
	fi, err := os.Stat(filepath.Join(dest, "weights/model.safetensors"))
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)), "mtime from the file metadata annotation")
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	verified := map[string]string{}
	for _, fr := range rep.Files {
		verified[fr.Path] = fr.Verified
	}
	assert.Equal(t, "sha256", verified["weights/model.safetensors"], "raw layers are verified by the engine")
	assert.Len(t, rep.Files, 5)
	// Raw layers are fetched in ranges by the engine: several GETs.
	assert.Greater(t, reg.blobGets(layers[0].Digest), 1)

	// A rerun finds the raw files complete and downloads them again not at all.
	before := reg.blobGets(layers[0].Digest)
	_, err = p.Fetch(t.Context(), "oci://"+reg.host+"/mp:v1", dest)
	require.NoError(t, err)
	assert.Equal(t, before, reg.blobGets(layers[0].Digest))

	plan, err := p.Inspect(t.Context(), "oci://"+reg.host+"/mp:v1")
	require.NoError(t, err)
	assert.Equal(t, KindModelPack, plan.Kind)
	assert.Equal(t, []Action{ActionFile, ActionFile, ActionExtract, ActionExtract, ActionExtract},
		[]Action{plan.Layers[0].Action, plan.Layers[1].Action, plan.Layers[2].Action, plan.Layers[3].Action, plan.Layers[4].Action})
}

func TestModelPackCorruptRawLayer(t *testing.T) {
	reg := newRegistry(t)
	w := reg.blob(t, "mp", "application/vnd.cncf.model.weight.v1.raw", []byte(strings.Repeat("w", 100_000)),
		map[string]string{annFilepath: "w.bin"})
	cfg := reg.blob(t, "mp", mtModelPackConfig, []byte(`{}`), nil)
	reg.put(t, "mp", "v1", mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest, Config: cfg, Layers: []descriptor{w}})
	reg.setWrap(corruptBlob(w.Digest, 70_000))
	dest, _, err := fetch(t, newProvider(t, nil), "oci://"+reg.host+"/mp:v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "layer 0 ("+w.Digest+", file w.bin)")
	_, statErr := os.Stat(filepath.Join(dest, "w.bin"))
	assert.True(t, os.IsNotExist(statErr), "corrupt file committed")
}

func TestModelPackUnsafePath(t *testing.T) {
	reg := newRegistry(t)
	w := reg.blob(t, "mp", "application/vnd.cncf.model.weight.v1.raw", []byte("x"), map[string]string{annFilepath: "../../etc/x"})
	cfg := reg.blob(t, "mp", mtModelPackConfig, []byte(`{}`), nil)
	reg.put(t, "mp", "v1", mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest, Config: cfg, Layers: []descriptor{w}})
	_, _, err := fetch(t, newProvider(t, nil), "oci://"+reg.host+"/mp:v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unsafe path")
}

func TestKitOpsModelKit(t *testing.T) {
	reg := newRegistry(t)
	layers := []descriptor{
		reg.blob(t, "kit", "application/vnd.kitops.modelkit.model.v1.tar+gzip", gz(t, tarOf(t, d("model/"), f("model/weights.gguf", "gguf"))), nil),
		reg.blob(t, "kit", "application/vnd.kitops.modelkit.docs.v1.tar", tarOf(t, f("README.md", "kit")), nil),
	}
	cfg := reg.blob(t, "kit", mtKitConfig, []byte(`{"manifestVersion":"1.0"}`), nil)
	reg.put(t, "kit", "v1", mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest, Config: cfg, Layers: layers})
	dest, _, err := fetch(t, newProvider(t, nil), "oci://"+reg.host+"/kit:v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"d model", "f README.md kit", "f model/weights.gguf gguf"}, tree(t, dest))
}

func TestORASArtifact(t *testing.T) {
	reg := newRegistry(t)
	layers := []descriptor{
		reg.blob(t, "oras", "application/octet-stream", []byte("onnx"), map[string]string{annTitle: "model.onnx"}),
		reg.blob(t, "oras", "application/vnd.oci.image.layer.v1.tar+gzip",
			gz(t, tarOf(t, d("tokenizer/"), f("tokenizer/vocab.json", "{}"), f("tokenizer/merges.txt", "m"))),
			map[string]string{annTitle: "tokenizer", annUnpack: "true"}),
		reg.blob(t, "oras", "application/octet-stream", []byte("nameless"), nil),
	}
	cfg := reg.blob(t, "oras", "application/vnd.oci.empty.v1+json", []byte("{}"), nil)
	reg.put(t, "oras", "v1", mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest,
		ArtifactType: "application/vnd.example.model", Config: cfg, Layers: layers})
	dest, _, err := fetch(t, newProvider(t, nil), "oci://"+reg.host+"/oras:v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"d tokenizer", "f model.onnx onnx", "f tokenizer/merges.txt m", "f tokenizer/vocab.json {}"}, tree(t, dest))
}

func TestUnknownArtifact(t *testing.T) {
	reg := newRegistry(t)
	cfg := reg.blob(t, "x", "application/vnd.example.config+json", []byte("{}"), nil)
	l := reg.blob(t, "x", "application/vnd.example.layer", []byte("?"), nil)
	reg.put(t, "x", "v1", mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest, Config: cfg, Layers: []descriptor{l}})
	_, _, err := fetch(t, newProvider(t, nil), "oci://"+reg.host+"/x:v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unrecognised OCI artifact")
}
