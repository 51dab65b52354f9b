package s3_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// TestFollowsRegionRedirect puts a proxy in front of MinIO that answers
// like AWS does for a bucket in another region (301 + x-amz-bucket-region)
// unless the request is signed for that region.
func TestFollowsRegionRedirect(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "m/w.bin", []byte("far away"), "")
	target, err := url.Parse(m.Endpoint)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	var redirected atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Authorization"), "/eu-west-3/s3/aws4_request") {
			redirected.Add(1)
			w.Header().Set("X-Amz-Bucket-Region", "eu-west-3")
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusMovedPermanently)
			if r.Method != http.MethodHead {
				_, _ = w.Write([]byte(`<Error><Code>PermanentRedirect</Code><Message>wrong region</Message></Error>`))
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	env := []string{"AWS_ENDPOINT_URL=" + srv.URL, "AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
	files, err := newProvider(env).Files(context.Background(), "s3://"+bucket+"/m")
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, []byte("far away"), readAll(t, files[0]), "the loader uses the bucket's region too")
	assert.Positive(t, redirected.Load())
}
