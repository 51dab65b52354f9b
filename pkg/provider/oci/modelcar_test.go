package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/extract"
)

func busyboxLayer(t testing.TB) []tent {
	return []tent{d("bin/"), f("bin/busybox", "ELF"), sym("bin/sh", "busybox"), sym("bin/ls", "/bin/busybox"),
		d("etc/"), f("etc/passwd", "root:x:0:0")}
}

func TestModelcarSingleLayer(t *testing.T) {
	reg := newRegistry(t)
	big := strings.Repeat("weights!", 1000) // several streamed ranges
	layer := gz(t, tarOf(t, busyboxLayer(t)...))
	models := gz(t, tarOf(t, d("models/"), f("models/model.safetensors", big), f("models/config.json", "{}"),
		d("models/tok/"), f("models/tok/vocab.txt", "a b"), sym("models/latest", "model.safetensors")))
	l0 := reg.blob(t, "m/car", mtLayerGzip, layer, nil)
	l1 := reg.blob(t, "m/car", mtLayerGzip, models, nil)
	digest := reg.pushImage(t, "m/car", "v1", mtOCIImageConfig, l0, l1)

	p := newProvider(t, nil)
	dest, rep, err := fetch(t, p, "oci://"+reg.host+"/m/car:v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"d tok", "f config.json {}", "f model.safetensors " + big,
		"f tok/vocab.txt a b", "l latest -> model.safetensors"}, tree(t, dest))
	assert.Len(t, rep.Files, 3)
	assert.Equal(t, int64(len(layer)+len(models)), rep.Fetched)
	fi, err := os.Stat(filepath.Join(dest, "config.json"))
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(mtime), "mtime kept")
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	plan, err := p.Inspect(context.Background(), "oci+fetch://"+reg.host+"/m/car@"+digest)
	require.NoError(t, err)
	assert.Equal(t, KindModelcar, plan.Kind)
	assert.Equal(t, digest, plan.Digest)
	require.Len(t, plan.Layers, 2)
	assert.Equal(t, Layer{Index: 1, Digest: l1.Digest, Size: l1.Size, MediaType: mtLayerGzip,
		Action: ActionExtract, Prefix: "models", Whiteouts: true}, plan.Layers[1])
}

func TestModelcarLayersWhiteoutsAndCompressions(t *testing.T) {
	reg := newRegistry(t)
	layers := []descriptor{
		reg.blob(t, "r", mtLayerGzip, gz(t, tarOf(t, busyboxLayer(t)...)), nil),
		// Media types lie on purpose: compression is sniffed.
		reg.blob(t, "r", mtLayerTar, zst(t, tarOf(t, f("models/a", "1"), f("models/old/x", "x"), f("models/old/y", "y"),
			f("models/gone", "g"), d("models/keep/"), f("models/keep/k", "k"))), nil),
		reg.blob(t, "r", mtLayerZstd, tarOf(t, f("models/.wh.gone", ""), f("models/old/.wh..wh..opq", ""),
			f("models/old/new", "n"), f("models/a", "2")), nil),
		reg.blob(t, "r", mtLayerGzip, gz(t, tarOf(t, f("models/keep/.wh.k", ""), f("models/late", "l"))), nil),
	}
	reg.pushImage(t, "r", "latest", mtDockerConfig, layers...)
	dest, _, err := fetch(t, newProvider(t, nil), "oci://"+reg.host+"/r")
	require.NoError(t, err)
	assert.Equal(t, []string{"d keep", "d old", "f a 2", "f late l", "f old/new n"}, tree(t, dest))
}

func TestModelcarWithoutModelsListsTopLevelFolders(t *testing.T) {
	reg := newRegistry(t)
	reg.pushImage(t, "r", "v1", mtOCIImageConfig, reg.blob(t, "r", mtLayerGzip, gz(t, tarOf(t, busyboxLayer(t)...)), nil),
		reg.blob(t, "r", mtLayerGzip, gz(t, tarOf(t, f("model/weights", "w"))), nil))
	dest, _, err := fetch(t, newProvider(t, nil), "oci://"+reg.host+"/r:v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has no files under /models")
	assert.Contains(t, err.Error(), "bin, etc, model")
	assert.Empty(t, tree(t, dest), "nothing left in DEST")
}

func TestModelcarMultiArchIndex(t *testing.T) {
	reg := newRegistry(t)
	push := func(arch string) descriptor {
		dg := reg.pushImage(t, "multi", "arch-"+arch, mtOCIImageConfig,
			reg.blob(t, "multi", mtLayerGzip, gz(t, tarOf(t, f("models/arch", arch))), nil))
		return descriptor{MediaType: mtManifest, Digest: dg, Size: 1, Platform: &platform{OS: "linux", Architecture: arch}}
	}
	var ms []descriptor
	for _, a := range []string{"s390x", runtime.GOARCH, "riscv64"} {
		ms = append(ms, push(a))
	}
	ms = append(ms, descriptor{MediaType: mtManifest, Digest: ms[0].Digest, Size: 1, Platform: &platform{OS: "unknown", Architecture: "unknown"}})
	for i := range ms {
		ms[i].Size = sizeOfManifest(t, reg, "multi", ms[i].Digest)
	}
	reg.put(t, "multi", "v1", mtIndex, map[string]any{"schemaVersion": 2, "mediaType": mtIndex, "manifests": ms})

	dest, _, err := fetch(t, newProvider(t, nil), "oci://"+reg.host+"/multi:v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"f arch " + runtime.GOARCH}, tree(t, dest))

	dest, _, err = fetch(t, newProvider(t, nil, WithPlatform("linux/s390x")), "oci://"+reg.host+"/multi:v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"f arch s390x"}, tree(t, dest))

	_, _, err = fetch(t, newProvider(t, nil, WithPlatform("linux/mips")), "oci://"+reg.host+"/multi:v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no linux/mips manifest in the index")
	assert.Contains(t, err.Error(), "linux/riscv64")
}

func sizeOfManifest(t testing.TB, reg *testRegistry, repo, digest string) int64 {
	resp, err := http.Get(fmt.Sprintf("%s/v2/%s/manifests/%s", reg.srv.URL, repo, digest))
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.ContentLength
}

// corruptBlob serves digest with one byte flipped at offset at.
func corruptBlob(digest string, at int64) func(http.ResponseWriter, *http.Request, http.Handler) {
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !strings.HasSuffix(r.URL.Path, "/blobs/"+digest) || r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		var start int64
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &start)
		}
		next.ServeHTTP(&flipWriter{ResponseWriter: w, pos: start, at: at}, r)
	}
}

