// Package testenv gives tests the real servers hack/ starts (make test).
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MinIOServer is a running MinIO started by hack/minio.sh.
type MinIOServer struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
}

// MinIO returns the server named by SI_MINIO_ENDPOINT, SI_MINIO_ACCESS_KEY
// and SI_MINIO_SECRET_KEY. Without them the test is skipped, or fails when
// SI_REQUIRE_SERVERS=1 (CI must not pass by skipping).
func MinIO(t testing.TB) MinIOServer {
	t.Helper()
	m := MinIOServer{
		Endpoint:  os.Getenv("SI_MINIO_ENDPOINT"),
		AccessKey: os.Getenv("SI_MINIO_ACCESS_KEY"),
		SecretKey: os.Getenv("SI_MINIO_SECRET_KEY"),
	}
	if m.Endpoint == "" || m.AccessKey == "" || m.SecretKey == "" {
		if os.Getenv("SI_REQUIRE_SERVERS") == "1" {
			t.Fatal("SI_MINIO_* not set but SI_REQUIRE_SERVERS=1: start MinIO with hack/minio.sh start DIR and source DIR/minio.env")
		}
		t.Skip("no MinIO (SI_MINIO_ENDPOINT unset): run make test")
	}
	return m
}

// HostPort is the endpoint without scheme, as KServe's S3_ENDPOINT wants it.
func (m MinIOServer) HostPort() string {
	u, err := url.Parse(m.Endpoint)
	if err != nil {
		return strings.TrimPrefix(m.Endpoint, "http://")
	}
	return u.Host
}

// Client returns an SDK client for seeding and inspecting buckets. It is
// configured explicitly (static keys, endpoint, path style, us-east-1, a
// plain transport) so the machine's AWS_* variables (AWS_CA_BUNDLE,
// AWS_PROFILE…) cannot change it. Request checksums are only sent when
// asked for, so "no checksum" objects really have none.
func (m MinIOServer) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:                     "us-east-1",
		BaseEndpoint:               aws.String(m.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		HTTPClient:                 &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

var nonBucketChars = regexp.MustCompile(`[^a-z0-9-]+`)

// Bucket creates an empty bucket unique to this test and removes it (with
// every object version in it) when the test ends.
func (m MinIOServer) Bucket(t testing.TB) string {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	base := strings.Trim(nonBucketChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = base[len(base)-40:]
	}
	name := strings.Trim("si-"+base, "-") + "-" + hex.EncodeToString(rnd[:])
	c := m.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	t.Cleanup(func() { m.removeBucket(t, name) })
	return name
}

// EnableVersioning turns versioning on for bucket.
func (m MinIOServer) EnableVersioning(t testing.TB, bucket string) {
	t.Helper()
	_, err := m.Client().PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	})
	if err != nil {
		t.Fatalf("enable versioning on %s: %v", bucket, err)
	}
}

func (m MinIOServer) removeBucket(t testing.TB, name string) {
	c := m.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pages := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: aws.String(name)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Logf("cleanup: list %s: %v", name, err)
			return
		}
		var ids []types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, d := range page.DeleteMarkers {
			ids = append(ids, types.ObjectIdentifier{Key: d.Key, VersionId: d.VersionId})
		}
		for len(ids) > 0 {
			n := min(len(ids), 1000)
			_, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{
				Bucket: aws.String(name),
				Delete: &types.Delete{Objects: ids[:n], Quiet: aws.Bool(true)},
			})
			if err != nil {
				t.Logf("cleanup: delete objects in %s: %v", name, err)
				return
			}
			ids = ids[n:]
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Logf("cleanup: delete bucket %s: %v", name, err)
	}
}

// Env is the KServe-style environment for this server: S3_ENDPOINT without
// scheme plus S3_USE_HTTPS=0, keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
func (m MinIOServer) Env() []string {
	return []string{
		"S3_ENDPOINT=" + m.HostPort(),
		"S3_USE_HTTPS=0",
		"AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
	}
}

