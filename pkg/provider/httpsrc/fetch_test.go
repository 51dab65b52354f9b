package httpsrc

import (
	"crypto/sha256"
	"encoding/hex"
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

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRangedDownloadFromAFileServer(t *testing.T) {
	dir := t.TempDir()
	body := payload(5*chunk + 17)
	writeFile(t, dir, "models/model v1.bin", body)
	srv, s := fileServer(t, dir)
	dest := t.TempDir()
	p := newP(newEngine())

	src := srv.URL + "/models/model%20v1.bin#sha256=" + hexSHA(body)
	rep, err := p.Fetch(t.Context(), src, dest)
	require.NoError(t, err)
	require.Len(t, rep.Files, 1)
	assert.Equal(t, "model v1.bin", rep.Files[0].Path)
	assert.Equal(t, "sha256", rep.Files[0].Verified)
	assert.Equal(t, map[string][]byte{"model v1.bin": body}, readDest(t, dest))
	assert.Equal(t, 1+6, s.count(http.MethodGet, true), "the planner's 1-byte range check, then one ranged GET per chunk")
	assert.Zero(t, s.count(http.MethodGet, false))

	// A rerun finds the verified file and fetches nothing (but the check).
	before := s.count(http.MethodGet, true)
	rep, err = p.Fetch(t.Context(), src, dest)
	require.NoError(t, err)
	assert.Equal(t, engine.StatusPresent, rep.Files[0].Status)
	assert.Zero(t, rep.Files[0].Fetched)
	assert.Equal(t, before+1, s.count(http.MethodGet, true))
}

func TestServerIgnoringRange(t *testing.T) {
	for name, size := range map[string]int{"one chunk, through the engine": chunk / 2, "several chunks, one stream": 3*chunk + 5} {
		t.Run(name, func(t *testing.T) {
			body := payload(size)
			srv, s := noRangeServer(t, body)
			dest := t.TempDir()
			rep, err := newP(newEngine()).Fetch(t.Context(), srv.URL+"/weights.bin#sha256="+hexSHA(body), dest)
			require.NoError(t, err)
			require.Len(t, rep.Files, 1)
			assert.Equal(t, "sha256", rep.Files[0].Verified)
			assert.Equal(t, int64(size), rep.Files[0].Fetched)
			assert.Equal(t, map[string][]byte{"weights.bin": body}, readDest(t, dest))
			assert.Zero(t, s.count(http.MethodGet, true), "no Range header sent to a server without ranges")
			assert.Equal(t, 1, s.count(http.MethodGet, false))
		})
	}
}

// A server that advertises ranges and ignores them is read in one stream
// (issue: it used to fail the download).
func TestServerLyingAboutRangesFallsBackToOneStream(t *testing.T) {
	body := payload(3 * chunk)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Accept-Ranges", "bytes")
		w.Header().Set("ETag", `"v1"`) // ranges are used only with a validator
		w.Header().Set("Content-Length", itoa(len(body)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	}))
	defer srv.Close()
	dest := t.TempDir()
	rep, err := newP(newEngine()).Fetch(t.Context(), srv.URL+"/m.bin#sha256="+hexSHA(body), dest)
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"m.bin": body}, readDest(t, dest))
	assert.Equal(t, "sha256", rep.Files[0].Verified)
}

func TestFileChangingDuringDownloadFails(t *testing.T) {
	v1, v2 := payload(4*chunk), payload(4*chunk)
	v2[0] ^= 0xff
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, etag := v1, `"v1"`
		// The file is replaced after the first two ranges.
		if r.Method == http.MethodGet && gets.Add(1) > 2 {
			body, etag = v2, `"v2"`
		}
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, "m.bin", time.Time{}, strings.NewReader(string(body)))
	}))
	defer srv.Close()
	dest := t.TempDir()
	_, err := newP(newEngine(engine.WithConcurrency(1))).Fetch(t.Context(), srv.URL+"/m.bin", dest)
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err), "a changed file is not retried: %v", err)
	assert.Contains(t, err.Error(), "changed during download")
	assert.Equal(t, int32(3), gets.Load(), "no retry after the change")
	_, err = os.Stat(filepath.Join(dest, "m.bin"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestFileChangingWithoutETagIsCaughtByLastModified(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "m.bin", payload(4*chunk))
	var gets atomic.Int32
	fs := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && gets.Add(1) == 2 {
			later := time.Now().Add(time.Hour)
			require.NoError(t, os.Chtimes(filepath.Join(dir, "m.bin"), later, later))
		}
		fs.ServeHTTP(w, r)
	}))
	defer srv.Close()
	_, err := newP(newEngine(engine.WithConcurrency(1))).Fetch(t.Context(), srv.URL+"/m.bin", t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "changed during download")
}

