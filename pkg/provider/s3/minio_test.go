package s3_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
	s3p "github.com/storage-initializer/storage-initializer/pkg/provider/s3"
)

const mib = 1 << 20

// envFor is a getenv that sees only the given variables: the machine's
// AWS_* (AWS_CA_BUNDLE, AWS_PROFILE…) must not leak into the tests.
func envFor(kv ...string) func(string) string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// awsEnv is the AWS_ENDPOINT_URL flavour of the MinIO environment.
func awsEnv(m testenv.MinIOServer) []string {
	return []string{"AWS_ENDPOINT_URL=" + m.Endpoint, "AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
}

// testProvider is a provider with the engine whose settings it plans with.
type testProvider struct {
	*s3p.Provider
	eng *engine.Engine
}

func newProvider(env []string, opts ...engine.Option) testProvider {
	eng := engine.New(append([]engine.Option{engine.WithConcurrency(4)}, opts...)...)
	return testProvider{s3p.New(eng.PlanSettings(), s3p.WithGetenv(envFor(env...))), eng}
}

// fetch plans src and runs the plan into dest.
func (p testProvider) fetch(ctx context.Context, src, dest string) (*engine.Report, error) {
	return provider.Fetch(ctx, p.eng, p.Provider, src, dest)
}

// readAll reads a planned file through its loader in one call.
func readAll(t *testing.T, f engine.File) []byte {
	t.Helper()
	return readRange(t, f, 0, f.Size)
}

func readRange(t *testing.T, f engine.File, off, n int64) []byte {
	t.Helper()
	var got []byte
	err := f.Source.Load(context.Background(), n, off, func(r io.Reader) error {
		var err error
		got, err = io.ReadAll(r)
		return err
	})
	require.NoError(t, err, "load %s %d+%d", f.Path, off, n)
	return got
}

func byPath(files []engine.File) map[string]engine.File {
	m := map[string]engine.File{}
	for _, f := range files {
		m[f.Path] = f
	}
	return m
}

func paths(files []engine.File) []string {
	var p []string
	for _, f := range files {
		p = append(p, f.Path)
	}
	sort.Strings(p)
	return p
}

func algs(vs []checksum.Value) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Kind())
	}
	return out
}

// seedModel seeds s3://bucket/model (see testenv.SeedModel).
func seedModel(t *testing.T, m testenv.MinIOServer, bucket string) map[string][]byte {
	t.Helper()
	return m.SeedModel(t, bucket, "model")
}

func TestPlanFolder(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	want := seedModel(t, m, bucket)

	// 64 KiB chunks: objects above that are planned with a HEAD; smaller
	// single-part ones get their checksums from the GET (ChecksumsInBody).
	files, err := newProvider(awsEnv(m), engine.WithChunkSize(64<<10)).Files(context.Background(), "s3://"+bucket+"/model")
	require.NoError(t, err)
	var wantPaths []string
	for p := range want {
		wantPaths = append(wantPaths, p)
	}
	sort.Strings(wantPaths)
	assert.Equal(t, wantPaths, paths(files), "model-hf/, modelx and the folder marker are not planned")

	got := byPath(files)
	for p, body := range want {
		f := got[p]
		assert.Equal(t, int64(len(body)), f.Size, p)
		assert.Contains(t, f.Identity, "s3://"+bucket+"/model/"+p, p)
		assert.Contains(t, f.Identity, "etag=", p)
		assert.False(t, f.ModTime.IsZero(), p)
	}

	// The strongest signal each object offers, as the engine will see it.
	for p, wantAlgs := range map[string][]string{
		"config.json":             nil, // checksums arrive with the body
		"empty.txt":               {"md5"},
		"sub/dir/deeper/tok.json": nil,
		"crc64.bin":               {"crc64nvme"},
		"crc32c.bin":              {"crc32c"},
		"sub/dir/sha256.bin":      {"sha256"},
		"multi/composite-crc32c":  {"crc32c (composite of 3 parts)"},
		"multi/composite-sha256":  {"sha256 (composite of 3 parts)"},
		"multi/full-crc64nvme":    {"crc64nvme"},
		"multi/none":              {"md5 of 3 parts (multipart ETag)"},
	} {
		assert.Equal(t, wantAlgs, algs(got[p].Expect), p)
	}
	assert.True(t, got["config.json"].ChecksumsInBody)
	assert.False(t, got["crc64.bin"].ChecksumsInBody)
	assert.False(t, got["multi/none"].ChecksumsInBody, "multipart objects are always planned with a HEAD")

	// Expected values are the real ones.
	sum := sha256.Sum256(want["sub/dir/sha256.bin"])
	assert.Equal(t, sum[:], got["sub/dir/sha256.bin"].Expect[0].Sum)
	h := checksum.CRC64NVME.New()
	h.Write(want["crc64.bin"])
	assert.Equal(t, h.Sum(nil), got["crc64.bin"].Expect[0].Sum)

	// Composite objects carry their part layout with per-part checksums
	// that match the data; the others have none.
	for _, p := range []string{"multi/composite-crc32c", "multi/composite-sha256"} {
		f := got[p]
		require.Len(t, f.Parts, 3, p)
		alg := f.Expect[0].Algorithm
		var off int64
		var partSums [][]byte
		for i, part := range f.Parts {
			assert.Equal(t, []int64{5 * mib, 5 * mib, mib + 123}[i], part.Size, "%s part %d", p, i+1)
			require.Len(t, part.Expect, 1)
			h := alg.New()
			h.Write(want[p][off : off+part.Size])
			assert.Equal(t, h.Sum(nil), part.Expect[0].Sum, "%s part %d checksum", p, i+1)
			partSums = append(partSums, part.Expect[0].Sum)
			off += part.Size
		}
		assert.True(t, checksum.Composite(alg, partSums).Equal(f.Expect[0]), "%s composite of part sums", p)
	}
	assert.Empty(t, got["multi/full-crc64nvme"].Parts)
	// No checksum: the multipart ETag, with the layout two HEADs give.
	none := got["multi/none"]
	require.Len(t, none.Parts, 3)
	assert.Equal(t, []int64{5 * mib, 5 * mib, mib + 123}, []int64{none.Parts[0].Size, none.Parts[1].Size, none.Parts[2].Size})
	assert.Equal(t, strings.Trim(none.Identity[strings.Index(none.Identity, "etag=")+5:], `"`), none.Expect[0].String())

	// Every loader returns the object's bytes, whole and in ranges
	// (including one straddling a part boundary).
	for p, body := range want {
		assert.Equal(t, body, append([]byte{}, readAll(t, got[p])...), p)
	}
	f := got["multi/none"]
	assert.Equal(t, want["multi/none"][5*mib-10:5*mib+20], readRange(t, f, 5*mib-10, 30))
	assert.Equal(t, want["multi/none"][len(want["multi/none"])-1:], readRange(t, f, f.Size-1, 1))
}

