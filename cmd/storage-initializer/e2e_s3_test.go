package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The end-to-end tests run the built binary against the real MinIO that
// hack/minio.sh starts, with the environment KServe's webhook would set.
// runSI passes exactly the env given (no ambient AWS_* of this machine).

// The helpers below repeat a small part of pkg/internal/testenv: Go's
// internal rule keeps cmd/ from importing pkg/internal/. They are prefixed
// s3e2e so they cannot clash with other tests of package main.

// s3e2eServer is the MinIO started by hack/minio.sh (SI_MINIO_* env).
type s3e2eServer struct{ Endpoint, AccessKey, SecretKey string }

func s3e2eMinIO(t *testing.T) s3e2eServer {
	t.Helper()
	m := s3e2eServer{os.Getenv("SI_MINIO_ENDPOINT"), os.Getenv("SI_MINIO_ACCESS_KEY"), os.Getenv("SI_MINIO_SECRET_KEY")}
	if m.Endpoint == "" || m.AccessKey == "" || m.SecretKey == "" {
		if os.Getenv("SI_REQUIRE_SERVERS") == "1" {
			t.Fatal("SI_MINIO_* not set but SI_REQUIRE_SERVERS=1: start MinIO with hack/minio.sh start DIR and source DIR/minio.env")
		}
		t.Skip("no MinIO (SI_MINIO_ENDPOINT unset): run make test")
	}
	return m
}

// HostPort is the endpoint without scheme, as KServe's S3_ENDPOINT has it.
func (m s3e2eServer) HostPort() string { return strings.TrimPrefix(m.Endpoint, "http://") }

// Env is what KServe's webhook sets for a MinIO secret.
func (m s3e2eServer) Env() []string {
	return []string{"S3_ENDPOINT=" + m.HostPort(), "S3_USE_HTTPS=0",
		"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
}

// Client seeds buckets; configured explicitly so this machine's AWS_*
// variables cannot change it, and sending checksums only when asked.
func (m s3e2eServer) Client() *s3.Client {
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(m.Endpoint), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		HTTPClient:                 &http.Client{Transport: &http.Transport{}},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
}

// Bucket creates a bucket for this test and empties and removes it after.
func (m s3e2eServer) Bucket(t *testing.T) string {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "si-e2e-" + hex.EncodeToString(rnd[:])
	c := m.Client()
	_, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return
			}
			for _, o := range page.Contents {
				_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: o.Key})
			}
		}
		_, _ = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	})
	return name
}

func (m s3e2eServer) Put(t *testing.T, bucket, key string, body []byte, alg types.ChecksumAlgorithm) {
	t.Helper()
	_, err := m.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ChecksumAlgorithm: alg,
	})
	require.NoError(t, err, "put %s", key)
}

// PutMultipart uploads parts with the multipart API itself.
func (m s3e2eServer) PutMultipart(t *testing.T, bucket, key string, parts [][]byte, alg types.ChecksumAlgorithm, typ types.ChecksumType) {
	t.Helper()
	ctx, c := context.Background(), m.Client()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), ChecksumAlgorithm: alg, ChecksumType: typ})
	require.NoError(t, err)
	done := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)),
			Body: bytes.NewReader(p), ContentLength: aws.Int64(int64(len(p))), ChecksumAlgorithm: alg})
		require.NoError(t, err)
		done[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1)),
			ChecksumCRC32C: out.ChecksumCRC32C, ChecksumSHA256: out.ChecksumSHA256, ChecksumCRC64NVME: out.ChecksumCRC64NVME}
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}, ChecksumType: typ})
	require.NoError(t, err)
}

