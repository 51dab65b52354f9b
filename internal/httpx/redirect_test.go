package httpx

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/redact"
)

// headerSink records the headers of the last request it got.
type headerSink struct {
	got  atomic.Pointer[http.Header]
	hits atomic.Int64
}

func (s *headerSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Clone()
	s.got.Store(&h)
	s.hits.Add(1)
	w.Write([]byte("ok"))
}

// policyClients are the two ways the policy applies: the client's
// CheckRedirect, and GuardRedirects under a client whose own policy
// follows everything (a library's client).
func policyClients(t *testing.T, o Options) map[string]*http.Client {
	t.Helper()
	c, err := NewClient(o)
	require.NoError(t, err)
	tr, err := NewTransport(o)
	require.NoError(t, err)
	followAll := func(*http.Request, []*http.Request) error { return nil }
	return map[string]*http.Client{
		"CheckRedirect":  c,
		"GuardRedirects": {Transport: GuardRedirects(tr, o.SensitiveHeaders...), CheckRedirect: followAll},
	}
}

func redirectTo(loc string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loc, http.StatusFound)
	})
}

var credentials = map[string]string{
	"Authorization":       "Bearer AUTH",
	"Cookie":              "session=COOKIE",
	"Proxy-Authorization": "Basic PROXY",
	"X-Api-Key":           "APIKEY",       // marked on the client
	"Private-Token":       "PRIVATETOKEN", // marked on the request's context
}

func getWithCredentials(t *testing.T, c *http.Client, url string) (*http.Response, error) {
	t.Helper()
	ctx := WithSensitiveHeaders(t.Context(), "PRIVATE-TOKEN")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range credentials {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Trace", "kept")
	req.Header["x-api-key"] = []string{"RAWAPIKEY"} // set without canonicalisation
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

func TestRedirectToAnotherHostDropsCredentials(t *testing.T) {
	sink := &headerSink{}
	other := httptest.NewServer(sink)
	defer other.Close()
	// Same address, another host name: only the host differs.
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1) + "/blob?sig=1"
	origin := httptest.NewServer(redirectTo(otherURL))
	defer origin.Close()
	for name, c := range policyClients(t, Options{SensitiveHeaders: []string{"x-api-key"}}) {
		t.Run(name, func(t *testing.T) {
			_, err := getWithCredentials(t, c, origin.URL+"/m.bin?token=T")
			require.NoError(t, err)
			got := *sink.got.Load()
			for k := range credentials {
				assert.Empty(t, got.Values(k), "%s must not follow a redirect to another host", k)
			}
			assert.Equal(t, "kept", got.Get("X-Trace"), "other headers follow")
			assert.Empty(t, got.Get("Referer"), "the Referer would carry the first URL's query")
		})
	}
}

func TestRedirectChainThatComesBackKeepsCredentialsDropped(t *testing.T) {
	sink := &headerSink{}
	var back string
	mux := http.NewServeMux()
	mux.Handle("/start", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, back, http.StatusFound)
	}))
	mux.Handle("/final", sink)
	origin := httptest.NewServer(mux)
	defer origin.Close()
	away := httptest.NewServer(redirectTo(origin.URL + "/final"))
	defer away.Close()
	back = away.URL // another port
	for name, c := range policyClients(t, Options{SensitiveHeaders: []string{"X-Api-Key"}}) {
		t.Run(name, func(t *testing.T) {
			_, err := getWithCredentials(t, c, origin.URL+"/start")
			require.NoError(t, err)
			got := *sink.got.Load()
			for k := range credentials {
				assert.Empty(t, got.Get(k), k)
			}
		})
	}
}

func TestRedirectOnTheSameOriginKeepsHeaders(t *testing.T) {
	sink := &headerSink{}
	mux := http.NewServeMux()
	mux.Handle("/old", redirectTo("/new"))
	mux.Handle("/new", sink)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for name, c := range policyClients(t, Options{SensitiveHeaders: []string{"X-Api-Key"}}) {
		t.Run(name, func(t *testing.T) {
			_, err := getWithCredentials(t, c, srv.URL+"/old")
			require.NoError(t, err)
			got := *sink.got.Load()
			for k, v := range credentials {
				assert.Equal(t, v, got.Get(k), k)
			}
		})
	}
}

