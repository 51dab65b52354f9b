package gcs

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Faults a real server will not produce on demand, from an httptest fake.

func faultLoader(t *testing.T, h http.HandlerFunc) *loader {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(WithGetenv(envOf("STORAGE_EMULATOR_HOST=" + strings.TrimPrefix(srv.URL, "http://")))).newClient(context.Background())
	require.NoError(t, err)
	return &loader{c: c, bucket: "b", name: "m/x", uri: "gs://b/m/x", generation: 5, size: 100}
}

func TestLoaderThrottlingIsRetryableWithItsDelay(t *testing.T) {
	l := faultLoader(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"error":{"code":429,"message":"rate limit"}}`)
	})
	err := l.Load(context.Background(), 10, 0, func(io.Reader) error { return nil })
	require.Error(t, err)
	assert.False(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "throttled [HTTP 429]")
}

func TestLoaderRefusesARangeTheServerIgnored(t *testing.T) {
	l := faultLoader(t, func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "bytes=10-19", r.Header.Get("Range"))
		assert.Equal(t, "5", r.URL.Query().Get("generation"))
		_, _ = w.Write(make([]byte, 100)) // 200 with the whole object
	})
	called := false
	err := l.Load(context.Background(), 10, 10, func(io.Reader) error { called = true; return nil })
	require.Error(t, err)
	assert.False(t, called)
	assert.False(t, engine.IsPermanent(err), "a proxy that ignored Range is worth a retry")
	assert.Contains(t, err.Error(), "server sent 100 bytes, want 10")
}

func TestAnonymousAccessDeniedSaysWhatToSet(t *testing.T) {
	l := faultLoader(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"error":{"code":403,"message":"Anonymous caller does not have storage.objects.get access.\nmore"}}`)
	})
	err := l.Load(context.Background(), 10, 0, func(io.Reader) error { return nil })
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "does not allow anonymous reads")
	assert.Contains(t, err.Error(), "GOOGLE_APPLICATION_CREDENTIALS")
	assert.NotContains(t, err.Error(), "\n")
}

func TestPlanningRetriesServerErrorsABoundedNumberOfTimes(t *testing.T) {
	var calls atomic.Int32
	l := faultLoader(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	})
	_, err := l.c.plan(context.Background(), location{Bucket: "b", Object: "m"})
	require.Error(t, err)
	assert.False(t, engine.IsPermanent(err))
	assert.Equal(t, int32(planningAttempts), calls.Load(), "one object lookup, retried up to the bound")
}
