package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/faultproxy"
	"github.com/storage-initializer/storage-initializer/internal/hubtest"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// Acceptance tests of the one transfer path (issue 10), through the built
// binary: the request bound measured at the server (this file), OCI staging
// failed at each phase then rerun (e2e_stage_test.go), the stalled single
// stream and Retry-After in both forms for every provider
// (e2e_retryafter_test.go). Helpers are prefixed acc.

// accFront serves target through a fault proxy (cfg) measured by g, with
// the wrappers applied outermost last, and returns the proxy and its URL.
func accFront(t *testing.T, target string, g *faultproxy.Gauge, cfg faultproxy.Config, wrap ...func(http.Handler) http.Handler) (*faultproxy.Proxy, string) {
	t.Helper()
	p, err := faultproxy.New(target, cfg)
	require.NoError(t, err)
	var h http.Handler = p
	if g != nil {
		h = g.Wrap(h)
	}
	for _, w := range wrap {
		h = w(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		p.Release()
		srv.Close()
		p.Close()
	})
	return p, srv.URL
}

func accHost(u string) string {
	return strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
}

// accS3Env is the KServe-style environment for MinIO reached at endpoint
// (a proxy in front of it).
func accS3Env(m testenv.MinIOServer, endpoint string) []string {
	return []string{"S3_ENDPOINT=" + accHost(endpoint), "S3_USE_HTTPS=0",
		"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
}

// accLayer is one blob of an image pushed with accPush.
type accLayer struct {
	MediaType   string
	Data        []byte
	Annotations map[string]string
}

func (l accLayer) digest() string { return fmt.Sprintf("sha256:%x", sha256.Sum256(l.Data)) }

const (
	accMTManifest  = "application/vnd.oci.image.manifest.v1+json"
	accMTConfig    = "application/vnd.oci.image.config.v1+json"
	accMTLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	accMTModelPack = "application/vnd.cncf.model.manifest.v1+json"
	accMTMPConfig  = "application/vnd.cncf.model.config.v1+json"
	accMTMPRaw     = "application/vnd.cncf.model.weight.v1.raw"
)

// accPush pushes blobs and a manifest over the registry API (host is the
// registry itself, not a proxy) and returns the layers' digests.
func accPush(t *testing.T, host, repo, tag, artifactType string, config accLayer, layers ...accLayer) []string {
	t.Helper()
	put := func(data []byte) {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
		resp, err := http.Post(fmt.Sprintf("http://%s/v2/%s/blobs/uploads/", host, repo), "application/octet-stream", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		loc, err := resp.Location()
		require.NoError(t, err)
		q := loc.Query()
		q.Set("digest", d)
		loc.RawQuery = q.Encode()
		req, err := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(data))
		require.NoError(t, err)
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	put(config.Data)
	m := map[string]any{"schemaVersion": 2, "mediaType": accMTManifest,
		"config": desc{MediaType: config.MediaType, Digest: config.digest(), Size: int64(len(config.Data))}}
	if artifactType != "" {
		m["artifactType"] = artifactType
	}
	var ls []desc
	var digests []string
	for _, l := range layers {
		put(l.Data)
		ls = append(ls, desc{l.MediaType, l.digest(), int64(len(l.Data)), l.Annotations})
		digests = append(digests, l.digest())
	}
	m["layers"] = ls
	body, err := json.Marshal(m)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, repo, tag), bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", accMTManifest)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	return digests
}

func accRepo(t *testing.T) string {
	return "si-acc/" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-", "#", "-").Replace(t.Name()))
}

// accTarGz is a gzip tar of files (sorted by name), with the folders the
// names imply.
func accTarGz(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	dirs := map[string]bool{}
	for _, n := range names {
		for d := filepath.Dir(n); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	dl := make([]string, 0, len(dirs))
	for d := range dirs {
		dl = append(dl, d)
	}
	sort.Strings(dl)
	mt := time.Unix(1700000000, 0)
	for _, d := range dl {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt}))
	}
	for _, n := range names {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n])), ModTime: mt}))
		_, err := tw.Write(files[n])
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// accModelcar builds a modelcar's gzip tar layers: layer i holds
// models/layer-i/w.bin (size bytes, incompressible) and models/config.json,
// which later layers overwrite (the merge must keep the last). It returns
// the layers and the model as DEST must hold it.
func accModelcar(t *testing.T, seed int64, size int, layers int) ([]accLayer, map[string][]byte) {
	t.Helper()
	want := map[string][]byte{}
	var out []accLayer
	for i := range layers {
		w := testenv.Random(size, seed*100+int64(i))
		cfg := []byte(fmt.Sprintf(`{"layer":%d,"seed":%d}`, i, seed))
		name := fmt.Sprintf("layer-%d/w.bin", i)
		out = append(out, accLayer{MediaType: accMTLayerGzip, Data: accTarGz(t, map[string][]byte{
			"models/" + name: w, "models/config.json": cfg})})
		want[name], want["config.json"] = w, cfg
	}
	return out, want
}