// Put uploads body as one PutObject. alg asks the SDK to send that
// checksum, which the server stores; "" stores none.
func (m MinIOServer) Put(t testing.TB, bucket, key string, body []byte, alg types.ChecksumAlgorithm) *s3.PutObjectOutput {
	t.Helper()
	out, err := m.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket:            aws.String(bucket),
		Key:               aws.String(key),
		Body:              bytes.NewReader(body),
		ContentLength:     aws.Int64(int64(len(body))),
		ChecksumAlgorithm: alg,
	})
	if err != nil {
		t.Fatalf("put s3://%s/%s: %v", bucket, key, err)
	}
	return out
}

// PutMultipart uploads parts as one multipart upload with the multipart
// API itself (no transfer manager, so the layout is exactly parts). alg
// ("" for none) is sent with every part; typ picks COMPOSITE or FULL_OBJECT
// ("" lets the server decide).
func (m MinIOServer) PutMultipart(t testing.TB, bucket, key string, parts [][]byte, alg types.ChecksumAlgorithm, typ types.ChecksumType) *s3.CompleteMultipartUploadOutput {
	t.Helper()
	ctx := context.Background()
	c := m.Client()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), ChecksumAlgorithm: alg, ChecksumType: typ,
	})
	if err != nil {
		t.Fatalf("create multipart upload s3://%s/%s: %v", bucket, key, err)
	}
	done := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p),
			ContentLength: aws.Int64(int64(len(p))), ChecksumAlgorithm: alg,
		})
		if err != nil {
			t.Fatalf("upload part %d of s3://%s/%s: %v", i+1, bucket, key, err)
		}
		done[i] = types.CompletedPart{
			ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1)),
			ChecksumCRC32: out.ChecksumCRC32, ChecksumCRC32C: out.ChecksumCRC32C,
			ChecksumCRC64NVME: out.ChecksumCRC64NVME, ChecksumSHA1: out.ChecksumSHA1, ChecksumSHA256: out.ChecksumSHA256,
		}
	}
	out, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}, ChecksumType: typ,
	})
	if err != nil {
		t.Fatalf("complete multipart upload s3://%s/%s (%d parts): %v", bucket, key, len(parts), err)
	}
	return out
}

// Random returns n pseudo-random bytes (seeded by n and seed, so a
// failing test can be rerun with the same data).
func Random(n int, seed int64) []byte {
	b := make([]byte, n)
	x := uint64(seed)*0x9E3779B97F4A7C15 + uint64(n) + 1
	for i := 0; i < n; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	return b
}

// ProxyOptions shape a Proxy.
type ProxyOptions struct {
	// CorruptSuffix flips one bit in every GET response body whose URL
	// path ends with it, as a faulty disk, NIC or middlebox would.
	CorruptSuffix string
	// BytesPerSecond throttles each response body (0: no limit), so a test
	// can stop a download halfway: every successful GET's, or, with
	// Count, the ones Count selects.
	BytesPerSecond int64
	// Count, when set, selects the responses whose body bytes are added
	// to Counted as the client reads them (a node cache test measures
	// the object bytes the store served).
	Count   func(*http.Request) bool
	Counted *atomic.Int64
}

// Proxy starts a plain-HTTP reverse proxy to the server and returns its
// endpoint. Signatures stay valid: the proxy keeps the Host header.
func (m MinIOServer) Proxy(t testing.TB, o ProxyOptions) string {
	t.Helper()
	return ReverseProxy(t, m.Endpoint, o)
}

