package faultproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// backend serves one object at /bucket/obj (with ranges) and records the
// Host header of each request.
type backend struct {
	data  []byte
	mu    sync.Mutex
	hosts []string
}

func newBackend(t *testing.T, size int) (*backend, string) {
	b := &backend{data: pattern(size, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.hosts = append(b.hosts, r.Host)
		b.mu.Unlock()
		if r.URL.Path != "/bucket/obj" {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "obj", time.Time{}, bytes.NewReader(b.data))
	}))
	t.Cleanup(srv.Close)
	return b, srv.URL
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>8)
	}
	return b
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// A fresh transport per request: a reset must not poison the next one.
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestPassThroughKeepsHostAndCounts(t *testing.T) {
	be, target := newBackend(t, 100_000)
	p, url := Start(t, target, Config{})
	resp, body, err := get(t, url+"/bucket/obj")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, be.data, body)
	assert.Equal(t, strings.TrimPrefix(url, "http://"), be.hosts[0], "Host is the proxy's, as the client signed it")
	s := p.Stats()
	assert.Equal(t, int64(1), s.Requests)
	assert.Equal(t, int64(1), s.ObjectReads)
	assert.Equal(t, int64(100_000), s.ObjectBytes)
}

func TestReset(t *testing.T) {
	_, target := newBackend(t, 1<<20)
	p, url := Start(t, target, Config{Rules: []Rule{{Kind: Reset, At: 200_000}}})
	_, body, err := get(t, url+"/bucket/obj")
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNRESET) || strings.Contains(err.Error(), "reset"), "%v", err)
	assert.LessOrEqual(t, len(body), 200_000)
	assert.Equal(t, int64(1), p.Stats().Faults[Reset])
}

func TestTruncateEndsCleanlyShort(t *testing.T) {
	be, target := newBackend(t, 1<<20)
	_, url := Start(t, target, Config{Rules: []Rule{{Kind: Truncate, At: -1}}})
	resp, body, err := get(t, url+"/bucket/obj")
	require.NoError(t, err, "no transport error: only the length tells")
	assert.Equal(t, int64(-1), resp.ContentLength)
	assert.Equal(t, be.data[:1<<19], body)
}

func TestStallMidBodyAndBeforeHeaders(t *testing.T) {
	be, target := newBackend(t, 200_000)
	_, url := Start(t, target, Config{Rules: []Rule{
		{Kind: Stall, At: 1000, Stall: Duration(400 * time.Millisecond), Times: 1},
		{Kind: StallHeaders, Stall: Duration(400 * time.Millisecond), Times: 1},
	}})
	for range 2 {
		start := time.Now()
		_, body, err := get(t, url+"/bucket/obj")
		require.NoError(t, err)
		assert.Equal(t, be.data, body, "a stall delays, it does not corrupt")
		assert.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond)
	}
	start := time.Now()
	_, _, err := get(t, url+"/bucket/obj")
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 300*time.Millisecond, "Times bounds the rules")
}

func TestErrorAnswers(t *testing.T) {
	_, target := newBackend(t, 10)
	for _, tc := range []struct {
		kind   Kind
		status int
		code   string
	}{{InternalError, 500, "<Code>InternalError</Code>"}, {SlowDown, 503, "<Code>SlowDown</Code>"}, {TooManyRequests, 429, "<Code>TooManyRequests</Code>"}} {
		_, url := Start(t, target, Config{Rules: []Rule{{Kind: tc.kind, RetryAfter: 2}}})
		resp, body, err := get(t, url+"/bucket/obj")
		require.NoError(t, err)
		assert.Equal(t, tc.status, resp.StatusCode)
		assert.Contains(t, string(body), tc.code)
		if tc.kind != InternalError {
			assert.Equal(t, "2", resp.Header.Get("Retry-After"))
		}
		resp, body, err = get(t, url+"/v2/repo/blobs/sha256:abc")
		require.NoError(t, err)
		assert.Equal(t, tc.status, resp.StatusCode)
		assert.Contains(t, string(body), `"errors"`, "registry paths get a registry error body")
	}
}

func TestFlipOneBit(t *testing.T) {
	be, target := newBackend(t, 100_000)
	_, url := Start(t, target, Config{Rules: []Rule{{Kind: Flip, At: 77_777}}})
	_, body, err := get(t, url+"/bucket/obj")
	require.NoError(t, err)
	require.Len(t, body, len(be.data))
	var diff []int
	for i := range body {
		if body[i] != be.data[i] {
			diff = append(diff, i)
		}
	}
	assert.Equal(t, []int{77_777}, diff)
	assert.Equal(t, be.data[77_777]^1, body[77_777])
}

