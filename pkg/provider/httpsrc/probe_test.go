package httpsrc

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// rangedServer serves body with byte ranges and the given validators.
func rangedServer(t *testing.T, body []byte, etag string, modTime time.Time) (*httptest.Server, *served) {
	t.Helper()
	s := &served{}
	srv := httptest.NewServer(s.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		http.ServeContent(w, r, "m.bin", modTime, strings.NewReader(string(body)))
	})))
	t.Cleanup(srv.Close)
	return srv, s
}

func probeURL(t *testing.T, url string) remote {
	t.Helper()
	tg, err := parseTarget(url)
	require.NoError(t, err)
	r := &request{c: http.DefaultClient, t: tg}
	m, err := r.probe(t.Context())
	require.NoError(t, err)
	return m
}

func TestProbeRangesNeedAValidatorOrDigest(t *testing.T) {
	body := payload(4 * chunk)
	sum := "#sha256=" + hexSHA(body)
	lastMod := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name, etag, frag string
		modTime          time.Time
		ranges           bool
		why              string
	}{
		{name: "no validator", ranges: false, why: "neither ETag nor Last-Modified"},
		{name: "weak ETag only", etag: `W/"v1"`, ranges: false, why: "only a weak ETag"},
		{name: "strong ETag", etag: `"v1"`, ranges: true},
		{name: "Last-Modified", modTime: lastMod, ranges: true},
		{name: "no validator, #sha256", frag: sum, ranges: true},
		{name: "weak ETag, #sha256", etag: `W/"v1"`, frag: sum, ranges: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := rangedServer(t, body, tc.etag, tc.modTime)
			m := probeURL(t, srv.URL+"/m.bin"+tc.frag)
			assert.Equal(t, int64(len(body)), m.size)
			assert.Equal(t, tc.ranges, m.ranges, "ranges")
			assert.Equal(t, tc.ranges, m.resumable(), "resumable")
			if tc.why == "" {
				assert.Empty(t, m.singleWhy)
			} else {
				assert.Contains(t, m.singleWhy, tc.why)
				assert.Contains(t, m.singleWhy, "#sha256=HEX")
			}
			logged := map[string]bool{}
			for _, f := range m.logFields() {
				logged[f.Key] = true
			}
			assert.Equal(t, tc.why != "", logged["single_stream"], "the log says why ranges are off")
		})
	}
}

func TestLoaderRefusesPartsWithoutValidator(t *testing.T) {
	body := payload(4 * chunk)
	srv, s := rangedServer(t, body, "", time.Time{})
	tg, err := parseTarget(srv.URL + "/m.bin")
	require.NoError(t, err)
	r := &request{c: http.DefaultClient, t: tg}
	m, err := r.probe(t.Context())
	require.NoError(t, err)
	l := &loader{r: r, m: m}
	err = l.Load(t.Context(), chunk, chunk, func(io.Reader) error { return nil })
	require.ErrorIs(t, err, errRangesUnsafe)
	assert.True(t, engine.IsPermanent(err))
	assert.Zero(t, s.count(http.MethodGet, true), "no ranged GET sent")
	// The whole file, as a stream (length -1), is fine.
	var got []byte
	require.NoError(t, l.Load(context.Background(), -1, 0, func(rd io.Reader) error {
		got, err = io.ReadAll(rd)
		return err
	}))
	assert.Equal(t, body, got)
}

// TestNoValidatorDownloadsInOneStream: through the provider, a server that
// serves ranges but no validator is read with one whole GET.
func TestNoValidatorDownloadsInOneStream(t *testing.T) {
	body := payload(4 * chunk)
	srv, s := rangedServer(t, body, "", time.Time{})
	dest := t.TempDir()
	_, err := newP(newEngine()).Fetch(t.Context(), srv.URL+"/m.bin", dest)
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"m.bin": body}, readDest(t, dest))
	assert.Zero(t, s.count(http.MethodGet, true), "no ranged GET")
	assert.Equal(t, 1, s.count(http.MethodGet, false), "one whole GET")
}

func TestProbeRefusesAbsurdSize(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Range", "bytes 0-0/4611686018427387904")
		w.WriteHeader(http.StatusPartialContent)
		_, _ = w.Write([]byte("x"))
	}))
	t.Cleanup(srv.Close)
	tg, err := parseTarget(srv.URL + "/m.bin")
	require.NoError(t, err)
	_, err = (&request{c: http.DefaultClient, t: tg}).probe(t.Context())
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "announces 4611686018427387904 bytes")
}
