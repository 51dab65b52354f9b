package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/faultproxy"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// End-to-end tests of oci:// and oci+fetch:// against the CNCF distribution
// registries hack/registry.sh starts (one anonymous, one with basic auth),
// with fixtures built the way users build them: buildah for the modelcar,
// oras for artifacts, crane for odd images. Helpers are prefixed oci2e.

var oci2eRoot = func() string { wd, _ := os.Getwd(); return filepath.Join(wd, "..", "..") }()

// oci2eTool returns a helper binary from .cache/bin (hack/tools.sh).
func oci2eTool(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(oci2eRoot, ".cache", "bin", name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("SI_REQUIRE_SERVERS") == "1" {
			t.Fatalf("%s not installed: run hack/tools.sh %s", name, name)
		}
		t.Skipf("%s not installed (hack/tools.sh %s)", name, name)
	}
	return p
}

func oci2eRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s: %s", filepath.Base(name), strings.Join(args, " "), out)
	return string(out)
}

// oci2eModel reads testdata/oci/model, the model hack/modelcar/build.sh
// puts in the image by default.
func oci2eModel(t *testing.T) map[string][]byte {
	t.Helper()
	dir := filepath.Join(oci2eRoot, "testdata", "oci", "model")
	want := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		want[filepath.ToSlash(rel)] = b
		return err
	}))
	return want
}

// oci2eCheckTree asserts dest holds exactly want, group-readable, with the
// engine's state folder gone.
func oci2eCheckTree(t *testing.T, dest string, want map[string][]byte) {
	t.Helper()
	assert.Equal(t, want, finalFiles(t, dest))
	_, err := os.Stat(filepath.Join(dest, ".storage-initializer"))
	assert.True(t, os.IsNotExist(err), "state folder left behind")
	for name := range want {
		fi, err := os.Stat(filepath.Join(dest, name))
		require.NoError(t, err)
		assert.NotZero(t, fi.Mode().Perm()&0o040, "%s is not group-readable: %v", name, fi.Mode())
		assert.Zero(t, fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky), name)
	}
}

func oci2eRepo(t *testing.T) string {
	return "si-e2e/" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
}

