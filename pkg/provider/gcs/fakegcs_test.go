package gcs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

const mib = 1 << 20

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// planSettings are the tests' planning settings: four connections and quick
// retries that still honour a Retry-After of a second or two.
func planSettings() engine.PlanSettings {
	return engine.New(engine.WithConcurrency(4), engine.WithRetry(4, time.Millisecond, time.Second)).PlanSettings()
}

// emulated returns a provider pointed at the test's fake-gcs-server.
func emulated(g testenv.GCSServer) *Provider {
	return New(planSettings(), WithGetenv(envOf(g.Env()...)))
}

// seedModel writes a folder and what must not be fetched with it.
func seedModel(t *testing.T, g testenv.GCSServer, bucket string) map[string][]byte {
	want := map[string][]byte{
		"config.json":      []byte(`{"model":"tiny"}`),
		"sub/dir/w.bin":    testenv.Random(3*mib+123, 1),
		"empty.txt":        {},
		"part-a":           testenv.Random(mib, 2),
		"part-b":           testenv.Random(mib/2+7, 3),
		"composite.bin":    nil, // set below
		"deep/er/tok.json": []byte(`{"tok":1}`),
	}
	want["composite.bin"] = append(append([]byte{}, want["part-a"]...), want["part-b"]...)
	for rel, body := range want {
		if rel != "composite.bin" {
			g.Put(t, bucket, "model/"+rel, body)
		}
	}
	g.Compose(t, bucket, "model/composite.bin", "model/part-a", "model/part-b")
	g.Put(t, bucket, "model/sub/", nil) // folder marker
	g.Put(t, bucket, "model-hf/not-me.bin", []byte("sibling prefix"))
	g.Put(t, bucket, "modelx", []byte("string prefix"))
	return want
}