func TestRedirectFromHTTPSToHTTPIsRefused(t *testing.T) {
	sink := &headerSink{}
	plain := httptest.NewServer(sink)
	defer plain.Close()
	secure := httptest.NewTLSServer(redirectTo(plain.URL + "/m.bin?X-Amz-Signature=SECRET"))
	defer secure.Close()
	for name, c := range policyClients(t, Options{CAFiles: []CAFile{{Path: certFile(t, secure), From: "TEST_CA"}}}) {
		t.Run(name, func(t *testing.T) {
			_, err := getWithCredentials(t, c, secure.URL+"/m.bin")
			require.Error(t, err)
			var re *RedirectError
			require.ErrorAs(t, err, &re)
			assert.Contains(t, re.Error(), "downgrades https to plain http")
			assert.NotContains(t, re.Error(), "SECRET")
			assert.NotContains(t, redact.Error(err).Error(), "SECRET", "net/http's url.Error names the Location")
			assert.False(t, re.RetryableError())
			assert.Zero(t, sink.hits.Load(), "nothing sent over plain http")
		})
	}
}

func TestRedirectCountIsBounded(t *testing.T) {
	// /r/N redirects to /r/N-1; /r/0 answers.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
		if n > 0 {
			http.Redirect(w, r, "/r/"+strconv.Itoa(n-1), http.StatusFound)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	for name, c := range policyClients(t, Options{}) {
		t.Run(name, func(t *testing.T) {
			resp, err := c.Get(srv.URL + "/r/10")
			require.NoError(t, err, "10 redirects are followed")
			resp.Body.Close()

			_, err = c.Get(srv.URL + "/r/11")
			var re *RedirectError
			require.ErrorAs(t, err, &re, "the 11th is refused")
			assert.Contains(t, re.Error(), "more than 10 redirects")
		})
	}
}

func TestHTTP1OnlyAndCABundle(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Write([]byte("stored bytes"))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	_, err := (&http.Client{Transport: mustTransport(t, Options{})}).Get(srv.URL)
	require.Error(t, err, "an unknown CA is refused")

	c, err := NewClient(Options{CAFiles: []CAFile{{}, {Path: certFile(t, srv), From: "TEST_CA"}}})
	require.NoError(t, err)
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 1, resp.ProtoMajor, "HTTP/1.1 even where the server offers h2")
	assert.False(t, resp.Uncompressed, "bytes as served, never transparently gunzipped")

	insecure, err := NewClient(Options{InsecureSkipVerify: true, CAFiles: []CAFile{{Path: "/not/read", From: "X"}}})
	require.NoError(t, err)
	resp, err = insecure.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
}

func TestCABundleErrorsNameFileAndSource(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pem")
	_, err := NewTransport(Options{CAFiles: []CAFile{{Path: missing, From: "AWS_CA_BUNDLE"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read CA bundle "+missing+" (from AWS_CA_BUNDLE)")

	junk := filepath.Join(t.TempDir(), "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not a certificate"), 0o600))
	_, err = NewClient(Options{CAFiles: []CAFile{{Path: junk, From: "--ca-bundle"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CA bundle "+junk+" (from --ca-bundle) holds no PEM certificate")
}

func TestTransportSettings(t *testing.T) {
	tr := mustTransport(t, Options{Conns: 64, ResponseHeaderTimeout: 7, ReadBufferSize: 1 << 17})
	assert.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 64, "one idle connection per request in flight")
	assert.GreaterOrEqual(t, tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
	assert.True(t, tr.DisableCompression)
	assert.False(t, tr.ForceAttemptHTTP2)
	assert.False(t, tr.Protocols.HTTP2())
	assert.NotNil(t, tr.TLSNextProto)
	assert.Equal(t, int64(7), int64(tr.ResponseHeaderTimeout))
	assert.Equal(t, DefaultTLSHandshakeTimeout, tr.TLSHandshakeTimeout)
	assert.Equal(t, 1<<17, tr.ReadBufferSize)
	assert.NotNil(t, tr.Proxy, "HTTP_PROXY, HTTPS_PROXY, NO_PROXY")
}

func mustTransport(t *testing.T, o Options) *http.Transport {
	t.Helper()
	tr, err := NewTransport(o)
	require.NoError(t, err)
	return tr
}

func certFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	return f
}