// TestE2EOCIModelcarBuildah builds a modelcar with buildah (busybox base
// from Debian's busybox-static, COPY models /models, chown 1001:0, chmod
// g+r), pushes it, and pulls it with both spellings in one run; then copies
// it to the basic-auth registry and pulls it with KServe's pull secret.
func TestE2EOCIModelcarBuildah(t *testing.T) {
	s := testenv.Registry(t)
	if _, err := exec.LookPath("buildah"); err != nil {
		if os.Getenv("SI_REQUIRE_SERVERS") == "1" {
			t.Fatal("buildah not installed: run hack/tools.sh image-apt")
		}
		t.Skip("buildah not installed (hack/tools.sh image-apt)")
	}
	image := s.Plain + "/" + oci2eRepo(t) + ":v1"
	digestFile := filepath.Join(t.TempDir(), "digest")
	oci2eRun(t, []string{"DIGESTFILE=" + digestFile}, filepath.Join(oci2eRoot, "hack", "modelcar", "build.sh"), image)
	digest, err := os.ReadFile(digestFile)
	require.NoError(t, err)
	want := oci2eModel(t)

	d1, d2 := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	_, stderr, code := runSI(t, nil, "oci://"+image, d1, "oci+fetch://"+strings.TrimSuffix(image, ":v1")+"@"+string(digest), d2)
	require.Equal(t, 0, code, stderr)
	oci2eCheckTree(t, d1, want)
	oci2eCheckTree(t, d2, want)
	assert.Contains(t, stderr, string(digest), "the resolved digest is logged")

	// The same image behind basic auth, credentials from a pull secret.
	authImage := s.Auth + "/" + oci2eRepo(t) + ":v1"
	cfg := s.DockerConfig(t)
	oci2eRun(t, []string{"DOCKER_CONFIG=" + filepath.Dir(cfg)}, oci2eTool(t, "crane"), "copy", "--insecure", image, authImage)
	d3 := filepath.Join(t.TempDir(), "c")
	_, stderr, code = runSI(t, []string{"KSERVE_OCI_DOCKER_CONFIG=" + cfg}, "oci://"+authImage, d3)
	require.Equal(t, 0, code, stderr)
	oci2eCheckTree(t, d3, want)

	_, stderr, code = runSI(t, nil, "oci://"+authImage, filepath.Join(t.TempDir(), "d"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "KSERVE_OCI_DOCKER_CONFIG")
	assert.NotContains(t, stderr, s.Pass)
}

// TestE2EOCIArtifactsWithOras pushes a CNCF ModelPack (raw weights, a
// folder as tar+gzip) and a plain oras artifact to the basic-auth registry.
func TestE2EOCIArtifactsWithOras(t *testing.T) {
	s := testenv.Registry(t)
	oras := oci2eTool(t, "oras")
	cfg := s.DockerConfig(t)
	work := t.TempDir()
	weights := make([]byte, 300_000)
	rnd := rand.New(rand.NewPCG(5, 6))
	for i := range weights {
		weights[i] = byte(rnd.IntN(256))
	}
	require.NoError(t, os.WriteFile(filepath.Join(work, "model.safetensors"), weights, 0o600))
	require.NoError(t, os.MkdirAll(filepath.Join(work, "tokenizer"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(work, "tokenizer", "vocab.json"), []byte(`{"a":0}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(work, "config.json"), []byte(`{"descriptor":{"name":"m"}}`), 0o644))
	ann, _ := json.Marshal(map[string]any{
		"model.safetensors": map[string]string{"org.cncf.model.filepath": "model.safetensors"},
		"tokenizer":         map[string]string{"org.cncf.model.filepath": "tokenizer"},
	})
	require.NoError(t, os.WriteFile(filepath.Join(work, "ann.json"), ann, 0o644))
	push := func(ref string, args ...string) {
		cmd := exec.Command(oras, append([]string{"push", "--plain-http", "--registry-config", cfg, ref}, args...)...)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "oras push: %s", out)
	}
	pack := s.Auth + "/" + oci2eRepo(t) + ":modelpack"
	push(pack, "--artifact-type", "application/vnd.cncf.model.manifest.v1+json",
		"--config", "config.json:application/vnd.cncf.model.config.v1+json", "--annotation-file", "ann.json",
		"model.safetensors:application/vnd.cncf.model.weight.v1.raw", "tokenizer:application/vnd.cncf.model.weight.config.v1.tar+gzip")
	plain := s.Auth + "/" + oci2eRepo(t) + ":oras"
	push(plain, "model.safetensors", "tokenizer")

	want := map[string][]byte{"model.safetensors": weights, "tokenizer/vocab.json": []byte(`{"a":0}`)}
	for _, ref := range []string{pack, plain} {
		dest := filepath.Join(t.TempDir(), "m")
		_, stderr, code := runSI(t, []string{"KSERVE_OCI_DOCKER_CONFIG=" + cfg}, "oci://"+ref, dest)
		require.Equal(t, 0, code, "%s: %s", ref, stderr)
		oci2eCheckTree(t, dest, want)
	}
}

// TestE2EOCINoModels pulls an image without /models (built with crane
// append): exit 1 with the image's top-level folders in the message.
func TestE2EOCINoModels(t *testing.T) {
	s := testenv.Registry(t)
	layer := filepath.Join(t.TempDir(), "layer.tar")
	require.NoError(t, os.WriteFile(layer, oci2eTar(t, map[string]string{"model/w.bin": "w", "app/run.sh": "x"}), 0o644))
	image := s.Plain + "/" + oci2eRepo(t) + ":v1"
	oci2eRun(t, nil, oci2eTool(t, "crane"), "append", "--insecure", "-f", layer, "-t", image)
	dest := filepath.Join(t.TempDir(), "m")
	_, stderr, code := runSI(t, nil, "oci://"+image, dest)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "has no files under /models")
	assert.Contains(t, stderr, "app, model")
	assert.Empty(t, finalFiles(t, dest))
}

// oci2eTar builds an uncompressed tar of files (sorted by name).
func oci2eTar(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	for _, n := range sortStrings(names) {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(1700000000, 0)}))
		_, err := tw.Write([]byte(files[n]))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// oci2ePush pushes a modelcar of gzip layers over the registry API and
// returns the layer digests and sizes.
func oci2ePush(t *testing.T, host, repo, tag string, layers ...[]byte) (digests []string, sizes []int64) {
	t.Helper()
	put := func(data []byte) (string, int64) {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
		resp, err := http.Post(fmt.Sprintf("http://%s/v2/%s/blobs/uploads/", host, repo), "application/octet-stream", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		loc, err := resp.Location()
		require.NoError(t, err)
		q := loc.Query()
		q.Set("digest", d)
		loc.RawQuery = q.Encode()
		req, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(data))
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		return d, int64(len(data))
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	}
	cd, cs := put([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`))
	m := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc{"application/vnd.oci.image.config.v1+json", cd, cs}}
	var ls []desc
	for _, l := range layers {
		d, n := put(l)
		digests, sizes = append(digests, d), append(sizes, n)
		ls = append(ls, desc{"application/vnd.oci.image.layer.v1.tar+gzip", d, n})
	}
	m["layers"] = ls
	body, _ := json.Marshal(m)
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, repo, tag), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	return digests, sizes
}

// oci2eLayer is a gzip layer holding models/NAME with n incompressible bytes.
func oci2eLayer(t *testing.T, name string, n int, seed uint64) ([]byte, []byte) {
	rnd := rand.New(rand.NewPCG(seed, seed))
	body := make([]byte, n)
	for i := range body {
		body[i] = byte(rnd.IntN(256))
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(oci2eTar(t, map[string]string{"models/" + name: string(body)}))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes(), body
}

// TestE2EOCICorruptLayer serves one layer with a flipped bit every time:
// exit 1 naming the layer, and no model file under its final name.
func TestE2EOCICorruptLayer(t *testing.T) {
	s := testenv.Registry(t)
	l0, _ := oci2eLayer(t, "a.bin", 50_000, 1)
	l1, _ := oci2eLayer(t, "b.bin", 50_000, 2)
	digests, _ := oci2ePush(t, s.Plain, oci2eRepo(t), "v1", l0, l1)
	proxy, _ := faultproxy.Start(t, "http://"+s.Plain, faultproxy.Config{})
	require.NoError(t, proxy.Reconfigure(faultproxy.Config{Rules: []faultproxy.Rule{{Kind: "flip", Path: "/blobs/" + digests[1], At: 30_000}}}, 30*time.Second))
	host := strings.TrimPrefix(proxy.URL, "http://")
	dest := filepath.Join(t.TempDir(), "m")
	_, stderr, code := runSI(t, nil, "oci://"+host+"/"+oci2eRepo(t)+":v1", dest)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, digests[1])
	assert.Contains(t, stderr, "digest mismatch")
	assert.Empty(t, finalFiles(t, dest), "a file from a corrupt image was committed")
}

// TestE2EOCIKillAndResume kills the binary mid-download (the proxy holds
// every response after 75% of the layer bytes) and checks the rerun does not
// download again the layers verified before the kill.
func TestE2EOCIKillAndResume(t *testing.T) {
	s := testenv.Registry(t)
	var layers [][]byte
	want := map[string][]byte{}
	var total int64
	for i, name := range []string{"a.bin", "b.bin", "c.bin"} {
		l, body := oci2eLayer(t, name, 400_000, uint64(10+i))
		layers = append(layers, l)
		want[name] = body
		total += int64(len(l))
	}
	oci2ePush(t, s.Plain, oci2eRepo(t), "v1", layers...)
	proxy, _ := faultproxy.Start(t, "http://"+s.Plain, faultproxy.Config{})
	require.NoError(t, proxy.Reconfigure(faultproxy.Config{HoldAfter: total * 3 / 4}, 30*time.Second))
	src := "oci://" + strings.TrimPrefix(proxy.URL, "http://") + "/" + oci2eRepo(t) + ":v1"
	dest := filepath.Join(t.TempDir(), "m")

	cmd, out := startSI(t, nil, src, dest)
	require.True(t, waitFor(t, 60*time.Second, func() bool { return proxy.Stats().Held }), "never held: %s", out)
	time.Sleep(500 * time.Millisecond) // let the verified layers be recorded
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_, _ = cmd.Process.Wait()
	assert.Empty(t, finalFiles(t, dest), "files committed before every layer was verified")

	require.NoError(t, proxy.Reconfigure(faultproxy.Config{}, 30*time.Second))
	_, stderr, code := runSI(t, nil, src, dest)
	require.Equal(t, 0, code, stderr)
	oci2eCheckTree(t, dest, want)
	// At most two layers were in flight at the kill: at least one was
	// complete and verified, and is not downloaded again.
	assert.Less(t, proxy.Stats().ObjectBytes, total-int64(len(layers[0]))/2, stderr)
	assert.Contains(t, stderr, "kept from an earlier run")
}

// TestE2EOCIDryRun lists what a modelcar pull would do — one row per layer,
// verified by its digest — and writes nothing.
func TestE2EOCIDryRun(t *testing.T) {
	s := testenv.Registry(t)
	l0, _ := oci2eLayer(t, "a.bin", 10_000, 1)
	l1, _ := oci2eLayer(t, "b.bin", 10_000, 2)
	repo := oci2eRepo(t)
	digests, _ := oci2ePush(t, s.Plain, repo, "v1", l0, l1)
	dest := filepath.Join(t.TempDir(), "m")
	stdout, stderr, code := runSI(t, nil, "--dry-run", "--log-format", "console", "oci://"+s.Plain+"/"+repo+":v1", dest)
	require.Equal(t, 0, code, stderr)
	for i, d := range digests {
		assert.Contains(t, stdout, fmt.Sprintf("layer %d (%s): application/vnd.oci.image.layer.v1.tar+gzip, extracted into DEST", i, d))
	}
	assert.Contains(t, stdout, "sha256 (OCI layer digest)")
	_, err := os.Stat(dest)
	assert.ErrorIs(t, err, os.ErrNotExist, "a dry run writes nothing")
}
