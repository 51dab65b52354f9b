package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
)

// GCSServer is a running fake-gcs-server started by hack/fakegcs.sh.
type GCSServer struct {
	Endpoint string // http://127.0.0.1:PORT
}

// FakeGCS returns the server named by SI_FAKEGCS_ENDPOINT. Without it the
// test is skipped, or fails when SI_REQUIRE_SERVERS=1 (CI must not pass by
// skipping).
func FakeGCS(t testing.TB) GCSServer {
	t.Helper()
	g := GCSServer{Endpoint: os.Getenv("SI_FAKEGCS_ENDPOINT")}
	if g.Endpoint == "" {
		if os.Getenv("SI_REQUIRE_SERVERS") == "1" {
			t.Fatal("SI_FAKEGCS_ENDPOINT not set but SI_REQUIRE_SERVERS=1: start it with hack/fakegcs.sh start DIR and source DIR/fakegcs.env")
		}
		t.Skip("no fake-gcs-server (SI_FAKEGCS_ENDPOINT unset): run make test")
	}
	return g
}

// Host is the endpoint without scheme, as STORAGE_EMULATOR_HOST wants it.
func (g GCSServer) Host() string { return strings.TrimPrefix(g.Endpoint, "http://") }

// APIEndpoint is the JSON API base URL.
func (g GCSServer) APIEndpoint() string { return g.Endpoint + "/storage/v1/" }

// Env is what points a client at the emulator. GCE_METADATA_HOST keeps a
// credential probe (should anything look for one) on loopback.
func (g GCSServer) Env() []string {
	return []string{"STORAGE_EMULATOR_HOST=" + g.Host(), "GCE_METADATA_HOST=127.0.0.1:1"}
}

// Client returns an SDK client for seeding and inspecting buckets,
// configured explicitly so the machine's environment cannot change it.
func (g GCSServer) Client(t testing.TB) *storage.Client {
	t.Helper()
	c, err := storage.NewClient(context.Background(),
		option.WithEndpoint(g.APIEndpoint()), option.WithoutAuthentication(),
		option.WithHTTPClient(&http.Client{Transport: &http.Transport{Proxy: nil}}))
	if err != nil {
		t.Fatalf("gcs client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Bucket creates an empty bucket unique to this test and removes it (with
// every object in it) when the test ends.
func (g GCSServer) Bucket(t testing.TB) string {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	base := strings.Trim(nonBucketChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	name := strings.Trim("si-"+base, "-") + "-" + hex.EncodeToString(rnd[:])
	c := g.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Bucket(name).Create(ctx, "test-project", nil); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	t.Cleanup(func() { g.removeBucket(t, c, name) })
	return name
}

func (g GCSServer) removeBucket(t testing.TB, c *storage.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	it := c.Bucket(name).Objects(ctx, &storage.Query{Versions: true})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			t.Logf("cleanup: list %s: %v", name, err)
			return
		}
		_ = c.Bucket(name).Object(a.Name).Generation(a.Generation).Delete(ctx)
	}
	if err := c.Bucket(name).Delete(ctx); err != nil {
		t.Logf("cleanup: delete bucket %s: %v", name, err)
	}
}

// Put uploads body as one object and returns its attributes (generation,
// CRC32C, MD5).
func (g GCSServer) Put(t testing.TB, bucket, name string, body []byte) *storage.ObjectAttrs {
	t.Helper()
	ctx := context.Background()
	w := g.Client(t).Bucket(bucket).Object(name).NewWriter(ctx)
	w.ChunkSize = 0 // one request
	if _, err := io.Copy(w, bytes.NewReader(body)); err != nil {
		t.Fatalf("put gs://%s/%s: %v", bucket, name, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("put gs://%s/%s: %v", bucket, name, err)
	}
	return w.Attrs()
}

// Compose writes name as the composition of parts (objects already in the
// bucket): a composite object, which has a CRC32C but no MD5.
func (g GCSServer) Compose(t testing.TB, bucket, name string, parts ...string) *storage.ObjectAttrs {
	t.Helper()
	c := g.Client(t)
	var srcs []*storage.ObjectHandle
	for _, p := range parts {
		srcs = append(srcs, c.Bucket(bucket).Object(p))
	}
	a, err := c.Bucket(bucket).Object(name).ComposerFrom(srcs...).Run(context.Background())
	if err != nil {
		t.Fatalf("compose gs://%s/%s: %v", bucket, name, err)
	}
	return a
}

// Proxy starts a reverse proxy to the server (see MinIOServer.Proxy) and
// returns its endpoint, http://127.0.0.1:PORT.
func (g GCSServer) Proxy(t testing.TB, o ProxyOptions) string {
	t.Helper()
	return MinIOServer{Endpoint: g.Endpoint}.Proxy(t, o)
}

// FaultProxy starts a reverse proxy to the server that answers a request
// itself whenever fail gives a status (see AzuriteServer.FaultProxy) and
// returns its endpoint, for STORAGE_EMULATOR_HOST.
func (g GCSServer) FaultProxy(t testing.TB, fail Fault) string {
	t.Helper()
	return faultProxy(t, g.Endpoint, fail)
}