func paths(p *engine.Plan) []string {
	var out []string
	for _, f := range p.Files {
		out = append(out, f.Path)
	}
	sort.Strings(out)
	return out
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func fetch(t *testing.T, p *engine.Plan) (string, *engine.Report) {
	t.Helper()
	dest := t.TempDir()
	eng := engine.New(engine.WithChunkSize(mib), engine.WithConcurrency(4), engine.WithRetry(2, 0, 0))
	rep, err := eng.Run(context.Background(), dest, p)
	require.NoError(t, err)
	return dest, rep
}

func TestFolderIsAFolderNotAStringPrefix(t *testing.T) {
	g := testenv.FakeGCS(t)
	bucket := g.Bucket(t)
	want := seedModel(t, g, bucket)

	for _, uri := range []string{"gs://" + bucket + "/model", "gs://" + bucket + "/model/", "gs://" + bucket + "//model"} {
		plan, err := emulated(g).Plan(context.Background(), uri)
		require.NoError(t, err, uri)
		assert.Equal(t, keys(want), paths(plan), uri)
		assert.Equal(t, "gs://"+bucket+"/"+strings.TrimLeft(strings.TrimPrefix(uri, "gs://"+bucket), "/"), plan.Source)
	}

	plan, err := emulated(g).Plan(context.Background(), "gs://"+bucket+"/model")
	require.NoError(t, err)
	for _, f := range plan.Files {
		assert.Contains(t, f.Identity, g.APIEndpoint(), f.Path)
		assert.Contains(t, f.Identity, "gs://"+bucket+"/model/"+f.Path+" generation=", f.Path)
		algs := map[checksum.Algorithm][]byte{}
		for _, v := range f.Expect {
			algs[v.Algorithm] = v.Sum
		}
		require.Contains(t, algs, checksum.CRC32C, "%s: every object has a CRC32C", f.Path)
		h := checksum.CRC32C.New()
		h.Write(want[f.Path])
		assert.Equal(t, h.Sum(nil), algs[checksum.CRC32C], f.Path)
		if md5, ok := algs[checksum.MD5]; ok {
			// GCS gives composite objects no MD5 (fake-gcs-server computes
			// one anyway; see TestCompositeObjectsOfferNoMD5).
			h := checksum.MD5.New()
			h.Write(want[f.Path])
			assert.Equal(t, h.Sum(nil), md5, f.Path)
		} else {
			assert.Equal(t, "composite.bin", f.Path, "only composite objects lack an MD5")
		}
		assert.Equal(t, int64(len(want[f.Path])), f.Size, f.Path)
		assert.False(t, f.ModTime.IsZero(), f.Path)
	}

	dest, rep := fetch(t, plan)
	for rel, body := range want {
		got, err := os.ReadFile(filepath.Join(dest, rel))
		require.NoError(t, err, rel)
		assert.True(t, bytes.Equal(body, got), "%s differs", rel)
	}
	for _, r := range rep.Files {
		assert.Equal(t, "crc32c", r.Verified, r.Path)
	}
	assert.NoFileExists(t, filepath.Join(dest, "not-me.bin"))
}

func TestExactObjectAndWholeBucket(t *testing.T) {
	g := testenv.FakeGCS(t)
	bucket := g.Bucket(t)
	want := seedModel(t, g, bucket)

	plan, err := emulated(g).Plan(context.Background(), "gs://"+bucket+"/model/sub/dir/w.bin")
	require.NoError(t, err)
	require.Len(t, plan.Files, 1)
	assert.Equal(t, "w.bin", plan.Files[0].Path)
	assert.True(t, plan.Files[0].Unfiltered)
	dest, _ := fetch(t, plan)
	got, err := os.ReadFile(filepath.Join(dest, "w.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want["sub/dir/w.bin"], got))

	// "modelx" is an object: it is that object, not the folder modelx/.
	plan, err = emulated(g).Plan(context.Background(), "gs://"+bucket+"/modelx")
	require.NoError(t, err)
	assert.Equal(t, []string{"modelx"}, paths(plan))

	plan, err = emulated(g).Plan(context.Background(), "gs://"+bucket)
	require.NoError(t, err)
	all := paths(plan)
	assert.Contains(t, all, "model-hf/not-me.bin")
	assert.Contains(t, all, "model/config.json")
	assert.NotContains(t, all, "model/sub/", "folder markers are skipped")
}

func TestLoaderReadsExactRanges(t *testing.T) {
	g := testenv.FakeGCS(t)
	bucket := g.Bucket(t)
	body := testenv.Random(2*mib+5, 9)
	g.Put(t, bucket, "m/blob.bin", body)
	plan, err := emulated(g).Plan(context.Background(), "gs://"+bucket+"/m/blob.bin")
	require.NoError(t, err)
	src := plan.Files[0].Source
	for _, r := range [][2]int64{{0, 10}, {mib, mib}, {2*mib + 4, 1}, {0, 2*mib + 5}, {7, 0}} {
		var got []byte
		err := src.Load(context.Background(), r[1], r[0], func(rd io.Reader) error {
			var err error
			got, err = io.ReadAll(rd)
			return err
		})
		require.NoError(t, err, "range %v", r)
		assert.True(t, bytes.Equal(body[r[0]:r[0]+r[1]], got), "range %v", r)
	}
	err = src.Load(context.Background(), 10, 2*mib, func(io.Reader) error { return nil })
	assert.True(t, engine.IsPermanent(err), "a range past the end is a bug, not a blip: %v", err)
}

func TestChangedObjectFailsPermanently(t *testing.T) {
	g := testenv.FakeGCS(t)
	bucket := g.Bucket(t)
	old := testenv.Random(mib, 1)
	g.Put(t, bucket, "m/w.bin", old)
	plan, err := emulated(g).Plan(context.Background(), "gs://"+bucket+"/m")
	require.NoError(t, err)
	src := plan.Files[0].Source
	require.NoError(t, src.Load(context.Background(), 10, 0, func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }))

	g.Put(t, bucket, "m/w.bin", testenv.Random(mib, 2)) // a new generation, the planned one is gone
	called := false
	err = src.Load(context.Background(), 10, 10, func(r io.Reader) error { called = true; return nil })
	require.Error(t, err)
	assert.False(t, called, "no byte of another generation reaches the engine")
	assert.True(t, engine.IsPermanent(err), "%v", err)
	assert.Contains(t, err.Error(), "changed during download")
	assert.Contains(t, err.Error(), "gs://"+bucket+"/m/w.bin")
}

func TestMissingBucketAndNothingFound(t *testing.T) {
	g := testenv.FakeGCS(t)
	bucket := g.Bucket(t)
	g.Put(t, bucket, "model/a", []byte("a"))

	_, err := emulated(g).Plan(context.Background(), "gs://si-no-such-bucket-4711/model")
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "bucket si-no-such-bucket-4711 does not exist")
	assert.NotContains(t, err.Error(), "\n")

	_, err = emulated(g).Plan(context.Background(), "gs://"+bucket+"/mod")
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "no objects found at gs://"+bucket+"/mod")
}

