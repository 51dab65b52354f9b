package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/faultproxy"
	"github.com/storage-initializer/storage-initializer/internal/hubtest"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// One retry and stall policy around every request (issue 10): a single
// stream that stalls is abandoned within --read-timeout × attempts plus
// backoff, and Retry-After, in seconds or as an HTTP-date, is honoured by
// every provider.

// accChunkedServer serves body at /m/model.bin the way a plain origin
// without range support does: HEAD without a length, GETs that ignore
// Range, no Accept-Ranges, a chunked body (no Content-Length). stall(n)
// says whether the n-th whole-file GET (1-based) stalls halfway, forever.
// Probes (Range: bytes=0-0) are answered like any GET and never stall
// within their first 64 KiB.
func accChunkedServer(t *testing.T, body []byte, stall func(n int) bool) (*httptest.Server, *atomic.Int32) {
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/m/model.bin" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusOK)
			return
		}
		stalls := false
		if r.Header.Get("Range") == "" {
			stalls = stall(int(gets.Add(1)))
		}
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		half := len(body) / 2
		for off := 0; off < len(body); off += 32 << 10 {
			if stalls && off >= half {
				<-r.Context().Done() // halfway, forever (until the client leaves)
				return
			}
			if _, err := w.Write(body[off:min(off+32<<10, len(body))]); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &gets
}

func TestE2EStalledChunkedSingleStream(t *testing.T) {
	body := testenv.Random(1<<20+333, 41)
	flags := []string{"--read-timeout", "2s", "--max-attempts", "2"}

	t.Run("stalls-forever", func(t *testing.T) {
		srv, gets := accChunkedServer(t, body, func(int) bool { return true })
		dest := filepath.Join(t.TempDir(), "m")
		tlog := filepath.Join(t.TempDir(), "termination-log")
		require.NoError(t, os.WriteFile(tlog, nil, 0o600)) // as the kubelet provides it
		start := time.Now()
		_, stderr, code := runSI(t, nil, append(flags, "--termination-log", tlog, srv.URL+"/m/model.bin", dest)...)
		elapsed := time.Since(start)
		assert.NotEqual(t, 0, code, stderr)
		assert.Less(t, elapsed, 10*time.Second, "a stalled single stream must be abandoned within read-timeout × attempts + backoff")
		assert.Equal(t, int32(2), gets.Load(), "one GET per attempt")
		reason, err := os.ReadFile(tlog)
		require.NoError(t, err)
		line := strings.TrimRight(string(reason), "\n")
		assert.NotEmpty(t, line)
		assert.NotContains(t, line, "\n", "the reason is one line")
		assert.Contains(t, line, "model.bin")
		_, err = os.Lstat(filepath.Join(dest, "model.bin"))
		assert.ErrorIs(t, err, os.ErrNotExist, "nothing under the final name")
		t.Logf("gave up after %s: %s", elapsed.Round(time.Millisecond), line)
	})

	t.Run("never-stalls", func(t *testing.T) {
		srv, gets := accChunkedServer(t, body, func(int) bool { return false })
		dest := filepath.Join(t.TempDir(), "m")
		_, stderr, code := runSI(t, nil, append(flags, srv.URL+"/m/model.bin", dest)...)
		require.Equal(t, 0, code, stderr)
		accExactly(t, dest, map[string][]byte{"model.bin": body})
		assert.Equal(t, int32(1), gets.Load())
	})

	t.Run("stalls-once", func(t *testing.T) {
		srv, gets := accChunkedServer(t, body, func(n int) bool { return n == 1 })
		dest := filepath.Join(t.TempDir(), "m")
		start := time.Now()
		_, stderr, code := runSI(t, nil, append(flags, srv.URL+"/m/model.bin", dest)...)
		require.Equal(t, 0, code, stderr)
		assert.Less(t, time.Since(start), 10*time.Second)
		accExactly(t, dest, map[string][]byte{"model.bin": body})
		assert.Equal(t, int32(2), gets.Load(), "restarted from the start once")
	})
}