func accImageConfig() accLayer {
	return accLayer{MediaType: accMTConfig, Data: []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`)}
}

// accTree lists everything under dest: "f PATH" for a regular file (and
// its bytes in files), "d PATH" for a folder, "? PATH" for anything else.
func accTree(t *testing.T, dest string) (entries []string, files map[string][]byte) {
	t.Helper()
	files = map[string][]byte{}
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		switch {
		case d.IsDir():
			entries = append(entries, "d "+rel)
		case d.Type().IsRegular():
			entries = append(entries, "f "+rel)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files[rel] = b
		default:
			entries = append(entries, "? "+rel)
		}
		return nil
	})
	if os.IsNotExist(err) {
		return nil, files
	}
	require.NoError(t, err)
	sort.Strings(entries)
	return entries, files
}

// accWantEntries is what accTree lists for exactly the files of want.
func accWantEntries(want map[string][]byte) []string {
	set := map[string]bool{}
	for p := range want {
		set["f "+p] = true
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			set["d "+filepath.ToSlash(d)] = true
		}
	}
	out := make([]string, 0, len(set))
	for e := range set {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// accExactly asserts DEST holds exactly want: the same entries (no state
// folder, no blob folder, no stray file or empty folder) and the same bytes.
func accExactly(t *testing.T, dest string, want map[string][]byte, msg ...any) bool {
	t.Helper()
	entries, files := accTree(t, dest)
	ok := assert.Equal(t, accWantEntries(want), entries, msg...)
	for p, b := range want {
		if !bytes.Equal(b, files[p]) {
			ok = assert.Fail(t, "file differs", "%s: %d bytes, want %d (%v)", p, len(files[p]), len(b), fmt.Sprint(msg...))
		}
	}
	return ok
}

// accBoundCase is one source whose requests a gauge measures.
type accBoundCase struct {
	name  string
	env   []string
	args  []string // SRC DEST pairs with DEST as "{dest}" (several allowed: {dest0}, {dest1})
	want  []map[string][]byte
	gauge *faultproxy.Gauge
}

// runBound runs c with --concurrency n, with or without the node cache,
// and checks the server never saw more than n requests at once, and (the
// test can fail) that it saw n.
func runBound(t *testing.T, c accBoundCase, n int, cache bool) {
	t.Helper()
	dests := make([]string, len(c.want))
	args := []string{"--concurrency", strconv.Itoa(n), "--chunk-size", "256KiB", "--read-timeout", "20s"}
	if cache {
		args = append(args, "--cache-dir", t.TempDir())
	}
	for _, a := range c.args {
		for i := range dests {
			if dests[i] == "" {
				dests[i] = filepath.Join(t.TempDir(), "dest")
			}
			a = strings.ReplaceAll(a, fmt.Sprintf("{dest%d}", i), dests[i])
		}
		args = append(args, a)
	}
	c.gauge.Reset()
	stdout, stderr, code := runSI(t, c.env, args...)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	for i, d := range dests {
		accExactly(t, d, c.want[i], c.name)
	}
	peak := c.gauge.Max()
	t.Logf("%s --concurrency %d cache=%v: %d requests, at most %d in flight", c.name, n, cache, c.gauge.Total(), peak)
	assert.LessOrEqual(t, peak, int64(n), "%s: more requests in flight at the server than --concurrency %d (cache=%v); requests: %v",
		c.name, n, cache, c.gauge.Seen())
	assert.Equal(t, int64(n), peak, "%s: the bound %d was never reached (cache=%v): the model is too small for the test to fail", c.name, n, cache)
	assert.Zero(t, c.gauge.Current(), "requests still in flight after the run")
}

func runBoundMatrix(t *testing.T, c accBoundCase) {
	for _, n := range []int{3, 1} {
		for _, cache := range []bool{false, true} {
			t.Run(fmt.Sprintf("n%d-cache-%v", n, cache), func(t *testing.T) { runBound(t, c, n, cache) })
		}
	}
}

// accDelay holds each request a little so requests issued together overlap
// at the server on a fast loopback.
const accDelay = 15 * time.Millisecond

func TestE2EBoundS3(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	want := map[string][]byte{
		"a.bin": testenv.Random(2<<20+17, 1), "b.bin": testenv.Random(1<<20, 2),
		"sub/c.bin": testenv.Random(3<<20, 3), "config.json": []byte(`{"m":1}`),
	}
	for k, v := range want {
		m.Put(t, bucket, "model/"+k, v, "CRC64NVME")
	}
	g := &faultproxy.Gauge{Delay: accDelay}
	_, url := accFront(t, m.Endpoint, g, faultproxy.Config{})
	runBoundMatrix(t, accBoundCase{name: "s3", env: accS3Env(m, url), gauge: g,
		args: []string{"s3://" + bucket + "/model", "{dest0}"}, want: []map[string][]byte{want}})
}

func TestE2EBoundOCIModelcar(t *testing.T) {
	r := testenv.Registry(t)
	layers, want := accModelcar(t, 1, 1<<20+5000, 3)
	accPush(t, r.Plain, accRepo(t), "v1", "", accImageConfig(), layers...)
	g := &faultproxy.Gauge{Delay: accDelay}
	_, url := accFront(t, "http://"+r.Plain, g, faultproxy.Config{})
	runBoundMatrix(t, accBoundCase{name: "oci modelcar", gauge: g,
		args: []string{"oci://" + accHost(url) + "/" + accRepo(t) + ":v1", "{dest0}"}, want: []map[string][]byte{want}})
}

func TestE2EBoundOCIModelPack(t *testing.T) {
	r := testenv.Registry(t)
	w1, w2 := testenv.Random(2<<20+3, 11), testenv.Random(1<<20+9, 12)
	cfg := accLayer{MediaType: accMTMPConfig, Data: []byte(`{"descriptor":{"name":"m"}}`)}
	accPush(t, r.Plain, accRepo(t), "v1", accMTModelPack, cfg,
		accLayer{MediaType: accMTMPRaw, Data: w1, Annotations: map[string]string{"org.cncf.model.filepath": "model-1.safetensors"}},
		accLayer{MediaType: accMTMPRaw, Data: w2, Annotations: map[string]string{"org.cncf.model.filepath": "sub/model-2.safetensors"}},
	)
	want := map[string][]byte{"model-1.safetensors": w1, "sub/model-2.safetensors": w2}
	g := &faultproxy.Gauge{Delay: accDelay}
	_, url := accFront(t, "http://"+r.Plain, g, faultproxy.Config{})
	runBoundMatrix(t, accBoundCase{name: "oci modelpack", gauge: g,
		args: []string{"oci://" + accHost(url) + "/" + accRepo(t) + ":v1", "{dest0}"}, want: []map[string][]byte{want}})
}

// accFileServer serves files from memory with http.ServeContent (ranges,
// ETag, Content-Length).
func accFileServer(files map[string][]byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%x"`, sha256.Sum256(b)))
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})
}