// serviceAccountKey writes a service-account key file whose token endpoint
// is tokenURL.
func serviceAccountKey(t *testing.T, tokenURL string) (path string, privatePEM string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	privatePEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	b, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "p", "private_key_id": "kid1", "private_key": privatePEM,
		"client_email": "si@p.iam.gserviceaccount.com", "client_id": "1", "token_uri": tokenURL,
	})
	require.NoError(t, err)
	path = filepath.Join(t.TempDir(), "sa.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path, privatePEM
}

func TestWrongCredentialsAreOneLineWithoutSecrets(t *testing.T) {
	g := testenv.FakeGCS(t)
	bucket := g.Bucket(t)
	g.Put(t, bucket, "model/a", []byte("a"))
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	}))
	defer tokens.Close()
	keyFile, private := serviceAccountKey(t, tokens.URL)

	// The API endpoint is given explicitly: STORAGE_EMULATOR_HOST would turn
	// authentication off.
	p := New(planSettings(), WithGetenv(envOf("GOOGLE_APPLICATION_CREDENTIALS="+keyFile)), WithEndpoint(g.APIEndpoint()))
	_, err := p.Plan(context.Background(), "gs://"+bucket+"/model")
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err), "%v", err)
	assert.Contains(t, err.Error(), "cannot get a Google access token")
	assert.Contains(t, err.Error(), keyFile)
	assert.NotContains(t, err.Error(), "\n")
	assert.NotContains(t, err.Error(), strings.Split(private, "\n")[1], "no key material in errors")

	// An unusable key file falls back to anonymous access, as KServe does,
	// and says so.
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"type":"nonsense"}`), 0o600))
	p = New(planSettings(), WithGetenv(envOf("GOOGLE_APPLICATION_CREDENTIALS="+bad)), WithEndpoint(g.APIEndpoint()))
	c, err := p.newClient(context.Background())
	require.NoError(t, err)
	assert.True(t, c.anonymous)
	assert.Contains(t, c.credSource, "unusable")
}

// Object names are escaped whole in request paths ('/' included), so names
// with spaces, '+', '%', '?' or '#' are read as they are.
func TestOddObjectNames(t *testing.T) {
	g := testenv.FakeGCS(t)
	bucket := g.Bucket(t)
	names := []string{"m/a+b c.bin", "m/100%.txt", "m/q?x#y.json", "m/ünï.txt"}
	for i, n := range names {
		g.Put(t, bucket, n, testenv.Random(1000+i, int64(i)))
	}
	plan, err := emulated(g).Plan(context.Background(), "gs://"+bucket+"/m")
	require.NoError(t, err)
	assert.Equal(t, []string{"100%.txt", "a+b c.bin", "q?x#y.json", "ünï.txt"}, paths(plan))
	dest, _ := fetch(t, plan)
	for i, n := range names {
		got, err := os.ReadFile(filepath.Join(dest, strings.TrimPrefix(n, "m/")))
		require.NoError(t, err, n)
		assert.True(t, bytes.Equal(testenv.Random(1000+i, int64(i)), got), n)
	}
	plan, err = emulated(g).Plan(context.Background(), "gs://"+bucket+"/m/q?x#y.json")
	require.NoError(t, err)
	assert.Equal(t, []string{"q?x#y.json"}, paths(plan))
}