func TestHeadersFromHostEnv(t *testing.T) {
	body := payload(chunk + 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cr3t" || r.Header.Get("X-Team") != "ml" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		http.ServeContent(w, r, "m.bin", time.Time{}, strings.NewReader(string(body)))
	}))
	defer srv.Close()
	src := srv.URL + "/m.bin?X-Amz-Signature=querysecret"

	_, err := newP(newEngine()).Fetch(t.Context(), src, t.TempDir())
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "HTTP 401")
	assert.Contains(t, err.Error(), "127.0.0.1-headers")
	assert.NotContains(t, err.Error(), "querysecret")

	env := map[string]string{"127.0.0.1-headers": `{"Authorization": "Bearer s3cr3t", "X-Team": "ml"}`}
	dest := t.TempDir()
	_, err = newP(newEngine(), WithGetenv(func(k string) string { return env[k] })).Fetch(t.Context(), src, dest)
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"m.bin": body}, readDest(t, dest))

	env["127.0.0.1-headers"] = `{"Authorization": "Bearer wrong"}`
	_, err = newP(newEngine(), WithGetenv(func(k string) string { return env[k] })).Fetch(t.Context(), src, t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "check the headers in env 127.0.0.1-headers")
	assert.NotContains(t, err.Error(), "wrong", "header values never reach messages")
}

func TestSHA256FragmentMismatch(t *testing.T) {
	wrong := hexSHA([]byte("something else"))
	t.Run("ranged", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "m.bin", payload(2*chunk))
		srv, _ := fileServer(t, dir)
		dest := t.TempDir()
		_, err := newP(newEngine()).Fetch(t.Context(), srv.URL+"/m.bin#sha256="+wrong, dest)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "checksum mismatch for m.bin")
		assert.Contains(t, err.Error(), wrong)
		_, err = os.Stat(filepath.Join(dest, "m.bin"))
		assert.ErrorIs(t, err, os.ErrNotExist)
	})
	t.Run("stream", func(t *testing.T) {
		srv, _ := noRangeServer(t, payload(3*chunk))
		dest := t.TempDir()
		_, err := newP(newEngine()).Fetch(t.Context(), srv.URL+"/m.bin#sha256="+wrong, dest)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "checksum mismatch for m.bin: sha256 expected "+wrong)
		assert.Empty(t, readDest(t, dest))
	})
}

