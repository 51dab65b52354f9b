package modelscope

import (
	"testing"

	"github.com/storage-initializer/storage-initializer/internal/hubtest"
	"github.com/storage-initializer/storage-initializer/internal/loadertest"
)

// TestLoaderConformance runs the engine.Loader suite on the hub file
// loader against the stand-in ModelScope hub: an LFS file (a 302 to the CDN, faults
// injected at the CDN) and a plain git blob (served by the hub itself).
func TestLoaderConformance(t *testing.T) {
	t.Run("LFS via the CDN", func(t *testing.T) {
		loadertest.Run(t, func(t *testing.T, content []byte) loadertest.Source {
			h := hubtest.New(t)
			proxy := loadertest.FrontServer(t, h.CDN)
			h.Push("org/llm", "master", map[string][]byte{"w.bin": content})
			plan, err := New(WithGetenv(env(h))).Plan(t.Context(), "modelscope://org/llm")
			return loadertest.Source{Loader: loadertest.Only(t, plan, err, len(content)), Proxy: proxy}
		})
	})
	t.Run("git blob", func(t *testing.T) {
		loadertest.Run(t, func(t *testing.T, content []byte) loadertest.Source {
			h := hubtest.New(t)
			h.LFSThreshold = len(content) + 1
			proxy := loadertest.FrontServer(t, h.MS)
			h.Push("org/llm", "master", map[string][]byte{"w.bin": content})
			plan, err := New(WithGetenv(env(h))).Plan(t.Context(), "modelscope://org/llm")
			return loadertest.Source{Loader: loadertest.Only(t, plan, err, len(content)), Proxy: proxy}
		})
	})
}