func TestE2EBoundHTTP(t *testing.T) {
	weights := testenv.Random(3<<20+7, 21)
	inner := map[string][]byte{"config.json": []byte(`{}`), "sub/w.bin": testenv.Random(2<<20, 22)}
	g := &faultproxy.Gauge{Delay: accDelay}
	srv := httptest.NewServer(g.Wrap(accFileServer(map[string][]byte{"/m/weights.bin": weights, "/m/model.tar.gz": accTarGz(t, inner)})))
	t.Cleanup(srv.Close)
	// Two pairs in one run: the bound is the run's, not each pair's.
	runBoundMatrix(t, accBoundCase{name: "http file and archive", gauge: g,
		args: []string{srv.URL + "/m/weights.bin", "{dest0}", srv.URL + "/m/model.tar.gz", "{dest1}"},
		want: []map[string][]byte{{"weights.bin": weights}, inner}})
}

// accRewriteLocation rewrites redirects to from so they go to to (the
// Hub's CDN redirects, sent through a measured proxy).
func accRewriteLocation(from, to string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(&locationWriter{ResponseWriter: w, from: from, to: to}, r)
		})
	}
}

type locationWriter struct {
	http.ResponseWriter
	from, to string
	wrote    bool
}

func (w *locationWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if loc := w.Header().Get("Location"); strings.HasPrefix(loc, w.from) {
			w.Header().Set("Location", w.to+strings.TrimPrefix(loc, w.from))
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *locationWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *locationWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestE2EBoundHF(t *testing.T) {
	h := hubtest.New(t)
	want := map[string][]byte{
		"config.json":          []byte(`{"architectures":["X"]}`),
		"model.safetensors":    testenv.Random(3<<20+1, 31),
		"sub/more.safetensors": testenv.Random(1<<20+2, 32),
	}
	h.Push("org/m", "main", want)
	g := &faultproxy.Gauge{Delay: accDelay}
	_, cdn := accFront(t, h.CDN.URL, g, faultproxy.Config{})
	_, api := accFront(t, h.API.URL, g, faultproxy.Config{}, accRewriteLocation(h.CDN.URL, cdn))
	runBoundMatrix(t, accBoundCase{name: "hf", gauge: g, env: []string{"HF_ENDPOINT=" + api},
		args: []string{"hf://org/m", "{dest0}"}, want: []map[string][]byte{want}})
}

// TestE2EBoundAcrossProviders runs an s3, an oci and an http pair in one
// invocation with one gauge across the three servers: the bound is the
// run's, so no pair's planning or data may add to another's requests.
func TestE2EBoundAcrossProviders(t *testing.T) {
	m := testenv.MinIO(t)
	r := testenv.Registry(t)
	g := &faultproxy.Gauge{Delay: accDelay}

	bucket := m.Bucket(t)
	s3Model := map[string][]byte{"a.bin": testenv.Random(1<<20+1, 61), "b/c.bin": testenv.Random(700_000, 62)}
	for k, v := range s3Model {
		m.Put(t, bucket, "model/"+k, v, "CRC64NVME")
	}
	_, s3URL := accFront(t, m.Endpoint, g, faultproxy.Config{})

	layers, ociModel := accModelcar(t, 6, 600_000, 2)
	accPush(t, r.Plain, accRepo(t), "v1", "", accImageConfig(), layers...)
	_, regURL := accFront(t, "http://"+r.Plain, g, faultproxy.Config{})

	weights := testenv.Random(1<<20+3, 63)
	srv := httptest.NewServer(g.Wrap(accFileServer(map[string][]byte{"/w/weights.bin": weights})))
	t.Cleanup(srv.Close)

	runBoundMatrix(t, accBoundCase{name: "s3 + oci + http in one run", gauge: g, env: accS3Env(m, s3URL),
		args: []string{
			"s3://" + bucket + "/model", "{dest0}",
			"oci://" + accHost(regURL) + "/" + accRepo(t) + ":v1", "{dest1}",
			srv.URL + "/w/weights.bin", "{dest2}",
		},
		want: []map[string][]byte{s3Model, ociModel, {"weights.bin": weights}}})
}