// SeedModel writes prefix/ with every checksum flavour (single-part
// CRC64NVME, CRC32C, SHA-256, none; 3-part composite CRC32C and SHA-256,
// full-object CRC64NVME, none), nested folders and an empty object, plus a
// folder marker, a sibling prefix prefix-hf/ and a key prefix+"x" that must
// not be fetched. It returns the expected tree.
func (m s3e2eServer) SeedModel(t *testing.T, bucket, prefix string) map[string][]byte {
	t.Helper()
	parts := [][]byte{s3e2eRandom(5<<20, 1), s3e2eRandom(5<<20, 2), s3e2eRandom(1<<20+123, 3)}
	whole := bytes.Join(parts, nil)
	want := map[string][]byte{
		"config.json": []byte(`{"model":"tiny"}`), "crc64.bin": s3e2eRandom(300_001, 4), "crc32c.bin": s3e2eRandom(70_000, 5),
		"sub/dir/sha256.bin": s3e2eRandom(123_457, 6), "sub/dir/deeper/tok.json": []byte(`{"tok":1}`), "empty.txt": {},
		"multi/composite-crc32c": whole, "multi/composite-sha256": whole, "multi/full-crc64nvme": whole, "multi/none": whole,
	}
	for rel, alg := range map[string]types.ChecksumAlgorithm{
		"config.json": "", "crc64.bin": types.ChecksumAlgorithmCrc64nvme, "crc32c.bin": types.ChecksumAlgorithmCrc32c,
		"sub/dir/sha256.bin": types.ChecksumAlgorithmSha256, "sub/dir/deeper/tok.json": "", "empty.txt": "",
	} {
		m.Put(t, bucket, prefix+"/"+rel, want[rel], alg)
	}
	m.PutMultipart(t, bucket, prefix+"/multi/composite-crc32c", parts, types.ChecksumAlgorithmCrc32c, types.ChecksumTypeComposite)
	m.PutMultipart(t, bucket, prefix+"/multi/composite-sha256", parts, types.ChecksumAlgorithmSha256, types.ChecksumTypeComposite)
	m.PutMultipart(t, bucket, prefix+"/multi/full-crc64nvme", parts, types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeFullObject)
	m.PutMultipart(t, bucket, prefix+"/multi/none", parts, "", "")
	m.Put(t, bucket, prefix+"/sub/", nil, "")
	m.Put(t, bucket, prefix+"-hf/not-me.bin", []byte("sibling prefix"), "")
	m.Put(t, bucket, prefix+"x", []byte("string prefix"), "")
	return want
}

type s3e2eProxyOptions struct {
	CorruptSuffix  string // flip a bit in GET bodies of paths ending with it
	BytesPerSecond int64  // throttle each response body (0: no limit)
}

// Proxy is a reverse proxy to MinIO that keeps the Host header (so
// signatures stay valid) and corrupts or throttles GET bodies.
func (m s3e2eServer) Proxy(t *testing.T, o s3e2eProxyOptions) string {
	t.Helper()
	target, err := url.Parse(m.Endpoint)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // a client killed mid-body is expected
	rp.ModifyResponse = func(r *http.Response) error {
		if r.Request.Method != http.MethodGet || r.StatusCode/100 != 2 {
			return nil
		}
		if o.CorruptSuffix != "" && strings.HasSuffix(r.Request.URL.Path, o.CorruptSuffix) {
			r.Body = &s3e2eBody{ReadCloser: r.Body, flip: true}
		}
		if o.BytesPerSecond > 0 {
			r.Body = &s3e2eBody{ReadCloser: r.Body, bps: o.BytesPerSecond}
		}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

func (m s3e2eServer) CorruptingProxy(t *testing.T, suffix string) string {
	return m.Proxy(t, s3e2eProxyOptions{CorruptSuffix: suffix})
}

// s3e2eBody flips the first byte's low bit and/or throttles.
type s3e2eBody struct {
	io.ReadCloser
	flip bool
	bps  int64
}

func (b *s3e2eBody) Read(p []byte) (int, error) {
	if b.bps > 0 && len(p) > 16<<10 {
		p = p[:16<<10]
	}
	n, err := b.ReadCloser.Read(p)
	if n > 0 && b.flip {
		p[0] ^= 1
		b.flip = false
	}
	if b.bps > 0 {
		time.Sleep(time.Duration(int64(n) * int64(time.Second) / b.bps))
	}
	return n, err
}

// s3e2eRandom returns n deterministic pseudo-random bytes.
func s3e2eRandom(n int, seed int64) []byte {
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

// s3e2eSummary is the part of --summary-json these tests read.
type s3e2eSummary struct {
	Files []struct {
		Path     string `json:"path"`
		Status   string `json:"status"`
		Verified string `json:"verified"`
		Fetched  int64  `json:"fetched_bytes"`
	} `json:"files"`
	Fetched int64 `json:"fetched_bytes"`
}

func s3e2eReadSummary(t *testing.T, path string) s3e2eSummary {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s s3e2eSummary
	require.NoError(t, json.Unmarshal(b, &s))
	return s
}

// assertTree checks dest holds exactly want (byte-identical, nothing else,
// no state folder left behind).
func s3e2eAssertTree(t *testing.T, dest string, want map[string][]byte) {
	t.Helper()
	got := map[string][]byte{}
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		b, err := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = b
		return err
	})
	require.NoError(t, err)
	require.Equal(t, len(want), len(got), "files in %s: %v", dest, s3e2eKeysOf(got))
	for rel, body := range want {
		g, ok := got[rel]
		if assert.True(t, ok, "%s missing", rel) {
			assert.True(t, bytes.Equal(body, g), "%s differs (%d bytes, want %d)", rel, len(g), len(body))
		}
	}
}

func s3e2eKeysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func s3e2eKeys(m s3e2eServer) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
}

