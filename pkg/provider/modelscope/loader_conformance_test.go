package modelscope

import (
	"net/http/httptest"
	"testing"

	"github.com/storage-initializer/storage-initializer/internal/hubtest"
	"github.com/storage-initializer/storage-initializer/internal/loadertest"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// TestLoaderConformance runs the engine.Loader suite on the hub file
// loader as ModelScope uses it, against the stand-in hub's ModelScope
// routes, LFS files and git blobs.
func TestLoaderConformance(t *testing.T) {
	ms := func(h *hubtest.Hub) *httptest.Server { return h.MS }
	loadertest.RunHub(t, ms, func(t *testing.T, h *hubtest.Hub, content []byte) (*engine.Plan, error) {
		h.Push("qwen/tiny", "master", map[string][]byte{"w.bin": content})
		return New(WithGetenv(env(h))).Plan(t.Context(), "modelscope://qwen/tiny")
	})
}