// ReverseProxy starts a plain-HTTP reverse proxy to target (MinIO, a
// registry) for the test's duration and returns its URL.
func ReverseProxy(t testing.TB, target string, o ProxyOptions) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("parse %s: %v", target, err)
	}
	if o.Count != nil && o.Counted == nil {
		t.Fatal("testenv.ProxyOptions: Count without Counted")
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // a client killed mid-body is expected
	rp.ModifyResponse = func(r *http.Response) error {
		get := r.Request.Method == http.MethodGet && r.StatusCode/100 == 2
		selected := get
		if o.Count != nil {
			selected = o.Count(r.Request)
		}
		if get && o.CorruptSuffix != "" && strings.HasSuffix(r.Request.URL.Path, o.CorruptSuffix) {
			r.Body = &bitFlipper{ReadCloser: r.Body}
		}
		if selected && o.BytesPerSecond > 0 {
			r.Body = &throttled{ReadCloser: r.Body, bps: o.BytesPerSecond}
		}
		if selected && o.Count != nil {
			r.Body = &counting{ReadCloser: r.Body, n: o.Counted}
		}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// CorruptingProxy is a Proxy that corrupts GETs of paths ending in suffix.
func (m MinIOServer) CorruptingProxy(t testing.TB, suffix string) string {
	t.Helper()
	return m.Proxy(t, ProxyOptions{CorruptSuffix: suffix})
}

// bitFlipper flips the lowest bit of the first byte it passes on.
type bitFlipper struct {
	io.ReadCloser
	done bool
}

func (b *bitFlipper) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 && !b.done {
		p[0] ^= 1
		b.done = true
	}
	return n, err
}

// throttled passes at most bps bytes per second, in 16 KiB steps.
type throttled struct {
	io.ReadCloser
	bps int64
}

func (r *throttled) Read(p []byte) (int, error) {
	if len(p) > 16<<10 {
		p = p[:16<<10]
	}
	n, err := r.ReadCloser.Read(p)
	time.Sleep(time.Duration(int64(n) * int64(time.Second) / r.bps))
	return n, err
}

// counting adds the bytes read through it to n.
type counting struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

const mib = 1 << 20

// SeedModel writes a model folder under prefix/ that exercises every
// checksum flavour — single-part objects with CRC64NVME, CRC32C, SHA-256 or
// none; 3-part multipart uploads with composite CRC32C and SHA-256,
// full-object CRC64NVME and none; nested folders, an empty object — plus
// what must not be fetched: a folder marker, a sibling prefix prefix-hf/
// and a key prefix+"x". It returns the expected files by path relative to
// the folder.
func (m MinIOServer) SeedModel(t testing.TB, bucket, prefix string) map[string][]byte {
	t.Helper()
	parts := [][]byte{Random(5*mib, 1), Random(5*mib, 2), Random(mib+123, 3)}
	whole := bytes.Join(parts, nil)
	want := map[string][]byte{
		"config.json":             []byte(`{"model":"tiny"}`),
		"crc64.bin":               Random(300_001, 4),
		"crc32c.bin":              Random(70_000, 5),
		"sub/dir/sha256.bin":      Random(123_457, 6),
		"sub/dir/deeper/tok.json": []byte(`{"tok":1}`),
		"empty.txt":               {},
		"multi/composite-crc32c":  whole,
		"multi/composite-sha256":  whole,
		"multi/full-crc64nvme":    whole,
		"multi/none":              whole,
	}
	algs := map[string]types.ChecksumAlgorithm{
		"crc64.bin": types.ChecksumAlgorithmCrc64nvme, "crc32c.bin": types.ChecksumAlgorithmCrc32c,
		"sub/dir/sha256.bin": types.ChecksumAlgorithmSha256,
	}
	for _, rel := range []string{"config.json", "crc64.bin", "crc32c.bin", "sub/dir/sha256.bin", "sub/dir/deeper/tok.json", "empty.txt"} {
		m.Put(t, bucket, prefix+"/"+rel, want[rel], algs[rel])
	}
	m.PutMultipart(t, bucket, prefix+"/multi/composite-crc32c", parts, types.ChecksumAlgorithmCrc32c, types.ChecksumTypeComposite)
	m.PutMultipart(t, bucket, prefix+"/multi/composite-sha256", parts, types.ChecksumAlgorithmSha256, types.ChecksumTypeComposite)
	m.PutMultipart(t, bucket, prefix+"/multi/full-crc64nvme", parts, types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeFullObject)
	m.PutMultipart(t, bucket, prefix+"/multi/none", parts, "", "")
	m.Put(t, bucket, prefix+"/sub/", nil, "") // folder marker
	m.Put(t, bucket, prefix+"-hf/not-me.bin", []byte("sibling prefix"), "")
	m.Put(t, bucket, prefix+"x", []byte("string prefix"), "")
	return want
}
