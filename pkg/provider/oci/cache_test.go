package oci

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// With a node cache, modelcar layer blobs are fetched through the engine
// and keyed by digest: the pods of a node download each layer once.
func TestModelcarLayersGoThroughTheNodeCache(t *testing.T) {
	reg := newRegistry(t)
	big := strings.Repeat("weights!", 20000)
	models := gz(t, tarOf(t, d("models/"), f("models/model.safetensors", big), f("models/config.json", "{}")))
	l0 := reg.blob(t, "m/car", mtLayerGzip, gz(t, tarOf(t, busyboxLayer(t)...)), nil)
	l1 := reg.blob(t, "m/car", mtLayerGzip, models, nil)
	reg.pushImage(t, "m/car", "v1", mtOCIImageConfig, l0, l1)

	cacheDir := t.TempDir()
	pull := func(dest string) (*engine.Report, error) {
		c, err := engine.OpenCache(cacheDir, 0)
		require.NoError(t, err)
		defer c.Close()
		eng := engine.New(engine.WithConcurrency(4), engine.WithChunkSize(64<<10), engine.WithCache(c),
			engine.WithRetry(2, time.Millisecond, 5*time.Millisecond), engine.WithLogger(zaptest.NewLogger(t)))
		p := newWith(eng, WithGetenv(func(string) string { return "" }))
		return p.Fetch(context.Background(), "oci://"+reg.host+"/m/car:v1", dest)
	}
	// Two concurrent cold pulls, then a warm one.
	var wg sync.WaitGroup
	dests := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	errs := make([]error, 2)
	for i := range dests {
		wg.Go(func() { _, errs[i] = pull(dests[i]) })
	}
	wg.Wait()
	for i, dest := range dests {
		require.NoError(t, errs[i])
		assert.Equal(t, []string{"f config.json {}", "f model.safetensors " + big}, tree(t, dest))
	}
	assert.Equal(t, 1, reg.blobGets(l1.Digest), "the models layer is served once for two concurrent pulls")

	dest := filepath.Join(t.TempDir(), "c")
	rep, err := pull(dest)
	require.NoError(t, err)
	assert.Equal(t, []string{"f config.json {}", "f model.safetensors " + big}, tree(t, dest))
	assert.Equal(t, 1, reg.blobGets(l1.Digest), "a warm pull fetches no layer")
	assert.Equal(t, int64(0), rep.Fetched)
}