func TestStatusMapping(t *testing.T) {
	var calls atomic.Int32
	body := payload(chunk)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing.bin":
			http.NotFound(w, r)
		case "/forbidden.bin":
			http.Error(w, "no", http.StatusForbidden)
		case "/busy.bin":
			// HEAD passes; the first GET is throttled once.
			if r.Method == http.MethodGet && calls.Add(1) == 1 {
				w.Header().Set("Retry-After", "0")
				http.Error(w, "slow down", http.StatusServiceUnavailable)
				return
			}
			http.ServeContent(w, r, "busy.bin", time.Time{}, strings.NewReader(string(body)))
		case "/broken.bin":
			if r.Method == http.MethodHead {
				w.Header().Set("Content-Length", itoa(len(body)))
				w.Header().Set("Accept-Ranges", "bytes")
				return
			}
			http.Error(w, "oops", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	p := newP(newEngine())

	_, err := p.Fetch(t.Context(), srv.URL+"/missing.bin", t.TempDir())
	assert.True(t, engine.IsPermanent(err))
	assert.ErrorContains(t, err, "GET "+srv.URL+"/missing.bin: HTTP 404 Not Found: no file at this URL")

	_, err = p.Fetch(t.Context(), srv.URL+"/forbidden.bin", t.TempDir())
	assert.True(t, engine.IsPermanent(err))
	assert.ErrorContains(t, err, "HTTP 403 Forbidden: access denied")

	dest := t.TempDir()
	_, err = p.Fetch(t.Context(), srv.URL+"/busy.bin", dest)
	require.NoError(t, err, "503 with Retry-After is retried")
	assert.Equal(t, int32(2), calls.Load())

	_, err = p.Fetch(t.Context(), srv.URL+"/broken.bin", t.TempDir())
	require.Error(t, err)
	assert.False(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "gave up after 2 attempts")
	assert.Contains(t, err.Error(), "HTTP 500")
}

func TestHeadRefusedFallsBackToARangedGET(t *testing.T) {
	body := payload(3*chunk + 1)
	s := &served{}
	srv := httptest.NewServer(s.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			http.Error(w, "signed for GET", http.StatusForbidden) // like a presigned URL
			return
		}
		w.Header().Set("ETag", `"v1"`) // ranges are used only with a validator
		http.ServeContent(w, r, "m.bin", time.Time{}, strings.NewReader(string(body)))
	})))
	defer srv.Close()
	dest := t.TempDir()
	_, err := newP(newEngine()).Fetch(t.Context(), srv.URL+"/m.bin", dest)
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"m.bin": body}, readDest(t, dest))
	assert.Equal(t, 1+4, s.count(http.MethodGet, true), "the probe's bytes=0-0, then four ranges")
}

func TestEmptyFileAndStrictMode(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "empty.txt", nil)
	srv, _ := fileServer(t, dir)
	dest := t.TempDir()
	rep, err := newP(newEngine()).Fetch(t.Context(), srv.URL+"/empty.txt", dest)
	require.NoError(t, err)
	require.Len(t, rep.Files, 1)
	assert.Equal(t, map[string][]byte{"empty.txt": {}}, readDest(t, dest))

	_, err = newP(newEngine(engine.WithVerify(engine.VerifyStrict))).Fetch(t.Context(), srv.URL+"/empty.txt", t.TempDir())
	assert.ErrorContains(t, err, "append #sha256=HEX to the URL")
}

func TestClientPoolAndProxy(t *testing.T) {
	p := newP(newEngine(engine.WithConcurrency(48)))
	tr, ok := p.client.Transport.(*http.Transport)
	require.True(t, ok)
	assert.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 48)
	assert.NotNil(t, tr.Proxy, "HTTP(S)_PROXY and NO_PROXY are honoured")
	assert.True(t, tr.DisableCompression)
}

func TestInterruptedDownloadResumes(t *testing.T) {
	dir := t.TempDir()
	body := payload(6 * chunk)
	writeFile(t, dir, "m.bin", body)
	var failing atomic.Bool
	var gets atomic.Int32
	fs := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// GET 1 is the planner's range check, 2–4 the first three chunks.
		if r.Method == http.MethodGet && gets.Add(1) > 4 && failing.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		fs.ServeHTTP(w, r)
	}))
	defer srv.Close()
	dest := t.TempDir()
	p := newP(newEngine(engine.WithConcurrency(1)))

	failing.Store(true)
	_, err := p.Fetch(t.Context(), srv.URL+"/m.bin", dest)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 502")

	failing.Store(false)
	rep, err := p.Fetch(t.Context(), srv.URL+"/m.bin#sha256="+hexSHA(body), dest)
	require.NoError(t, err)
	assert.Equal(t, engine.StatusResumed, rep.Files[0].Status)
	assert.Equal(t, int64(3*chunk), rep.Files[0].Fetched, "only the missing half is fetched")
	assert.Equal(t, map[string][]byte{"m.bin": body}, readDest(t, dest))
}
