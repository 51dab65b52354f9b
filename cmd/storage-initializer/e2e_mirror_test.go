package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// When hundreds of pods pull one model image, a registry mirror (a
// distribution registry in pull-through mode, Harbor's proxy cache, or
// Dragonfly's registry mirror) should take the load, and the digests must
// still be verified end to end: a mirror is a cache, not a trusted party.
// These tests run a second CNCF distribution registry configured as a
// pull-through cache (proxy.remoteurl) of the test registry.

// mirrore2eStart starts a pull-through cache of upstream (host:port) and
// returns its host:port and storage folder.
func mirrore2eStart(t *testing.T, upstream string) (string, string) {
	t.Helper()
	bin := oci2eTool(t, "registry")
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", proxye2eFreePort(t))
	conf := filepath.Join(dir, "mirror.yml")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s/data
  redirect:
    disable: true
http:
  addr: %s
  secret: si-test-mirror
proxy:
  remoteurl: http://%s
`, dir, addr, upstream), 0o644))
	cmd := exec.Command(bin, "serve", conf)
	logf, err := os.Create(filepath.Join(dir, "mirror.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	up := waitFor(t, 10*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !up {
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("mirror registry did not start at %s: %s", addr, b)
	}
	return addr, filepath.Join(dir, "data")
}

// mirrore2eCached reports whether the mirror stored blob digest on disk,
// i.e. it was pulled through the mirror.
func mirrore2eCached(storage, digest string) bool {
	hex := strings.TrimPrefix(digest, "sha256:")
	_, err := os.Stat(filepath.Join(storage, "docker/registry/v2/blobs/sha256", hex[:2], hex, "data"))
	return err == nil
}

// mirrore2eFront is a reverse proxy in front of a registry that records the
// paths asked for and can flip one byte of every blob it serves (a mirror
// with a corrupt cache).
type mirrore2eFront struct {
	*httptest.Server
	mu      sync.Mutex
	paths   []string
	corrupt atomic.Bool
}

func mirrore2eStartFront(t *testing.T, target string) *mirrore2eFront {
	t.Helper()
	u, err := url.Parse("http://" + target)
	require.NoError(t, err)
	f := &mirrore2eFront{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if !f.corrupt.Load() || !strings.Contains(resp.Request.URL.Path, "/blobs/") || resp.StatusCode/100 != 2 {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if len(b) > 100 {
			b[len(b)/2] ^= 0x01
		}
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		return nil
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.paths = append(f.paths, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *mirrore2eFront) host() string { return strings.TrimPrefix(f.URL, "http://") }

func (f *mirrore2eFront) asked(substr string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.paths {
		if strings.Contains(p, substr) {
			out = append(out, p)
		}
	}
	return out
}

// TestE2EMirrorPullThrough pulls an image from a pull-through cache by tag:
// the bytes match, the cache now holds the layer, and a cache that serves a
// corrupt layer is caught by the digest check, with nothing committed.
func TestE2EMirrorPullThrough(t *testing.T) {
	s := testenv.Registry(t)
	repo := oci2eRepo(t)
	layer, body := oci2eLayer(t, "weights.bin", 400_000, 11)
	digests, _ := oci2ePush(t, s.Plain, repo, "v1", layer)
	mirror, storage := mirrore2eStart(t, s.Plain)

	dest := t.TempDir()
	stdout, stderr, code := runSI(t, nil, "oci://"+mirror+"/"+repo+":v1", dest)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	assert.Equal(t, map[string][]byte{"weights.bin": body}, finalFiles(t, dest))
	assert.True(t, waitFor(t, 5*time.Second, func() bool { return mirrore2eCached(storage, digests[0]) }),
		"the layer did not go through the mirror's cache")

	front := mirrore2eStartFront(t, mirror)
	front.corrupt.Store(true)
	dest = filepath.Join(t.TempDir(), "m")
	_, stderr, code = runSI(t, nil, "oci://"+front.host()+"/"+repo+":v1", dest)
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "digest mismatch")
	assert.Contains(t, stderr, digests[0])
	assert.Empty(t, finalFiles(t, dest), "a corrupt layer from the mirror was committed")
}

// TestE2ERegistryMirrorFlag is the acceptance test of --registry-mirror
// (owned by the OCI provider; see the ship report): the reference names the
// registry, the pulls go to the mirror, digests are still checked, and an
// unreachable mirror falls back to the registry itself (as containerd
// does).
func TestE2ERegistryMirrorFlag(t *testing.T) {
	s := testenv.Registry(t)
	repo := oci2eRepo(t)
	layer, body := oci2eLayer(t, "weights.bin", 400_000, 12)
	digests, _ := oci2ePush(t, s.Plain, repo, "v1", layer)
	// The reference names `origin`, a recording front of the registry, so
	// the test sees every request that did not go to the mirror.
	origin := mirrore2eStartFront(t, s.Plain)
	mirror, storage := mirrore2eStart(t, s.Plain)
	src := "oci://" + origin.host() + "/" + repo + ":v1"
	want := map[string][]byte{"weights.bin": body}

	t.Run("pulls go to the mirror", func(t *testing.T) {
		dest := t.TempDir()
		stdout, stderr, code := runSI(t, nil, "--registry-mirror="+mirror, src, dest)
		require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
		assert.Equal(t, want, finalFiles(t, dest))
		assert.Empty(t, origin.asked("/blobs/"), "blobs were fetched from the registry, not the mirror")
		assert.True(t, mirrore2eCached(storage, digests[0]), "the layer did not come through the mirror")
	})

	t.Run("the environment variable works too", func(t *testing.T) {
		dest := t.TempDir()
		stdout, stderr, code := runSI(t, []string{"STORAGE_INITIALIZER_REGISTRY_MIRROR=" + mirror}, src, dest)
		require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
		assert.Equal(t, want, finalFiles(t, dest))
		assert.Empty(t, origin.asked("/blobs/"))
	})

	t.Run("a corrupt mirror is caught", func(t *testing.T) {
		bad := mirrore2eStartFront(t, mirror)
		bad.corrupt.Store(true)
		dest := filepath.Join(t.TempDir(), "m")
		_, stderr, code := runSI(t, nil, "--registry-mirror="+bad.host(), src, dest)
		// Either a refetch from the registry itself succeeds or the run
		// fails naming the digest; never a corrupt file.
		if code == 0 {
			assert.Equal(t, want, finalFiles(t, dest))
		} else {
			assert.Contains(t, stderr, digests[0])
			assert.Empty(t, finalFiles(t, dest))
		}
	})

	t.Run("an unreachable mirror falls back to the registry", func(t *testing.T) {
		dead := fmt.Sprintf("127.0.0.1:%d", proxye2eFreePort(t))
		dest := t.TempDir()
		stdout, stderr, code := runSI(t, nil, "--registry-mirror="+dead, src, dest)
		require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
		assert.Equal(t, want, finalFiles(t, dest))
		assert.Contains(t, stderr, dead, "the fallback should be logged, naming the mirror")
	})
}
