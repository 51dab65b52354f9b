package oci

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
)

// With a limiter, a pull keeps at most n requests at the registry: tokens,
// manifests, streamed layer ranges. Without one it keeps more (the engine's
// bound plus the layer streams), which is what the limiter is for.
func TestLimiterBoundsRequestsAtTheRegistry(t *testing.T) {
	reg := newRegistry(t)
	raw := make([]byte, 16<<10)
	rand.NewChaCha8([32]byte{1}).Read(raw) //nolint:gosec // test data
	big := hex.EncodeToString(raw)         // ~16 KiB gzipped: many 1 KiB streamed ranges
	l0 := reg.blob(t, "m/car", mtLayerGzip, gz(t, tarOf(t, d("models/"), f("models/a.bin", big))), nil)
	l1 := reg.blob(t, "m/car", mtLayerGzip, gz(t, tarOf(t, d("models/"), f("models/b.bin", big+"b"))), nil)
	reg.pushImage(t, "m/car", "v1", mtOCIImageConfig, l0, l1)
	var now, peak atomic.Int64
	reg.setWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		n := now.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(time.Millisecond)
		// Answered from a recording, counted out first: the client cannot
		// finish (and free its token) before the request left the count.
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		now.Add(-1)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
	src := "oci://" + reg.host + "/m/car:v1"

	_, _, err := fetch(t, newProvider(t, nil), src)
	require.NoError(t, err)
	unbounded := peak.Load()

	for _, n := range []int{1, 2} {
		peak.Store(0)
		dest, _, err := fetch(t, newProvider(t, nil, WithLimiter(httpx.NewLimiter(n))), src)
		require.NoError(t, err, "n=%d", n)
		assert.Equal(t, []string{"f a.bin " + big, "f b.bin " + big + "b"}, tree(t, dest))
		assert.LessOrEqual(t, peak.Load(), int64(n), "requests in flight at the registry with a limiter of %d", n)
	}
	t.Logf("unbounded peak %d", unbounded)
	assert.Greater(t, unbounded, int64(2), "without a limiter the pull keeps more requests in flight")
}
