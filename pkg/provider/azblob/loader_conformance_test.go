package azblob

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/loadertest"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// TestLoaderConformance runs the engine.Loader suite against the real
// Azurite, each source behind its own fault proxy (shared-key signatures
// do not cover the host, so they stay valid through it).
func TestLoaderConformance(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	var n atomic.Int64
	loadertest.Run(t, func(t *testing.T, content []byte) loadertest.Source {
		name := fmt.Sprintf("conformance/%d.bin", n.Add(1))
		a.Put(t, c, name, content, false)
		root := a.BlobEndpoint[:len(a.BlobEndpoint)-len("/"+a.Account)]
		proxy, url := loadertest.Front(t, root)
		p := New(planSettings(), WithGetenv(envOf("AZURE_STORAGE_CONNECTION_STRING="+a.ConnectionString(url+"/"+a.Account), "AZURE_STORAGE_ACCESS_KEY="+a.Key)))
		plan, err := p.Plan(context.Background(), a.URI(c, name))
		require.NoError(t, err)
		require.Len(t, plan.Files, 1)
		require.Equal(t, int64(len(content)), plan.Files[0].Size)
		return loadertest.Source{Loader: plan.Files[0].Source, Proxy: proxy}
	})
}
