package oci

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// With a node cache, a hit is authorised by the pod's own access: the
// manifest and every blob are checked against the registry first, so a
// blob the registry no longer serves to these credentials is an error,
// never the cached copy.
func TestCachedBlobIsServedOnlyWhenTheRegistryStillServesIt(t *testing.T) {
	reg := newRegistry(t)
	big := strings.Repeat("weights!", 20000)
	models := gz(t, tarOf(t, d("models/"), f("models/model.safetensors", big)))
	l0 := reg.blob(t, "m/car", mtLayerGzip, models, nil)
	reg.pushImage(t, "m/car", "v1", mtOCIImageConfig, l0)
	cacheDir := t.TempDir()
	pull := func(dest string) error {
		c, err := engine.OpenCache(cacheDir, 0)
		require.NoError(t, err)
		defer c.Close()
		eng := engine.New(engine.WithConcurrency(4), engine.WithChunkSize(64<<10), engine.WithCache(c),
			engine.WithRetry(2, time.Millisecond, 5*time.Millisecond), engine.WithLogger(zaptest.NewLogger(t)))
		p := newWith(eng, WithGetenv(func(string) string { return "" }))
		_, err = p.Fetch(context.Background(), "oci://"+reg.host+"/m/car:v1", dest)
		return err
	}
	require.NoError(t, pull(filepath.Join(t.TempDir(), "a")))

	for _, status := range []int{http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden} {
		reg.setWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if strings.Contains(r.URL.Path, "/blobs/"+l0.Digest) {
				w.WriteHeader(status)
				return
			}
			next.ServeHTTP(w, r)
		})
		dest := filepath.Join(t.TempDir(), "b")
		err := pull(dest)
		require.Error(t, err, "HTTP %d", status)
		assert.Contains(t, err.Error(), "not available to these credentials")
		_, serr := os.Stat(filepath.Join(dest, "model.safetensors"))
		assert.ErrorIs(t, serr, os.ErrNotExist)
	}
	reg.setWrap(nil)
	dest := filepath.Join(t.TempDir(), "c")
	require.NoError(t, pull(dest))
	assert.Equal(t, []string{"f model.safetensors " + big}, tree(t, dest))
	assert.Equal(t, 1, reg.blobGets(l0.Digest), "the warm pull is a hit")
}
