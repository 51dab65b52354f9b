package testenv

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
)

// AzuriteServer is a running Azurite blob service started by hack/azurite.sh.
type AzuriteServer struct {
	BlobEndpoint string // http://127.0.0.1:PORT/devstoreaccount1
	Account      string
	Key          string // Azurite's published development key
}

// Azurite returns the server named by SI_AZURITE_BLOB_ENDPOINT,
// SI_AZURITE_ACCOUNT and SI_AZURITE_KEY. Without them the test is skipped,
// or fails when SI_REQUIRE_SERVERS=1 (CI must not pass by skipping).
func Azurite(t testing.TB) AzuriteServer {
	t.Helper()
	a := AzuriteServer{
		BlobEndpoint: os.Getenv("SI_AZURITE_BLOB_ENDPOINT"),
		Account:      os.Getenv("SI_AZURITE_ACCOUNT"),
		Key:          os.Getenv("SI_AZURITE_KEY"),
	}
	if a.BlobEndpoint == "" || a.Account == "" || a.Key == "" {
		if os.Getenv("SI_REQUIRE_SERVERS") == "1" {
			t.Fatal("SI_AZURITE_* not set but SI_REQUIRE_SERVERS=1: start Azurite with hack/azurite.sh start DIR and source DIR/azurite.env")
		}
		t.Skip("no Azurite (SI_AZURITE_BLOB_ENDPOINT unset): run make test")
	}
	return a
}

// ConnectionString reaches the server through endpoint (the server's own
// BlobEndpoint unless a proxy is in front), without credentials: KServe's
// credential variables say how to sign.
func (a AzuriteServer) ConnectionString(endpoint string) string {
	if endpoint == "" {
		endpoint = a.BlobEndpoint
	}
	return "DefaultEndpointsProtocol=http;AccountName=" + a.Account + ";BlobEndpoint=" + endpoint + ";"
}

// Env is the KServe-style environment for this server: the account key in
// AZURE_STORAGE_ACCESS_KEY and the endpoint in a connection string.
func (a AzuriteServer) Env() []string {
	return []string{"AZURE_STORAGE_CONNECTION_STRING=" + a.ConnectionString(""), "AZURE_STORAGE_ACCESS_KEY=" + a.Key}
}

// URI is the production-style URI of a blob path; the connection string
// sends it to Azurite.
func (a AzuriteServer) URI(container, p string) string {
	return "https://" + a.Account + ".blob.core.windows.net/" + container + "/" + p
}

func (a AzuriteServer) service(t testing.TB) *service.Client {
	t.Helper()
	cred, err := service.NewSharedKeyCredential(a.Account, a.Key)
	if err != nil {
		t.Fatalf("azurite key: %v", err)
	}
	c, err := service.NewClientWithSharedKeyCredential(a.BlobEndpoint, cred, &service.ClientOptions{
		ClientOptions: policy.ClientOptions{Transport: &http.Client{Transport: &http.Transport{Proxy: nil}}},
	})
	if err != nil {
		t.Fatalf("azurite client: %v", err)
	}
	return c
}

// ContainerClient returns an SDK client for seeding one container.
func (a AzuriteServer) ContainerClient(t testing.TB, name string) *container.Client {
	return a.service(t).NewContainerClient(name)
}

// Container creates an empty container unique to this test and deletes it
// when the test ends.
func (a AzuriteServer) Container(t testing.TB) string {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	base := strings.Trim(nonBucketChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	base = strings.ReplaceAll(base, "--", "-")
	if len(base) > 40 {
		base = strings.Trim(base[len(base)-40:], "-")
	}
	name := "si-" + base + "-" + hex.EncodeToString(rnd[:])
	c := a.ContainerClient(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Create(ctx, nil); err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.Delete(ctx, nil); err != nil {
			t.Logf("cleanup: delete container %s: %v", name, err)
		}
	})
	return name
}

