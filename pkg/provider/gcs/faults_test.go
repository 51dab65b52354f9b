package gcs

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Faults a real server will not produce on demand, from an httptest fake.

func faultLoader(t *testing.T, h http.HandlerFunc) *loader {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(planSettings(), WithGetenv(envOf("STORAGE_EMULATOR_HOST="+strings.TrimPrefix(srv.URL, "http://")))).newClient(context.Background())
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
	assert.Equal(t, int32(planSettings().MaxAttempts()), calls.Load(), "one object lookup, retried up to the bound")
	assert.Contains(t, err.Error(), "server error [HTTP 502]")
	assert.NotContains(t, err.Error(), "\n")
}

// Planning requests wait the Retry-After a throttling server asks for, in
// either form (seconds, or an HTTP-date), under the run's one policy.
func TestPlanningHonoursRetryAfter(t *testing.T) {
	for name, header := range map[string]func() string{
		"seconds":   func() string { return "1" },
		"http-date": func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) },
	} {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			l := faultLoader(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					w.Header().Set("Retry-After", header())
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				_, _ = io.WriteString(w, `{"name":"m","size":"3","generation":"9","crc32c":"AAAAAA=="}`)
			})
			start := time.Now()
			files, err := l.c.plan(context.Background(), location{Bucket: "b", Object: "m"})
			require.NoError(t, err)
			require.Len(t, files, 1)
			assert.Equal(t, int32(2), calls.Load())
			// The policy's own backoff here is a millisecond or so; an
			// HTTP-date has a resolution of a second.
			assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "waited for Retry-After")
		})
	}
}

func TestPlanningDoesNotRetryWhatCannotSucceed(t *testing.T) {
	var calls atomic.Int32
	l := faultLoader(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"error":{"code":403,"message":"denied"}}`)
	})
	_, err := l.c.plan(context.Background(), location{Bucket: "b", Object: "m"})
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err))
	assert.Equal(t, int32(1), calls.Load())
}
