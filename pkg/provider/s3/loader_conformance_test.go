package s3_test

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
// MinIO, each source behind its own fault proxy.
func TestLoaderConformance(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	var n atomic.Int64
	loadertest.Run(t, func(t *testing.T, content []byte) loadertest.Source {
		key := fmt.Sprintf("conformance/%d.bin", n.Add(1))
		m.Put(t, bucket, key, content, "")
		proxy, url := loadertest.Front(t, m.Endpoint)
		env := []string{"AWS_ENDPOINT_URL=" + url, "AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
		files, err := newProvider(env).Files(context.Background(), "s3://"+bucket+"/"+key)
		require.NoError(t, err)
		require.Len(t, files, 1)
		require.Equal(t, int64(len(content)), files[0].Size)
		return loadertest.Source{Loader: files[0].Source, Proxy: proxy}
	})
}
