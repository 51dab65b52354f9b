package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// testRegistry is go-containerregistry's in-memory registry behind an
// optional middleware (corruption, counting, auth).
type testRegistry struct {
	host string
	srv  *httptest.Server

	mu    sync.Mutex
	gets  map[string]int // blob digest → GET requests
	wrap  func(http.ResponseWriter, *http.Request, http.Handler)
	inner http.Handler

	base       string // http://host:port
	user, pass string // basic auth for pushes to a real registry
}

func newRegistry(t testing.TB) *testRegistry {
	r := &testRegistry{gets: map[string]int{}, inner: registry.New(registry.Logger(nopLogger()))}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.base = r.srv.URL
	r.host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// realRegistry pushes to a registry started by hack/registry.sh.
func realRegistry(host, user, pass string) *testRegistry {
	return &testRegistry{host: host, base: "http://" + host, user: user, pass: pass, gets: map[string]int{}}
}

func (r *testRegistry) do(t testing.TB, method, url, contentType string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

func (r *testRegistry) serve(w http.ResponseWriter, req *http.Request) {
	if i := strings.Index(req.URL.Path, "/blobs/sha256:"); i >= 0 && req.Method == http.MethodGet {
		r.mu.Lock()
		r.gets[req.URL.Path[i+len("/blobs/"):]]++
		r.mu.Unlock()
	}
	r.mu.Lock()
	wrap := r.wrap
	r.mu.Unlock()
	if wrap != nil {
		wrap(w, req, r.inner)
		return
	}
	r.inner.ServeHTTP(w, req)
}

func (r *testRegistry) blobGets(digest string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[digest]
}

func (r *testRegistry) setWrap(f func(http.ResponseWriter, *http.Request, http.Handler)) {
	r.mu.Lock()
	r.wrap = f
	r.mu.Unlock()
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// blob uploads data (monolithic POST) and returns its descriptor.
func (r *testRegistry) blob(t testing.TB, repo, mediaType string, data []byte, ann map[string]string) descriptor {
	t.Helper()
	d := digestOf(data)
	resp := r.do(t, http.MethodPost, fmt.Sprintf("%s/v2/%s/blobs/uploads/?digest=%s", r.base, repo, d), "application/octet-stream", data)
	if resp.StatusCode == http.StatusAccepted {
		// No monolithic POST (CNCF distribution): PUT the bytes to the session.
		loc, err := resp.Location()
		require.NoError(t, err)
		q := loc.Query()
		q.Set("digest", d)
		loc.RawQuery = q.Encode()
		resp = r.do(t, http.MethodPut, loc.String(), "application/octet-stream", data)
	}
	require.Equal(t, http.StatusCreated, resp.StatusCode, "upload blob")
	return descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data)), Annotations: ann}
}

// put uploads a manifest or index under tag and returns its digest.
func (r *testRegistry) put(t testing.TB, repo, tag, mediaType string, v any) string {
	t.Helper()
	body, err := json.Marshal(v)
	require.NoError(t, err)
	resp := r.do(t, http.MethodPut, fmt.Sprintf("%s/v2/%s/manifests/%s", r.base, repo, tag), mediaType, body)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "put manifest")
	return digestOf(body)
}

type jsonManifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	ArtifactType  string       `json:"artifactType,omitempty"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

const (
	mtManifest  = "application/vnd.oci.image.manifest.v1+json"
	mtIndex     = "application/vnd.oci.image.index.v1+json"
	mtLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	mtLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
	mtLayerTar  = "application/vnd.oci.image.layer.v1.tar"
)

// pushImage pushes an image whose layers are the given blobs.
func (r *testRegistry) pushImage(t testing.TB, repo, tag, configType string, layers ...descriptor) string {
	t.Helper()
	cfg := r.blob(t, repo, configType, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`), nil)
	return r.put(t, repo, tag, mtManifest, jsonManifest{SchemaVersion: 2, MediaType: mtManifest, Config: cfg, Layers: layers})
}

// tent is one tar entry.
type tent struct {
	name, body, link string
	typ              byte
	mode             int64
}

func f(name, body string) tent     { return tent{name: name, body: body, typ: tar.TypeReg, mode: 0o644} }
func d(name string) tent           { return tent{name: name, typ: tar.TypeDir, mode: 0o755} }
func sym(name, target string) tent { return tent{name: name, link: target, typ: tar.TypeSymlink} }

var mtime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func tarOf(t testing.TB, ents ...tent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, ModTime: mtime, Uid: 1001, Gid: 0}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write([]byte(e.body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func zst(t testing.TB, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	return enc.EncodeAll(b, nil)
}

// testEngine reads small ranges, so multi-range code paths run on small
// test blobs.
func testEngine(t testing.TB, opts ...engine.Option) *engine.Engine {
	return engine.New(append([]engine.Option{engine.WithConcurrency(4), engine.WithChunkSize(1 << 10),
		engine.WithRetry(2, time.Millisecond, 5*time.Millisecond), engine.WithLogger(zaptest.NewLogger(t))}, opts...)...)
}

// testProvider is a provider with the engine whose settings it plans with.
type testProvider struct {
	*Provider
	eng *engine.Engine
}

func newWith(eng *engine.Engine, opts ...Option) testProvider {
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

// newProvider returns a provider with an empty environment.
func newProvider(t testing.TB, env map[string]string, opts ...Option) testProvider {
	getenv := func(k string) string { return env[k] }
	return newWith(testEngine(t), append([]Option{WithGetenv(getenv)}, opts...)...)
}

func fetch(t testing.TB, p testProvider, src string) (string, *engine.Report, error) {
	dest := filepath.Join(t.TempDir(), "models")
	rep, err := p.Fetch(context.Background(), src, dest)
	return dest, rep, err
}

// tree lists dest as sorted "f path body" / "d path" / "l path -> target"
// lines, the engine's state folder included (it must be gone after success).
func tree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case rel == ".":
		case de.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, "l "+rel+" -> "+target)
		case de.IsDir():
			out = append(out, "d "+rel)
		default:
			b, _ := os.ReadFile(p)
			out = append(out, "f "+rel+" "+string(b))
		}
		return nil
	})
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	sort.Strings(out)
	return out
}
