package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// registryCounter counts the blob bytes the real registry serves (throttled,
// so concurrent pulls overlap).
func registryCounter(t *testing.T, registry string, bytesPerSecond int64) (host string, blobBytes *atomic.Int64) {
	t.Helper()
	blobBytes = &atomic.Int64{}
	u := testenv.ReverseProxy(t, "http://"+registry, testenv.ProxyOptions{BytesPerSecond: bytesPerSecond, Counted: blobBytes,
		Count: func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/")
		}})
	return strings.TrimPrefix(u, "http://"), blobBytes
}

// Two processes pulling the same modelcar at once with one --cache-dir
// download each layer once; a third pod links everything.
func TestE2ECacheConcurrentOCIPullsFetchLayersOnce(t *testing.T) {
	regs := testenv.Registry(t)
	l1, w1 := oci2eLayer(t, "model-1.safetensors", 3<<20, 81)
	l2, w2 := oci2eLayer(t, "model-2.safetensors", 2<<20, 82)
	repo := oci2eRepo(t)
	oci2ePush(t, regs.Plain, repo, "v1", l1, l2)
	host, served := registryCounter(t, regs.Plain, 6<<20)
	want := map[string][]byte{"model-1.safetensors": w1, "model-2.safetensors": w2}
	layers := int64(len(l1) + len(l2))
	src := "oci://" + host + "/" + repo + ":v1"
	env := []string{"STORAGE_CACHE_DIR=" + t.TempDir()}

	var wg sync.WaitGroup
	dests := []string{t.TempDir(), t.TempDir()}
	codes := make([]int, 2)
	errs := make([]string, 2)
	for i := range dests {
		wg.Go(func() { _, errs[i], codes[i] = runSI(t, env, src, dests[i]) })
	}
	wg.Wait()
	for i, d := range dests {
		require.Equal(t, 0, codes[i], errs[i])
		for name, body := range want {
			got, err := os.ReadFile(filepath.Join(d, name))
			require.NoError(t, err)
			assert.Equal(t, body, got, name)
		}
	}
	assert.LessOrEqual(t, served.Load(), layers*11/10, "two concurrent cold pulls cost the layers once")

	before := served.Load()
	dest := t.TempDir()
	_, stderr, code := runSI(t, env, src, dest)
	require.Equal(t, 0, code, stderr)
	for name, body := range want {
		got, err := os.ReadFile(filepath.Join(dest, name))
		require.NoError(t, err)
		assert.Equal(t, body, got, name)
	}
	assert.Equal(t, before, served.Load(), "a warm pull fetches no layer")
}