// Put uploads body as one Put Blob. withMD5 stores the blob's Content-MD5;
// without it the blob has none (Azurite, like Azure, keeps only what the
// uploader sends for block lists, so the blob is then written as one
// staged block and a block list). It returns the blob's ETag.
func (a AzuriteServer) Put(t testing.TB, containerName, name string, body []byte, withMD5 bool) string {
	t.Helper()
	if !withMD5 {
		return a.PutBlocks(t, containerName, name, [][]byte{body}, false)
	}
	sum := md5.Sum(body)
	bb := a.ContainerClient(t, containerName).NewBlockBlobClient(name)
	out, err := bb.UploadBuffer(context.Background(), body, &blockblob.UploadBufferOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentMD5: sum[:]},
	})
	if err != nil {
		t.Fatalf("put %s/%s: %v", containerName, name, err)
	}
	return string(*out.ETag)
}

// PutBlocks writes name as one block per element of blocks and a block
// list (a multi-block blob); withMD5 sets the whole blob's Content-MD5.
func (a AzuriteServer) PutBlocks(t testing.TB, containerName, name string, blocks [][]byte, withMD5 bool) string {
	t.Helper()
	ctx := context.Background()
	bb := a.ContainerClient(t, containerName).NewBlockBlobClient(name)
	var ids []string
	whole := md5.New()
	for i, b := range blocks {
		id := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, uint64(i)))
		if _, err := bb.StageBlock(ctx, id, nopCloser{strings.NewReader(string(b))}, nil); err != nil {
			t.Fatalf("stage block %d of %s/%s: %v", i, containerName, name, err)
		}
		ids = append(ids, id)
		whole.Write(b)
	}
	opts := &blockblob.CommitBlockListOptions{}
	if withMD5 {
		opts.HTTPHeaders = &blob.HTTPHeaders{BlobContentMD5: whole.Sum(nil)}
	}
	out, err := bb.CommitBlockList(ctx, ids, opts)
	if err != nil {
		t.Fatalf("commit %s/%s (%d blocks): %v", containerName, name, len(blocks), err)
	}
	props, err := bb.GetProperties(ctx, nil)
	if err != nil {
		t.Fatalf("properties of %s/%s: %v", containerName, name, err)
	}
	if !withMD5 && len(props.ContentMD5) != 0 {
		t.Fatalf("%s/%s was meant to have no Content-MD5 but has one", containerName, name)
	}
	return fmt.Sprint(*out.ETag)
}

// nopCloser makes a strings.Reader an io.ReadSeekCloser.
type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// Proxy starts a reverse proxy to the server (see MinIOServer.Proxy) and
// returns the blob endpoint through it, http://127.0.0.1:PORT/ACCOUNT.
// Shared-key signatures stay valid: they do not cover the host.
func (a AzuriteServer) Proxy(t testing.TB, o ProxyOptions) string {
	t.Helper()
	root := strings.TrimSuffix(a.BlobEndpoint, "/"+a.Account)
	return MinIOServer{Endpoint: root}.Proxy(t, o) + "/" + a.Account
}

// FaultProxy starts a reverse proxy to Azurite that answers a request
// itself whenever fail gives a status (with a Retry-After when it gives
// one) and passes the rest on, for faults the emulator will not produce on
// demand (throttling, 5xx). It returns the blob endpoint through the proxy
// (…/ACCOUNT), for a connection string's BlobEndpoint.
func (a AzuriteServer) FaultProxy(t testing.TB, fail Fault) string {
	t.Helper()
	return faultProxy(t, strings.TrimSuffix(a.BlobEndpoint, "/"+a.Account), fail) + "/" + a.Account
}

// Fault decides a request's fate at a FaultProxy: status 0 passes it on.
type Fault func(r *http.Request) (status int, retryAfter string)

// faultProxy is FaultProxy for any server (GCSServer.FaultProxy too).
func faultProxy(t testing.TB, target string, fail Fault) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("parse %s: %v", target, err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status, after := fail(r); status != 0 {
			if after != "" {
				w.Header().Set("Retry-After", after)
			}
			w.WriteHeader(status)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