func TestPlanKServeEnv(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	body := testenv.Random(1000, 7)
	m.Put(t, bucket, "m/w.bin", body, "")

	// S3_ENDPOINT without scheme plus S3_USE_HTTPS=0, as KServe's webhook sets it.
	files, err := newProvider(m.Env()).Files(context.Background(), "s3://"+bucket+"/m/")
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, "w.bin", files[0].Path)
	assert.Equal(t, body, readAll(t, files[0]))

	// The same keys through STORAGE_CONFIG (KServe's storage spec).
	cfg := `{"type":"s3","endpoint_url":"` + m.Endpoint + `","access_key_id":"` + m.AccessKey +
		`","secret_access_key":"` + m.SecretKey + `","region":"us-east-1"}`
	files, err = newProvider([]string{"STORAGE_CONFIG=" + cfg}).Files(context.Background(), "s3://"+bucket+"/m")
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, body, readAll(t, files[0]))
}

func TestPlanSingleObjectAndBucket(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "a/b/weights.bin", []byte("weights"), types.ChecksumAlgorithmCrc32)
	m.Put(t, bucket, "a/b/weights.bin.extra/x", []byte("not part of the single object"), "")
	m.Put(t, bucket, "top.txt", []byte("top"), "")
	p := newProvider(awsEnv(m))

	files, err := p.Files(context.Background(), "s3://"+bucket+"/a/b/weights.bin")
	require.NoError(t, err)
	require.Len(t, files, 1, "an exact key is that one object")
	assert.Equal(t, "weights.bin", files[0].Path, "saved under its base name")
	assert.Equal(t, []string{"crc32"}, algs(files[0].Expect))
	assert.Equal(t, []byte("weights"), readAll(t, files[0]))

	for _, src := range []string{"s3://" + bucket, "s3://" + bucket + "/"} {
		files, err = p.Files(context.Background(), src)
		require.NoError(t, err, src)
		assert.Equal(t, []string{"a/b/weights.bin", "a/b/weights.bin.extra/x", "top.txt"}, paths(files), src)
	}
}

func TestPlanFilter(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "m/a.safetensors", []byte("a"), "")
	m.Put(t, bucket, "m/b.bin", []byte("b"), "")
	keep := engine.WithFilter(func(rel string) bool { return strings.HasSuffix(rel, ".safetensors") })
	files, err := newProvider(awsEnv(m), keep).Files(context.Background(), "s3://"+bucket+"/m")
	require.NoError(t, err)
	assert.Equal(t, []string{"a.safetensors"}, paths(files))

	none := engine.WithFilter(func(string) bool { return false })
	_, err = newProvider(awsEnv(m), none).Files(context.Background(), "s3://"+bucket+"/m")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "all 2 were excluded")
}

