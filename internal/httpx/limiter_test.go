package httpx

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inFlight is a server that counts the requests it is working on.
type inFlight struct {
	now, peak, total atomic.Int64
}

func (s *inFlight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.total.Add(1)
	n := s.now.Add(1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	time.Sleep(10 * time.Millisecond)
	// Counted out before the body is written: the client cannot see EOF
	// (and give its token back) before this request left the count.
	s.now.Add(-1)
	w.Write([]byte("body"))
}

func limitedClient(t *testing.T, l *Limiter) *http.Client {
	t.Helper()
	c, err := NewClient(Options{Conns: 8, Limiter: l})
	require.NoError(t, err)
	return c
}

func TestLimiterBoundsRequestsAcrossClients(t *testing.T) {
	srv := &inFlight{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	const n = 4
	l := NewLimiter(n)
	clients := []*http.Client{limitedClient(t, l), limitedClient(t, l)} // two providers, one bound
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			resp, err := clients[i%2].Get(ts.URL)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			if i%3 == 0 {
				return // closed unread
			}
			_, err = io.ReadAll(resp.Body)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int64(50), srv.total.Load())
	assert.LessOrEqual(t, srv.peak.Load(), int64(n), "never more than n requests at the server")
	assert.Equal(t, int64(n), srv.peak.Load(), "the bound is reached, not undershot")
	assert.Zero(t, len(l.tokens), "every token given back")
}

func TestLimiterWaitHonoursContext(t *testing.T) {
	srv := &inFlight{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	l := NewLimiter(1)
	c := limitedClient(t, l)
	held, err := c.Get(ts.URL)
	require.NoError(t, err)
	defer held.Body.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL, nil)
	start := time.Now()
	_, err = c.Do(req)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "waiting for a request slot")
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, int64(1), srv.total.Load(), "the waiting request never reached the server")
}

func TestLimiterReleasesToken(t *testing.T) {
	ts := httptest.NewServer(&inFlight{})
	defer ts.Close()
	// get fails the test when no token comes free within a second.
	get := func(t *testing.T, c *http.Client, method string) *http.Response {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, method, ts.URL, nil)
		resp, err := c.Do(req)
		require.NoError(t, err, "a token should be free")
		return resp
	}
	t.Run("on Close", func(t *testing.T) {
		l := NewLimiter(1)
		c := limitedClient(t, l)
		get(t, c, http.MethodGet).Body.Close()
		assert.Zero(t, len(l.tokens))
		get(t, c, http.MethodGet).Body.Close()
	})
	t.Run("at EOF, once", func(t *testing.T) {
		l := NewLimiter(2)
		c := limitedClient(t, l)
		resp := get(t, c, http.MethodGet)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "body", string(b))
		assert.Zero(t, len(l.tokens), "released at EOF, before Close")
		other := get(t, c, http.MethodGet) // holds a token
		resp.Body.Close()                  // must not release a second time
		assert.Equal(t, 1, len(l.tokens))
		other.Body.Close()
		assert.Zero(t, len(l.tokens))
	})
	t.Run("without a body", func(t *testing.T) {
		l := NewLimiter(1)
		c := limitedClient(t, l)
		get(t, c, http.MethodHead) // never closed
		assert.Zero(t, len(l.tokens))
	})
	t.Run("when RoundTrip fails", func(t *testing.T) {
		l := NewLimiter(1)
		boom := errors.New("boom")
		c := &http.Client{Transport: l.Wrap(roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, boom }))}
		for range 3 {
			_, err := c.Get(ts.URL)
			require.ErrorIs(t, err, boom)
		}
		assert.Zero(t, len(l.tokens))
		ok := &http.Client{Transport: l.Wrap(http.DefaultTransport)}
		get(t, ok, http.MethodGet).Body.Close()
	})
}

func TestNilLimiterWrapsNothing(t *testing.T) {
	var l *Limiter
	assert.Equal(t, http.DefaultTransport, l.Wrap(http.DefaultTransport))
}
