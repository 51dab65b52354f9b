package httpsrc

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/storage-initializer/storage-initializer/internal/loadertest"
)

// TestLoaderConformance runs the engine.Loader suite on the ranged loader:
// http.FileServer (ranges, Last-Modified) behind a fault proxy.
func TestLoaderConformance(t *testing.T) {
	dir := t.TempDir()
	srv, _ := fileServer(t, dir)
	var n atomic.Int64
	loadertest.Run(t, func(t *testing.T, content []byte) loadertest.Source {
		name := fmt.Sprintf("w%d.bin", n.Add(1))
		writeFile(t, dir, name, content)
		proxy, url := loadertest.Front(t, srv.URL)
		plan, err := newP(newEngine()).Plan(t.Context(), url+"/"+name)
		return loadertest.Source{Loader: loadertest.Only(t, plan, err, len(content)), Proxy: proxy}
	})
}