// accRetryAfterCase is one provider's source with a throttle in front of
// one of its requests.
type accRetryAfterCase struct {
	name string
	// start serves the source behind th and returns the env, the source
	// URI and the model DEST must hold.
	start func(t *testing.T, th *faultproxy.Throttle) (env []string, src string, want map[string][]byte)
}

// TestE2ERetryAfterEveryProvider answers one request of each provider with
// 503 or 429 and Retry-After ~2 s ahead, as an HTTP-date and in seconds:
// the run succeeds, and the next try of that request comes after the wait.
func TestE2ERetryAfterEveryProvider(t *testing.T) {
	m := testenv.MinIO(t)
	r := testenv.Registry(t)

	s3Model := map[string][]byte{"a.bin": testenv.Random(300_000, 51), "config.json": []byte(`{"s3":1}`)}
	bucket := m.Bucket(t)
	for k, v := range s3Model {
		m.Put(t, bucket, "model/"+k, v, "CRC64NVME")
	}
	s3 := func(match func(*http.Request) bool) func(t *testing.T, th *faultproxy.Throttle) ([]string, string, map[string][]byte) {
		return func(t *testing.T, th *faultproxy.Throttle) ([]string, string, map[string][]byte) {
			th.Match = match
			_, url := accFront(t, m.Endpoint, nil, faultproxy.Config{}, th.Wrap)
			return accS3Env(m, url), "s3://" + bucket + "/model", s3Model
		}
	}

	layers, ociModel := accModelcar(t, 5, 200_000, 2)
	repo := "si-acc/retry-after-modelcar"
	digests := accPush(t, r.Plain, repo, "v1", "", accImageConfig(), layers...)
	oci := func(match func(*http.Request) bool) func(t *testing.T, th *faultproxy.Throttle) ([]string, string, map[string][]byte) {
		return func(t *testing.T, th *faultproxy.Throttle) ([]string, string, map[string][]byte) {
			th.Match = match
			_, url := accFront(t, "http://"+r.Plain, nil, faultproxy.Config{}, th.Wrap)
			return nil, "oci://" + accHost(url) + "/" + repo + ":v1", ociModel
		}
	}

	weights := testenv.Random(400_000, 52)
	web := func(match func(*http.Request) bool) func(t *testing.T, th *faultproxy.Throttle) ([]string, string, map[string][]byte) {
		return func(t *testing.T, th *faultproxy.Throttle) ([]string, string, map[string][]byte) {
			th.Match = match
			srv := httptest.NewServer(th.Wrap(accFileServer(map[string][]byte{"/m/weights.bin": weights})))
			t.Cleanup(srv.Close)
			return nil, srv.URL + "/m/weights.bin", map[string][]byte{"weights.bin": weights}
		}
	}

	hfModel := map[string][]byte{"config.json": []byte(`{"hf":1}`), "model.safetensors": testenv.Random(300_000, 53)}
	hf := func(cdn bool, match func(*http.Request) bool) func(t *testing.T, th *faultproxy.Throttle) ([]string, string, map[string][]byte) {
		return func(t *testing.T, th *faultproxy.Throttle) ([]string, string, map[string][]byte) {
			h := hubtest.New(t)
			h.Push("org/m", "main", hfModel)
			th.Match = match
			var api string
			if cdn {
				_, cdnURL := accFront(t, h.CDN.URL, nil, faultproxy.Config{}, th.Wrap)
				_, api = accFront(t, h.API.URL, nil, faultproxy.Config{}, accRewriteLocation(h.CDN.URL, cdnURL))
			} else {
				_, api = accFront(t, h.API.URL, nil, faultproxy.Config{}, th.Wrap)
			}
			return []string{"HF_ENDPOINT=" + api}, "hf://org/m", hfModel
		}
	}
	get := func(pred func(*http.Request) bool) func(*http.Request) bool {
		return func(r *http.Request) bool { return r.Method == http.MethodGet && pred(r) }
	}

	cases := []struct {
		accRetryAfterCase
		status int
		times  int                        // requests throttled (0: 1)
		key    func(*http.Request) string // what "the same request again" is (nil: method, path, query, Range)
	}{
		{accRetryAfterCase{"s3-object-get", s3(get(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/model/a.bin") }))}, http.StatusServiceUnavailable, 0, nil},
		{accRetryAfterCase{"s3-listing", s3(get(func(r *http.Request) bool { return r.URL.Query().Get("list-type") == "2" }))}, http.StatusServiceUnavailable, 0, nil},
		{accRetryAfterCase{"oci-layer-blob", oci(get(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/blobs/"+digests[1]) }))}, http.StatusTooManyRequests, 0, nil},
		{accRetryAfterCase{"oci-manifest", oci(get(func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/manifests/") }))}, http.StatusTooManyRequests, 0, nil},
		{accRetryAfterCase{"http-ranged-get", web(get(func(r *http.Request) bool { return r.URL.Path == "/m/weights.bin" }))}, http.StatusServiceUnavailable, 0, nil},
		// The probe is a HEAD, then (HEAD refused) a GET of the first byte:
		// both are throttled, and the wait ends at the next probe request.
		{accRetryAfterCase{"http-probe", web(func(r *http.Request) bool {
			return r.Method == http.MethodHead || r.Header.Get("Range") == "bytes=0-0"
		})}, http.StatusServiceUnavailable, 2, func(*http.Request) string { return "probe" }},
		// A plain git file: always read through /resolve (LFS ranges may go
		// to the CDN URL an earlier range was redirected to).
		{accRetryAfterCase{"hf-resolve", hf(false, get(func(r *http.Request) bool {
			return strings.Contains(r.URL.Path, "/resolve/") && strings.HasSuffix(r.URL.Path, "/config.json")
		}))}, http.StatusTooManyRequests, 0, nil},
		{accRetryAfterCase{"hf-cdn", hf(true, get(func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/lfs/") }))}, http.StatusTooManyRequests, 0, nil},
		{accRetryAfterCase{"hf-tree", hf(false, get(func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/tree/") }))}, http.StatusTooManyRequests, 0, nil},
	}
	for _, c := range cases {
		for _, date := range []bool{true, false} {
			form := "seconds"
			if date {
				form = "http-date"
			}
			t.Run(c.name+"/"+form, func(t *testing.T) {
				t.Parallel()
				th := &faultproxy.Throttle{Status: c.status, Times: c.times, Key: c.key, After: 2 * time.Second, Date: date}
				env, src, want := c.start(t, th)
				dest := filepath.Join(t.TempDir(), "m")
				start := time.Now()
				_, stderr, code := runSI(t, env, "--chunk-size", "64KiB", "--max-attempts", "3", src, dest)
				elapsed := time.Since(start)
				require.Equal(t, 0, code, stderr)
				accExactly(t, dest, want)
				waited, n := th.Waited()
				require.Equal(t, max(c.times, 1), n, "the throttled request was never made")
				require.NotZero(t, waited, "the throttled request was never tried again")
				t.Logf("%s %s: next try after %s (run %s)", c.name, form, waited.Round(time.Millisecond), elapsed.Round(time.Millisecond))
				assert.GreaterOrEqual(t, waited, 1500*time.Millisecond,
					"Retry-After (%s) not honoured: the request was retried %s after a %d (stderr: %s)", form, waited, c.status, lastLines(stderr, 8))
				assert.GreaterOrEqual(t, elapsed, 1500*time.Millisecond)
				assert.Less(t, waited, 8*time.Second, "waited far longer than asked")
			})
		}
	}
}

// lastLines is the end of a log, for failure messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
