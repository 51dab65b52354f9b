package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
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
)

func httpe2eSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// httpe2eServe serves files from memory with http.ServeContent (ranges,
// ETag) and counts ranged GETs.
func httpe2eServe(t *testing.T, files map[string][]byte, ranged *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(httpe2eHandler(files, ranged))
	t.Cleanup(srv.Close)
	return srv
}

func httpe2eHandler(files map[string][]byte, ranged *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodGet && r.Header.Get("Range") != "" && ranged != nil {
			ranged.Add(1)
		}
		w.Header().Set("ETag", `"`+httpe2eSHA(b)[:16]+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})
}

func httpe2eTarGz(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, b := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(b)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func httpe2eVerified(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s struct {
		Files []struct {
			Path     string `json:"path"`
			Verified string `json:"verified"`
		} `json:"files"`
	}
	require.NoError(t, json.Unmarshal(b, &s))
	out := map[string]string{}
	for _, f := range s.Files {
		out[f.Path] = f.Verified
	}
	return out
}

func TestE2EHTTPRangedFileAndArchive(t *testing.T) {
	pvce2eRequireScheme(t, "http://registered.invalid/")
	weights := pvce2eBytes(5<<20 + 3)
	inner := map[string][]byte{"config.json": []byte(`{}`), "sub/w.bin": pvce2eBytes(300 << 10)}
	tgz := httpe2eTarGz(t, inner)
	var ranged atomic.Int32
	srv := httpe2eServe(t, map[string][]byte{"/m/weights.bin": weights, "/m/model.tar.gz": tgz}, &ranged)
	d1, d2 := t.TempDir(), t.TempDir()
	sum := filepath.Join(t.TempDir(), "summary.json")

	stdout, stderr, code := runSI(t, nil, "--chunk-size", "1MiB", "--summary-json", sum,
		srv.URL+"/m/weights.bin#sha256="+httpe2eSHA(weights), d1,
		srv.URL+"/m/model.tar.gz", d2)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	got, err := os.ReadFile(filepath.Join(d1, "weights.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(weights, got), "weights.bin differs")
	assert.GreaterOrEqual(t, ranged.Load(), int32(6), "downloaded in ranges")
	for rel, want := range inner {
		got, err := os.ReadFile(filepath.Join(d2, rel))
		require.NoError(t, err)
		assert.Equal(t, want, got, rel)
	}
	_, err = os.Stat(filepath.Join(d2, "model.tar.gz"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the archive is removed after extraction")
	assert.Equal(t, map[string]string{
		"weights.bin": "sha256",
		"config.json": "from model.tar.gz (size only)",
		"sub/w.bin":   "from model.tar.gz (size only)",
	}, httpe2eVerified(t, sum))
}

func TestE2EHTTPErrorsAndHeaders(t *testing.T) {
	pvce2eRequireScheme(t, "http://registered.invalid/")
	body := []byte("private weights")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			http.Error(w, "denied", http.StatusUnauthorized)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	term := filepath.Join(t.TempDir(), "termination-log")
	require.NoError(t, os.WriteFile(term, nil, 0o644))
	src := srv.URL + "/private.bin?X-Sig=query-secret"

	_, stderr, code := runSI(t, nil, "--termination-log", term, src, t.TempDir())
	assert.Equal(t, 1, code, stderr)
	msg, err := os.ReadFile(term)
	require.NoError(t, err)
	assert.Contains(t, string(msg), "HTTP 401")
	assert.Contains(t, string(msg), "127.0.0.1-headers")
	assert.NotContains(t, stderr+string(msg), "query-secret", "query strings can hold credentials")

	dest := t.TempDir()
	stdout, stderr, code := runSI(t, []string{`127.0.0.1-headers={"Authorization": "Bearer tok-123"}`}, src, dest)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	got, err := os.ReadFile(filepath.Join(dest, "private.bin"))
	require.NoError(t, err)
	assert.Equal(t, body, got)
	assert.NotContains(t, stdout+stderr, "tok-123", "header values are never logged")

	_, stderr, code = runSI(t, nil, srv.URL+"/x.bin#sha256=nothex", t.TempDir())
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "want 64 hex digits")
}

func TestE2EHTTPThroughProxy(t *testing.T) {
	pvce2eRequireScheme(t, "http://registered.invalid/")
	body := pvce2eBytes(2<<20 + 1)
	var hosts atomic.Value
	files := map[string][]byte{"/m.bin": body}
	// The proxy is the origin too: it gets absolute-form requests for a host
	// that does not resolve, so only a proxied request can succeed.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts.Store(r.URL.Host + " " + r.Header.Get("X-Team"))
		httpe2eHandler(files, nil).ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	dest := t.TempDir()
	stdout, stderr, code := runSI(t, []string{"HTTP_PROXY=" + proxy.URL, `models.invalid-headers={"X-Team": "ml"}`},
		"--chunk-size", "1MiB", "http://models.invalid/m.bin", dest)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	got, err := os.ReadFile(filepath.Join(dest, "m.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, got))
	assert.Equal(t, "models.invalid ml", hosts.Load())
}

func TestE2EHTTPSWithCustomCA(t *testing.T) {
	pvce2eRequireScheme(t, "http://registered.invalid/")
	body := []byte("tls weights")
	srv := httptest.NewTLSServer(httpe2eHandler(map[string][]byte{"/m.bin": body}, nil))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644))

	_, stderr, code := runSI(t, nil, srv.URL+"/m.bin", t.TempDir())
	assert.Equal(t, 1, code, "an unknown CA is refused")
	assert.True(t, strings.Contains(stderr, "certificate"), stderr)

	dest := t.TempDir()
	stdout, stderr, code := runSI(t, []string{"SSL_CERT_FILE=" + ca}, srv.URL+"/m.bin", dest)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	got, err := os.ReadFile(filepath.Join(dest, "m.bin"))
	require.NoError(t, err)
	assert.Equal(t, body, got)
}
