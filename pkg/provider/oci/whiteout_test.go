package oci

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Artifact layers are not image layers: files named like whiteouts in
// them are ordinary files, and stacking them removes nothing.

func TestModelKitWhiteoutNamesAreFiles(t *testing.T) {
	reg := newRegistry(t)
	layers := []descriptor{
		reg.blob(t, "kit", "application/vnd.kitops.modelkit.model.v1.tar", tarOf(t, f("x", "x"), f("d/y", "y")), nil),
		reg.blob(t, "kit", "application/vnd.kitops.modelkit.docs.v1.tar",
			tarOf(t, f(".wh.x", ""), f("d/.wh..wh..opq", ""), f(".wh.notes", "text")), nil),
	}
	cfg := reg.blob(t, "kit", mtKitConfig, []byte(`{"manifestVersion":"1.0"}`), nil)
	reg.put(t, "kit", "v1", mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest, Config: cfg, Layers: layers})
	dest, _, err := fetch(t, newProvider(t, nil), "oci://"+reg.host+"/kit:v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"d d", "f .wh.notes text", "f .wh.x ", "f d/.wh..wh..opq ", "f d/y y", "f x x"}, tree(t, dest))
}

func TestModelPackAndORASWhiteoutNamesAreFiles(t *testing.T) {
	reg := newRegistry(t)
	mp := []descriptor{
		reg.blob(t, "mp", "application/vnd.cncf.model.weight.v1.raw", []byte("w"), map[string]string{annFilepath: "m/w.bin"}),
		reg.blob(t, "mp", "application/vnd.cncf.model.code.v1.tar", tarOf(t, f("m/.wh.w.bin", ""), f("m/.wh..wh..opq", "")),
			map[string]string{annFilepath: "m"}),
	}
	cfg := reg.blob(t, "mp", mtModelPackConfig, []byte(`{}`), nil)
	reg.put(t, "mp", "v1", mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest,
		ArtifactType: mtModelPackManifest, Config: cfg, Layers: mp})
	dest, _, err := fetch(t, newProvider(t, nil), "oci://"+reg.host+"/mp:v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"d m", "f m/.wh..wh..opq ", "f m/.wh.w.bin ", "f m/w.bin w"}, tree(t, dest))

	oras := []descriptor{
		reg.blob(t, "oras", "application/octet-stream", []byte("onnx"), map[string]string{annTitle: "tok/model.onnx"}),
		reg.blob(t, "oras", "application/vnd.oci.image.layer.v1.tar", tarOf(t, f("tok/.wh.model.onnx", ""), f("tok/.wh..wh..opq", "")),
			map[string]string{annTitle: "tok", annUnpack: "true"}),
		reg.blob(t, "oras", "application/octet-stream", []byte(""), map[string]string{annTitle: ".wh..wh..opq"}),
	}
	ocfg := reg.blob(t, "oras", "application/vnd.oci.empty.v1+json", []byte("{}"), nil)
	reg.put(t, "oras", "v1", mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest,
		ArtifactType: "application/vnd.example.model", Config: ocfg, Layers: oras})
	dest, _, err = fetch(t, newProvider(t, nil), "oci://"+reg.host+"/oras:v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"d tok", "f .wh..wh..opq ", "f tok/.wh..wh..opq ", "f tok/.wh.model.onnx ", "f tok/model.onnx onnx"}, tree(t, dest))
}

// TestWhiteoutsForImageLayersOnly: the plan applies whiteouts to modelcar
// layers and to nothing else.
func TestWhiteoutsForImageLayersOnly(t *testing.T) {
	tarLayer := descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar", Digest: "sha256:" + sha64("a"), Size: 10}
	for kind, want := range map[Kind]bool{KindModelcar: true, KindModelPack: false, KindModelKit: false, KindORAS: false} {
		l := tarLayer
		l.Annotations = map[string]string{annTitle: "t", annUnpack: "true", annFilepath: "t"}
		l.MediaType = map[Kind]string{KindModelcar: mtLayerTar, KindModelPack: "application/vnd.cncf.model.code.v1.tar",
			KindModelKit: "application/vnd.kitops.modelkit.code.v1.tar", KindORAS: mtLayerTar}[kind]
		layers, err := planLayers(kind, &manifest{Layers: []descriptor{l}})
		require.NoError(t, err, kind)
		assert.Equal(t, ActionExtract, layers[0].Action, kind)
		assert.Equal(t, want, layers[0].Whiteouts, kind)
	}
}

func sha64(c string) string {
	s := ""
	for len(s) < 64 {
		s += c
	}
	return s
}