func TestPlanErrors(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "model-hf/x", []byte("x"), "")
	m.Put(t, bucket, "only/", nil, "") // a folder marker alone is not a model
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		env  []string
		src  string
		want string
	}{
		{"nothing at the prefix (and model-hf/ does not count)", awsEnv(m), "s3://" + bucket + "/model", "no objects found at s3://" + bucket + "/model"},
		{"only a folder marker", awsEnv(m), "s3://" + bucket + "/only/", "no objects found at s3://" + bucket + "/only/"},
		{"missing bucket", awsEnv(m), "s3://no-such-bucket-si/model", "bucket no-such-bucket-si does not exist at " + m.Endpoint},
		{"unknown access key", []string{"AWS_ENDPOINT_URL=" + m.Endpoint, "AWS_ACCESS_KEY_ID=nobody", "AWS_SECRET_ACCESS_KEY=hunter2-secret"},
			"s3://" + bucket + "/model-hf", "check AWS_ACCESS_KEY_ID"},
		{"wrong secret", []string{"AWS_ENDPOINT_URL=" + m.Endpoint, "AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=hunter2-secret"},
			"s3://" + bucket + "/model-hf", "check AWS_SECRET_ACCESS_KEY"},
		{"anonymous on a private bucket", []string{"AWS_ENDPOINT_URL=" + m.Endpoint, "awsAnonymousCredential=true"},
			"s3://" + bucket + "/model-hf", "access denied"},
		{"nothing listening", []string{"S3_ENDPOINT=127.0.0.1:1", "S3_USE_HTTPS=0", "AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=hunter2-secret"},
			"s3://" + bucket + "/model-hf", "http://127.0.0.1:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newProvider(tc.env).Files(ctx, tc.src)
			require.Error(t, err)
			t.Log(err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "hunter2", "secrets never appear in errors")
			assert.NotContains(t, err.Error(), m.SecretKey)
			assert.NotContains(t, err.Error(), "\n", "one line")
		})
	}
}

func TestLoaderObjectChanged(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "m/w.bin", testenv.Random(4096, 1), "")
	files, err := newProvider(awsEnv(m)).Files(context.Background(), "s3://"+bucket+"/m")
	require.NoError(t, err)
	require.Len(t, files, 1)
	readRange(t, files[0], 0, 1024) // the first range succeeds

	m.Put(t, bucket, "m/w.bin", testenv.Random(4096, 2), "") // re-uploaded between ranges
	called := false
	err = files[0].Source.Load(context.Background(), 1024, 1024, func(io.Reader) error { called = true; return nil })
	require.Error(t, err)
	assert.False(t, called, "fn never sees bytes of another version")
	assert.True(t, engine.IsPermanent(err), "a changed object is not retried: %v", err)
	assert.Contains(t, err.Error(), "object s3://"+bucket+"/m/w.bin changed during download")
}

func TestLoaderDeletedObject(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "m/w.bin", []byte("soon gone"), "")
	files, err := newProvider(awsEnv(m)).Files(context.Background(), "s3://"+bucket+"/m/w.bin")
	require.NoError(t, err)
	_, err = m.Client().DeleteObject(context.Background(), deleteInput(bucket, "m/w.bin"))
	require.NoError(t, err)
	err = files[0].Source.Load(context.Background(), files[0].Size, 0, func(io.Reader) error { return nil })
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err), "%v", err)
	assert.Contains(t, err.Error(), "s3://"+bucket+"/m/w.bin")
}

func TestLoaderPinsVersion(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.EnableVersioning(t, bucket)
	old := testenv.Random(2048, 1)
	m.Put(t, bucket, "m/w.bin", old, "")
	files, err := newProvider(awsEnv(m)).Files(context.Background(), "s3://"+bucket+"/m")
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Contains(t, files[0].Identity, "version=")

	m.Put(t, bucket, "m/w.bin", testenv.Random(2048, 2), "")
	// In a versioned bucket the planned version is still there: every range
	// keeps coming from it.
	assert.Equal(t, old[1024:], readRange(t, files[0], 1024, 1024))
}

func TestChecksumValuesAsBase64(t *testing.T) {
	// The planned CRC equals what the server reports (base64), checked
	// through the SDK's own PutObject response.
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	out := m.Put(t, bucket, "k", testenv.Random(999, 3), types.ChecksumAlgorithmCrc32c)
	files, err := newProvider(awsEnv(m)).Files(context.Background(), "s3://"+bucket+"/k")
	require.NoError(t, err)
	require.Len(t, files[0].Expect, 1)
	assert.Equal(t, *out.ChecksumCRC32C, base64.StdEncoding.EncodeToString(files[0].Expect[0].Sum))
}
