package httpsrc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// chunk is the engine chunk size in these tests: files of a few chunks
// exercise parallel ranges without moving much data.
const chunk = 64 << 10

// served records the requests a test server received.
type served struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *served) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Clone(r.Context()))
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// count returns how many requests of method had (or lacked) a Range header.
func (s *served) count(method string, ranged bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.reqs {
		if r.Method == method && (r.Header.Get("Range") != "") == ranged {
			n++
		}
	}
	return n
}

// fileServer serves dir with http.FileServer (ranges, Last-Modified).
func fileServer(t *testing.T, dir string) (*httptest.Server, *served) {
	t.Helper()
	s := &served{}
	srv := httptest.NewServer(s.wrap(http.FileServer(http.Dir(dir))))
	t.Cleanup(srv.Close)
	return srv, s
}

// noRangeServer answers every GET with the whole body and never advertises
// ranges, like a naive server or an application handler.
func noRangeServer(t *testing.T, body []byte) (*httptest.Server, *served) {
	t.Helper()
	s := &served{}
	srv := httptest.NewServer(s.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", itoa(len(body)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})))
	t.Cleanup(srv.Close)
	return srv, s
}

func itoa(n int) string { return strconv.Itoa(n) }

// payload returns n bytes that differ at every offset modulo 251.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func newEngine(opts ...engine.Option) *engine.Engine {
	return engine.New(append([]engine.Option{engine.WithConcurrency(4), engine.WithChunkSize(chunk),
		engine.WithRetry(2, time.Millisecond, time.Millisecond)}, opts...)...)
}

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
}

// readDest returns every regular file under dest by relative path and fails
// when the engine's state folder was left behind.
func readDest(t *testing.T, dest string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	require.NoError(t, filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dest, p)
		require.NotEqual(t, engine.StateDir, rel, "state folder left in DEST")
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			out[filepath.ToSlash(rel)] = b
		}
		return nil
	}))
	return out
}

// testProvider is a provider with the engine whose settings it plans with.
type testProvider struct {
	*Provider
	eng *engine.Engine
}

func newP(eng *engine.Engine, opts ...Option) testProvider {
	return testProvider{New(eng.PlanSettings(), opts...), eng}
}

// Fetch plans src and runs the plan into dest, as the command does.
func (p testProvider) Fetch(ctx context.Context, src, dest string) (*engine.Report, error) {
	plan, err := p.Plan(ctx, src)
	if err != nil {
		return nil, err
	}
	return p.eng.Run(ctx, dest, plan)
}