type flipWriter struct {
	http.ResponseWriter
	pos, at int64
}

func (f *flipWriter) Write(p []byte) (int, error) {
	if f.at >= f.pos && f.at < f.pos+int64(len(p)) {
		p = bytes.Clone(p)
		p[f.at-f.pos] ^= 0x01
	}
	f.pos += int64(len(p))
	return f.ResponseWriter.Write(p)
}

func TestModelcarCorruptLayerCommitsNothingAndResumes(t *testing.T) {
	for _, tc := range []struct {
		name string
		data func(t testing.TB, tarball []byte) []byte
		at   func(n int) int64
	}{
		{"uncompressed, flipped in a file body", func(t testing.TB, b []byte) []byte { return b }, func(n int) int64 { return 600 }},
		{"gzip, flipped mid-stream", gz, func(n int) int64 { return int64(n / 2) }},
		{"zstd, flipped in the trailer", zst, func(n int) int64 { return int64(n - 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry(t)
			good := reg.blob(t, "r", mtLayerGzip, gz(t, tarOf(t, f("models/first", "1"))), nil)
			badData := tc.data(t, tarOf(t, f("models/second", strings.Repeat("x", 3000))))
			bad := reg.blob(t, "r", mtLayerGzip, badData, nil)
			reg.pushImage(t, "r", "v1", mtOCIImageConfig, good, bad)
			reg.setWrap(corruptBlob(bad.Digest, tc.at(len(badData))))

			p := newWith(testEngine(t, engine.WithBlobJobs(1)), WithGetenv(func(string) string { return "" }))
			dest := filepath.Join(t.TempDir(), "models")
			_, err := p.Fetch(context.Background(), "oci://"+reg.host+"/r:v1", dest)
			require.Error(t, err)
			assert.ErrorIs(t, err, engine.ErrBlobMismatch)
			assert.Contains(t, err.Error(), "layer 1 ("+bad.Digest+")")
			for _, line := range tree(t, dest) {
				assert.Contains(t, line, engine.StateDir, "only staging state may be in DEST")
			}
			// The rerun keeps the verified first layer and fetches only the second.
			firstGets := reg.blobGets(good.Digest)
			reg.setWrap(nil)
			rep, err := p.Fetch(context.Background(), "oci://"+reg.host+"/r:v1", dest)
			require.NoError(t, err)
			assert.Equal(t, firstGets, reg.blobGets(good.Digest), "verified layer downloaded again")
			assert.Equal(t, []string{"f first 1", "f second " + strings.Repeat("x", 3000)}, tree(t, dest))
			assert.Equal(t, bad.Size, rep.Fetched)
		})
	}
}

func TestModelcarHostileLayerRefused(t *testing.T) {
	reg := newRegistry(t)
	reg.pushImage(t, "r", "v1", mtOCIImageConfig, reg.blob(t, "r", mtLayerGzip,
		gz(t, tarOf(t, sym("models/l", "."), f("models/l/x", "x"))), nil))
	dest, _, err := fetch(t, newProvider(t, nil), "oci://"+reg.host+"/r:v1")
	require.Error(t, err)
	assert.ErrorIs(t, err, extract.ErrUnsafe)
	assert.NotContains(t, strings.Join(tree(t, dest), "\n"), "f l")
}

func TestModelcarLimits(t *testing.T) {
	reg := newRegistry(t)
	reg.pushImage(t, "r", "v1", mtOCIImageConfig,
		reg.blob(t, "r", mtLayerGzip, gz(t, tarOf(t, f("models/a", strings.Repeat("0", 4000)))), nil))
	_, _, err := fetch(t, newWith(testEngine(t, engine.WithUnpackLimits(1000, 0)), WithGetenv(func(string) string { return "" })), "oci://"+reg.host+"/r:v1")
	require.Error(t, err)
	assert.True(t, errors.Is(err, extract.ErrLimit), err)
}

func TestMissingTagSaysSo(t *testing.T) {
	reg := newRegistry(t)
	_, _, err := fetch(t, newProvider(t, nil), "oci://"+reg.host+"/nothing:here")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "check the URI")
	_, err = newProvider(t, nil).Inspect(context.Background(), "s3://bucket/x")
	assert.ErrorContains(t, err, "not an OCI URI")
}