func TestE2ES3KServeEnv(t *testing.T) {
	m := s3e2eMinIO(t)
	bucket := m.Bucket(t)
	want := m.SeedModel(t, bucket, "model")
	dest := filepath.Join(t.TempDir(), "mnt", "models") // created by the binary
	sum := filepath.Join(t.TempDir(), "summary.json")

	// Exactly what the webhook sets for a MinIO secret: S3_ENDPOINT without
	// scheme, S3_USE_HTTPS=0, keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
	stdout, stderr, code := runSI(t, append(m.Env(), "STORAGE_INITIALIZER_CHUNK_SIZE=2MiB"),
		"--summary-json", sum, "s3://"+bucket+"/model", dest)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	s3e2eAssertTree(t, dest, want) // model-hf/, modelx and the folder marker are not fetched

	s := s3e2eReadSummary(t, sum)
	verified := map[string]string{}
	for _, f := range s.Files {
		verified[f.Path] = f.Verified
	}
	assert.Equal(t, map[string]string{
		"config.json":             "md5",
		"crc64.bin":               "crc64nvme",
		"crc32c.bin":              "crc32c",
		"sub/dir/sha256.bin":      "sha256",
		"sub/dir/deeper/tok.json": "md5",
		"empty.txt":               "md5",
		"multi/composite-crc32c":  "crc32c (composite of 3 parts)",
		"multi/composite-sha256":  "sha256 (composite of 3 parts)",
		"multi/full-crc64nvme":    "crc64nvme",
		"multi/none":              "size only",
	}, verified)
	assert.NotContains(t, stdout+stderr, m.SecretKey, "the secret key is never logged")
}

func TestE2ES3AWSEndpointURLAndSeveralPairs(t *testing.T) {
	m := s3e2eMinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "a/model/w.bin", s3e2eRandom(3<<20, 1), types.ChecksumAlgorithmCrc64nvme)
	m.Put(t, bucket, "a/model/cfg/c.json", []byte(`{}`), "")
	m.Put(t, bucket, "a/model-hf/w.bin", []byte("sibling"), "")
	m.Put(t, bucket, "b/tokenizer.json", []byte(`{"t":1}`), types.ChecksumAlgorithmSha256)
	d1, d2 := t.TempDir(), t.TempDir()

	env := append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+m.Endpoint, "S3_ENDPOINT=wrong.invalid:1")
	_, stderr, code := runSI(t, env,
		"s3://"+bucket+"/a/model/", d1,
		"s3://"+bucket+"/b/tokenizer.json", d2)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, d1, map[string][]byte{"w.bin": s3e2eRandom(3<<20, 1), "cfg/c.json": []byte(`{}`)})
	s3e2eAssertTree(t, d2, map[string][]byte{"tokenizer.json": []byte(`{"t":1}`)})
}

func TestE2ES3StorageConfig(t *testing.T) {
	m := s3e2eMinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "m/w.bin", []byte("from storage config"), "")
	dest := t.TempDir()
	cfg := `{"type":"s3","endpoint_url":"` + m.Endpoint + `","access_key_id":"` + m.AccessKey +
		`","secret_access_key":"` + m.SecretKey + `"}`
	// The override wins over both STORAGE_CONFIG and the environment.
	env := []string{"STORAGE_CONFIG=" + cfg, `STORAGE_OVERRIDE_CONFIG={"region":"us-east-1"}`,
		"AWS_ACCESS_KEY_ID=wrong", "AWS_SECRET_ACCESS_KEY=wrong", "AWS_DEFAULT_REGION=eu-west-1"}
	_, stderr, code := runSI(t, env, "s3://"+bucket+"/m", dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, map[string][]byte{"w.bin": []byte("from storage config")})
}

