package hf

import (
	"net/http/httptest"
	"testing"

	"github.com/storage-initializer/storage-initializer/internal/hubtest"
	"github.com/storage-initializer/storage-initializer/internal/loadertest"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// TestLoaderConformance runs the engine.Loader suite on the hub file
// loader against the stand-in Hub, LFS files and git blobs.
func TestLoaderConformance(t *testing.T) {
	api := func(h *hubtest.Hub) *httptest.Server { return h.API }
	loadertest.RunHub(t, api, func(t *testing.T, h *hubtest.Hub, content []byte) (*engine.Plan, error) {
		h.Push("org/llm", "main", map[string][]byte{"w.bin": content})
		return New(WithGetenv(env(h))).Plan(t.Context(), "hf://org/llm")
	})
}