func TestSwapServesTheOtherVersionAtTheRightOffsets(t *testing.T) {
	be, target := newBackend(t, 300_000)
	other := pattern(300_000, 99)
	swapFile := filepath.Join(t.TempDir(), "v2")
	require.NoError(t, os.WriteFile(swapFile, other, 0o644))
	_, url := Start(t, target, Config{Rules: []Rule{{Kind: Swap, At: -1, SwapFile: swapFile}}})
	resp, body, err := get(t, url+"/bucket/obj", "Range", "bytes=100000-199999")
	require.NoError(t, err)
	assert.Equal(t, 206, resp.StatusCode)
	require.Len(t, body, 100_000)
	assert.Equal(t, be.data[100_000:150_000], body[:50_000], "first half: the version asked for")
	assert.Equal(t, other[150_000:200_000], body[50_000:], "second half: the other version, same offsets")
}

func TestSeededScheduleIsReproducible(t *testing.T) {
	_, target := newBackend(t, 10)
	run := func(seed uint64) []int {
		_, url := Start(t, target, Config{Seed: seed, Rules: []Rule{{Kind: InternalError, Prob: 0.5, Skip: 1}}})
		var out []int
		for range 20 {
			resp, _, err := get(t, url+"/bucket/obj")
			require.NoError(t, err)
			out = append(out, resp.StatusCode)
		}
		return out
	}
	a, b := run(42), run(42)
	assert.Equal(t, a, b)
	assert.Equal(t, 200, a[0], "Skip lets the first through")
	assert.Contains(t, a, 500)
	assert.Contains(t, a, 200)
	assert.NotEqual(t, a, run(43))
}

func TestHoldStopsAtAnExactByteCount(t *testing.T) {
	be, target := newBackend(t, 1<<20)
	p, url := Start(t, target, Config{HoldAfter: 123_456})
	done := make(chan []byte)
	go func() {
		_, body, _ := get(t, url+"/bucket/obj")
		done <- body
	}()
	require.Eventually(t, func() bool { return p.Stats().Held }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, int64(123_456), p.Stats().ObjectBytes)
	p.Release()
	assert.Equal(t, be.data, <-done)
}

func TestAdminAPI(t *testing.T) {
	_, target := newBackend(t, 1000)
	_, url := Start(t, target, Config{}, WithAdmin())
	put := func(body string) int {
		req, _ := http.NewRequest(http.MethodPut, url+AdminPrefix+"config", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, 400, put(`{"rules":[{"kind":"melt"}]}`))
	assert.Equal(t, 400, put(`{"rulez":[]}`), "unknown fields are refused")
	assert.Equal(t, 204, put(`{"seed":1,"rules":[{"kind":"500","times":1},{"kind":"stall","stall":"10ms","at":5}]}`))
	resp, _, err := get(t, url+"/bucket/obj")
	require.NoError(t, err)
	assert.Equal(t, 500, resp.StatusCode)
	_, body, err := get(t, url+"/bucket/obj")
	require.NoError(t, err)
	assert.Len(t, body, 1000)
	_, body, err = get(t, url+AdminPrefix+"stats")
	require.NoError(t, err)
	var s Stats
	require.NoError(t, json.Unmarshal(body, &s))
	assert.Equal(t, int64(2), s.Requests)
	assert.Equal(t, int64(1000), s.ObjectBytes)
	assert.Equal(t, map[Kind]int64{InternalError: 1, Stall: 1}, s.Faults)
}

func TestIsObjectRead(t *testing.T) {
	for target, want := range map[string]bool{
		"/bucket/key":                    true,
		"/bucket/dir/key?x-id=GetObject": true,
		"/bucket/?list-type=2":           false,
		"/bucket/dir/":                   false,
		"/bucket":                        false,
		"/bucket/key?uploads":            false,
		"/v2/repo/blobs/sha256:abc":      true,
		"/v2/repo/manifests/latest":      true,
		"/v2/":                           false,
	} {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		assert.Equal(t, want, IsObjectRead(r), target)
	}
	assert.False(t, IsObjectRead(httptest.NewRequest(http.MethodHead, "/bucket/key", nil)))
}

func TestCountLimitsWhatIsCounted(t *testing.T) {
	_, target := newBackend(t, 5000)
	p, url := Start(t, target, Config{Count: "^/bucket/other$"})
	_, body, err := get(t, url+"/bucket/obj")
	require.NoError(t, err)
	assert.Len(t, body, 5000)
	s := p.Stats()
	assert.Zero(t, s.ObjectReads)
	assert.Zero(t, s.ObjectBytes)
	assert.Equal(t, int64(5000), s.Bytes, "all bytes still count in Bytes")
}
