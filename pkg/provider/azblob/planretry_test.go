package azblob

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// faultFront returns the environment that sends the provider to Azurite
// through a testenv.FaultProxy.
func faultFront(t *testing.T, a testenv.AzuriteServer, fail testenv.Fault) []string {
	return []string{"AZURE_STORAGE_CONNECTION_STRING=" + a.ConnectionString(a.FaultProxy(t, fail)), "AZURE_STORAGE_ACCESS_KEY=" + a.Key}
}

func isListing(r *http.Request) bool { return r.URL.Query().Get("comp") == "list" }

// Property and listing requests wait the Retry-After a throttling service
// asks for, in either form (seconds, or an HTTP-date), under the run's one
// policy; the SDK adds no retries of its own.
func TestPlanningHonoursRetryAfter(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	a.Put(t, c, "m/w.bin", []byte("weights"), true)
	for name, header := range map[string]func() string{
		"seconds":   func() string { return "1" },
		"http-date": func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) },
	} {
		t.Run(name, func(t *testing.T) {
			var heads atomic.Int32
			env := faultFront(t, a, func(r *http.Request) (int, string) {
				if r.Method == http.MethodHead && heads.Add(1) == 1 {
					return http.StatusServiceUnavailable, header()
				}
				return 0, ""
			})
			start := time.Now()
			plan, err := New(planSettings(), WithGetenv(envOf(env...))).Plan(context.Background(), a.URI(c, "m/w.bin"))
			require.NoError(t, err)
			assert.Equal(t, []string{"w.bin"}, paths(plan))
			assert.Equal(t, int32(2), heads.Load(), "one throttled HEAD, one retry, nothing added by the SDK")
			// The policy's own backoff here is a millisecond or so; an
			// HTTP-date has a resolution of a second.
			assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "waited for Retry-After")
		})
	}
}

func TestPlanningRetriesServerErrorsABoundedNumberOfTimes(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	a.Put(t, c, "model/a", []byte("a"), true)
	var lists atomic.Int32
	env := faultFront(t, a, func(r *http.Request) (int, string) {
		if isListing(r) {
			lists.Add(1)
			return http.StatusInternalServerError, ""
		}
		return 0, ""
	})
	_, err := New(planSettings(), WithGetenv(envOf(env...))).Plan(context.Background(), a.URI(c, "model"))
	require.Error(t, err)
	assert.False(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "server error [HTTP 500")
	assert.Equal(t, int32(planSettings().MaxAttempts()), lists.Load(), "one listing page, retried up to the policy's bound")
}

// A listing page that fails is read again from its marker: the folder is
// listed whole, page by page, though every page fails once first.
func TestListingResumesAtThePageThatFailed(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	want, _ := seedModel(t, a, c)
	var lists atomic.Int32
	env := faultFront(t, a, func(r *http.Request) (int, string) {
		if isListing(r) && lists.Add(1)%2 == 1 {
			return http.StatusServiceUnavailable, ""
		}
		return 0, ""
	})
	p := New(planSettings(), WithGetenv(envOf(env...)))
	p.pageSize = 2
	plan, err := p.Plan(context.Background(), a.URI(c, "model"))
	require.NoError(t, err)
	assert.Equal(t, keys(want), paths(plan))
	assert.GreaterOrEqual(t, lists.Load(), int32(2*4), "four or more pages of two, each failed once")
}
