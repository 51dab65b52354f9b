package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
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

// GCSObject is what the JSON API says of an uploaded object.
type GCSObject struct {
	Name       string `json:"name"`
	Generation string `json:"generation"`
	CRC32C     string `json:"crc32c"`
	MD5Hash    string `json:"md5Hash"`
}

// call sends one JSON API request straight to the emulator (no proxy, no
// SDK: the seeding helpers must not pull cloud.google.com/go/storage and
// gRPC into every package that imports testenv) and decodes the answer.
func (g GCSServer) call(t testing.TB, method, u string, body io.Reader, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		t.Fatalf("gcs %s %s: %v", method, u, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatalf("gcs %s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("gcs %s %s: HTTP %d: %s", method, u, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("gcs %s %s: %v", method, u, err)
		}
	}
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
	g.call(t, http.MethodPost, g.APIEndpoint()+"b?project=test-project", strings.NewReader(`{"name":"`+name+`"}`), nil)
	t.Cleanup(func() { g.removeBucket(t, name) })
	return name
}

func (g GCSServer) removeBucket(t testing.TB, name string) {
	var list struct {
		Items []GCSObject `json:"items"`
	}
	g.call(t, http.MethodGet, g.APIEndpoint()+"b/"+url.PathEscape(name)+"/o?versions=true", nil, &list)
	for _, o := range list.Items {
		g.call(t, http.MethodDelete, g.APIEndpoint()+"b/"+url.PathEscape(name)+"/o/"+url.PathEscape(o.Name)+"?generation="+o.Generation, nil, nil)
	}
	g.call(t, http.MethodDelete, g.APIEndpoint()+"b/"+url.PathEscape(name), nil, nil)
}

// Put uploads body as one object (a media upload) and returns what the
// server says of it (generation, CRC32C, MD5).
func (g GCSServer) Put(t testing.TB, bucket, name string, body []byte) GCSObject {
	t.Helper()
	var o GCSObject
	g.call(t, http.MethodPost, g.Endpoint+"/upload/storage/v1/b/"+url.PathEscape(bucket)+"/o?uploadType=media&name="+url.QueryEscape(name),
		bytes.NewReader(body), &o)
	return o
}

// Compose writes name as the composition of parts (objects already in the
// bucket): a composite object, which has a CRC32C but no MD5.
func (g GCSServer) Compose(t testing.TB, bucket, name string, parts ...string) GCSObject {
	t.Helper()
	type src struct {
		Name string `json:"name"`
	}
	req := struct {
		SourceObjects []src `json:"sourceObjects"`
	}{}
	for _, p := range parts {
		req.SourceObjects = append(req.SourceObjects, src{p})
	}
	b, _ := json.Marshal(req)
	var o GCSObject
	g.call(t, http.MethodPost, g.APIEndpoint()+"b/"+url.PathEscape(bucket)+"/o/"+url.PathEscape(name)+"/compose", bytes.NewReader(b), &o)
	return o
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
