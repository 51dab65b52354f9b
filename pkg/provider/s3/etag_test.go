package s3_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// putParts uploads body in parts of the given sizes with the multipart API
// and no checksum algorithm, as aws-cli v1, boto3 and older rclone do; meta
// becomes user metadata.
func putParts(t *testing.T, m testenv.MinIOServer, bucket, key string, body []byte, sizes []int, meta map[string]string) {
	t.Helper()
	ctx := context.Background()
	c := m.Client()
	up, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), Metadata: meta})
	require.NoError(t, err)
	var done []types.CompletedPart
	off := 0
	for i, n := range sizes {
		out, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(body[off : off+n]), ContentLength: aws.Int64(int64(n))})
		require.NoError(t, err)
		done = append(done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))})
		off += n
	}
	require.Equal(t, len(body), off)
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	require.NoError(t, err)
}

// headProxy passes requests to MinIO, counting HEADs with a partNumber and
// adding hdr to every response (an SSE-KMS answer MinIO without a KMS
// cannot give).
func headProxy(t *testing.T, m testenv.MinIOServer, hdr http.Header, partHeads *atomic.Int64) string {
	u, err := url.Parse(m.Endpoint)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		for k, v := range hdr {
			r.Header[k] = v
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && r.URL.Query().Get("partNumber") != "" && partHeads != nil {
			partHeads.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func keysVia(m testenv.MinIOServer, endpoint string) []string {
	return []string{"AWS_ENDPOINT_URL=" + endpoint, "AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
}

func TestMultipartETagVerifiesObjectsWithoutChecksums(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	equal := testenv.Random(4*5*mib+777, 31) // 5 parts: 4 of 5 MiB and 777 bytes
	unequal := testenv.Random(5*mib+6*mib+5*mib+9, 32)
	refuted := testenv.Random(5*mib+6*mib+4*mib, 37)
	putParts(t, m, bucket, "m/equal.bin", equal, []int{5 * mib, 5 * mib, 5 * mib, 5 * mib, 777}, nil)
	putParts(t, m, bucket, "m/unequal.bin", unequal, []int{5 * mib, 6 * mib, 5*mib + 9}, nil)
	// Sizes that fit 5 MiB parts until part 3 says otherwise.
	putParts(t, m, bucket, "m/refuted.bin", refuted, []int{5 * mib, 6 * mib, 4 * mib}, nil)
	var partHeads atomic.Int64
	proxy := headProxy(t, m, nil, &partHeads)

	dest := t.TempDir()
	p := newProvider(keysVia(m, proxy), engine.WithChunkSize(2*mib), engine.WithConcurrency(16), engine.WithVerify(engine.VerifyStrict))
	rep, err := p.fetch(context.Background(), "s3://"+bucket+"/m", dest)
	require.NoError(t, err, "--verify=strict accepts multipart ETags")
	verified := map[string]string{}
	for _, f := range rep.Files {
		verified[f.Path] = f.Verified
	}
	assert.Equal(t, map[string]string{"equal.bin": "md5 of 5 parts (multipart ETag)", "unequal.bin": "md5 of 3 parts (multipart ETag)",
		"refuted.bin": "md5 of 3 parts (multipart ETag)"}, verified)
	// Equal parts: HEAD part 1 and part 5. Unequal: part 1 (the sizes
	// cannot be equal parts), then every part. Refuted: part 1, part 3
	// (not the size equal parts give it), then every part.
	assert.Equal(t, int64(2+(1+3)+(2+3)), partHeads.Load())
	for name, body := range map[string][]byte{"equal.bin": equal, "unequal.bin": unequal, "refuted.bin": refuted} {
		got, err := os.ReadFile(filepath.Join(dest, name))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(body, got), name)
	}
}

func TestMultipartETagCatchesCorruptionAfterOneRefetch(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	putParts(t, m, bucket, "m/bad.bin", testenv.Random(3*5*mib, 33), []int{5 * mib, 5 * mib, 5 * mib}, nil)
	var gets atomic.Int64
	proxy := m.Proxy(t, testenv.ProxyOptions{CorruptSuffix: "/m/bad.bin", Count: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/m/bad.bin") }, Counted: &gets})
	dest := t.TempDir()
	p := newProvider(keysVia(m, proxy), engine.WithChunkSize(5*mib), engine.WithConcurrency(16), engine.WithRetry(2, 1, 1))
	_, err := p.fetch(context.Background(), "s3://"+bucket+"/m", dest)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "checksum mismatch for bad.bin: md5 of 3 parts (multipart ETag) expected ")
	assert.Contains(t, err.Error(), "after one refetch")
	assert.Equal(t, int64(2*3*5*mib), gets.Load(), "fetched twice, then failed")
	_, statErr := os.Stat(filepath.Join(dest, "bad.bin"))
	assert.True(t, os.IsNotExist(statErr), "a corrupted file never gets its final name")
}

func TestSSEKMSETagIsNotUsedAndMD5ChksumIs(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	plain := testenv.Random(2*5*mib+10, 34)
	withSum := testenv.Random(2*5*mib+20, 35)
	wrongSum := testenv.Random(2*5*mib+30, 36)
	sum := md5.Sum(withSum)
	putParts(t, m, bucket, "m/plain.bin", plain, []int{5 * mib, 5 * mib, 10}, nil)
	putParts(t, m, bucket, "m/rclone.bin", withSum, []int{5 * mib, 5 * mib, 20},
		map[string]string{"md5chksum": base64.StdEncoding.EncodeToString(sum[:])})
	kms := http.Header{"X-Amz-Server-Side-Encryption": {"aws:kms"}}

	// Under SSE-KMS the ETag is not an MD5: size only, or rclone's md5chksum.
	var partHeads atomic.Int64
	proxy := headProxy(t, m, kms, &partHeads)
	p := newProvider(keysVia(m, proxy), engine.WithChunkSize(2*mib))
	rep, err := p.fetch(context.Background(), "s3://"+bucket+"/m", t.TempDir())
	require.NoError(t, err)
	verified := map[string]string{}
	for _, f := range rep.Files {
		verified[f.Path] = f.Verified
	}
	assert.Equal(t, map[string]string{"plain.bin": "size only", "rclone.bin": "md5 (rclone md5chksum)"}, verified)
	assert.Zero(t, partHeads.Load(), "no part layout is learnt for an ETag that is not used")

	// Without SSE-KMS the multipart ETag wins (parts hashed side by side).
	rep, err = newProvider(awsEnv(m)).fetch(context.Background(), "s3://"+bucket+"/m/rclone.bin", t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, "md5 of 3 parts (multipart ETag)", rep.Files[0].Verified)

	// A md5chksum that does not match the bytes fails the file.
	bad := md5.Sum(plain)
	putParts(t, m, bucket, "w/wrong.bin", wrongSum, []int{5 * mib, 5 * mib, 30},
		map[string]string{"md5chksum": base64.StdEncoding.EncodeToString(bad[:])})
	_, err = newProvider(keysVia(m, proxy)).fetch(context.Background(), "s3://"+bucket+"/w/wrong.bin", t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "checksum mismatch for wrong.bin: md5 (rclone md5chksum)")
}
