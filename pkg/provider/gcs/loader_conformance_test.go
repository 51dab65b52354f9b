package gcs

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/loadertest"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// TestLoaderConformance runs the engine.Loader suite against the real
// fake-gcs-server, each source behind its own fault proxy.
func TestLoaderConformance(t *testing.T) {
	g := testenv.FakeGCS(t)
	bucket := g.Bucket(t)
	var n atomic.Int64
	loadertest.Run(t, func(t *testing.T, content []byte) loadertest.Source {
		name := fmt.Sprintf("conformance/%d.bin", n.Add(1))
		g.Put(t, bucket, name, content)
		proxy, url := loadertest.Front(t, g.Endpoint)
		p := New(planSettings(), WithGetenv(envOf("STORAGE_EMULATOR_HOST="+strings.TrimPrefix(url, "http://"))))
		plan, err := p.Plan(context.Background(), "gs://"+bucket+"/"+name)
		require.NoError(t, err)
		require.Len(t, plan.Files, 1)
		require.Equal(t, int64(len(content)), plan.Files[0].Size)
		return loadertest.Source{Loader: plan.Files[0].Source, Proxy: proxy}
	})
}