func TestE2ES3Errors(t *testing.T) {
	m := s3e2eMinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "model-hf/w.bin", []byte("x"), "")

	for _, tc := range []struct {
		name string
		env  []string
		src  string
		want string
	}{
		{"wrong access key", []string{"S3_ENDPOINT=" + m.HostPort(), "S3_USE_HTTPS=0",
			"AWS_ACCESS_KEY_ID=nobody", "AWS_SECRET_ACCESS_KEY=hunter2-not-logged"},
			"s3://" + bucket + "/model-hf", "check AWS_ACCESS_KEY_ID"},
		{"wrong secret key", []string{"S3_ENDPOINT=" + m.HostPort(), "S3_USE_HTTPS=0",
			"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=hunter2-not-logged"},
			"s3://" + bucket + "/model-hf", "check AWS_SECRET_ACCESS_KEY"},
		{"missing bucket", m.Env(), "s3://si-no-such-bucket/model", "bucket si-no-such-bucket does not exist at " + m.Endpoint},
		{"nothing under the folder (a sibling prefix does not count)", m.Env(), "s3://" + bucket + "/model",
			"no objects found at s3://" + bucket + "/model"},
		{"bad endpoint", append(s3e2eKeys(m), "AWS_ENDPOINT_URL=http://127.0.0.1:1"), "s3://" + bucket + "/model-hf",
			"cannot reach http://127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			termLog := filepath.Join(t.TempDir(), "termination-log")
			require.NoError(t, os.WriteFile(termLog, nil, 0o644)) // kubelet creates it
			stdout, stderr, code := runSI(t, tc.env, "--termination-log", termLog, tc.src, dest)
			assert.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout, stderr)
			assert.Contains(t, stderr, tc.want)
			reason, err := os.ReadFile(termLog)
			require.NoError(t, err)
			assert.Contains(t, string(reason), tc.want, "kubectl describe shows the reason")
			for _, out := range []string{stdout, stderr, string(reason)} {
				assert.NotContains(t, out, "hunter2")
				assert.NotContains(t, out, m.SecretKey)
			}
			entries, _ := os.ReadDir(dest)
			assert.Empty(t, entries, "nothing is left in DEST")
		})
	}
}

func TestE2ES3CorruptedObject(t *testing.T) {
	m := s3e2eMinIO(t)
	bucket := m.Bucket(t)
	good := s3e2eRandom(100_000, 1)
	m.Put(t, bucket, "m/good.bin", good, types.ChecksumAlgorithmCrc32c)
	m.Put(t, bucket, "m/bad.bin", s3e2eRandom(100_000, 2), types.ChecksumAlgorithmSha256)
	proxy := m.CorruptingProxy(t, "/m/bad.bin")
	dest := t.TempDir()

	_, stderr, code := runSI(t, append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+proxy, "STORAGE_INITIALIZER_MAX_ATTEMPTS=2"),
		"--termination-log", filepath.Join(t.TempDir(), "tl"), "s3://"+bucket+"/m", dest)
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "checksum mismatch for bad.bin: sha256")
	_, err := os.Stat(filepath.Join(dest, "bad.bin"))
	assert.True(t, os.IsNotExist(err), "the corrupted file never gets its final name")
}

// TestE2ES3ResumeAfterKill kills the binary halfway through a large object
// (served slowly through a throttling proxy) and runs it again: only the
// chunks the resume journal does not list are fetched again.
func TestE2ES3ResumeAfterKill(t *testing.T) {
	m := s3e2eMinIO(t)
	bucket := m.Bucket(t)
	const size = 24 << 20
	body := s3e2eRandom(size, 9)
	m.Put(t, bucket, "m/model.safetensors", body, types.ChecksumAlgorithmCrc64nvme)
	dest := t.TempDir()
	env := append(s3e2eKeys(m), "STORAGE_INITIALIZER_CHUNK_SIZE=1MiB", "STORAGE_INITIALIZER_CONCURRENCY=2")
	slow := m.Proxy(t, s3e2eProxyOptions{BytesPerSecond: 2 << 20})

	cmd, out := startSI(t, append(env, "AWS_ENDPOINT_URL="+slow), "s3://"+bucket+"/m", dest)
	// The journal (engine state folder) has a header line, then one line
	// per chunk completed: wait for a few chunks, then kill without warning.
	journalLines := func() int {
		matches, _ := filepath.Glob(filepath.Join(dest, ".storage-initializer", "*.journal"))
		if len(matches) != 1 {
			return 0
		}
		b, _ := os.ReadFile(matches[0])
		return strings.Count(string(b), "\n")
	}
	require.True(t, waitFor(t, 60*time.Second, func() bool { return journalLines() >= 1+4 }), "no progress: %s", out)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_, _ = cmd.Process.Wait()
	_, err := os.Stat(filepath.Join(dest, "model.safetensors"))
	require.True(t, os.IsNotExist(err), "no final name before the file is complete")

	sum := filepath.Join(t.TempDir(), "summary.json")
	// The same endpoint: a journal is bound to the object's origin (its
	// identity names the endpoint), so another endpoint starts over.
	_, stderr, code := runSI(t, append(env, "AWS_ENDPOINT_URL="+slow), "--summary-json", sum, "s3://"+bucket+"/m", dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, map[string][]byte{"model.safetensors": body})
	s := s3e2eReadSummary(t, sum)
	require.Len(t, s.Files, 1)
	assert.Equal(t, "resumed", s.Files[0].Status)
	assert.Equal(t, "crc64nvme", s.Files[0].Verified)
	assert.LessOrEqual(t, s.Fetched, int64(size-4<<20), "the 4+ journaled chunks are not fetched again")
}
