package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// The end-to-end tests run the built binary against the real MinIO that
// hack/minio.sh starts, with the environment KServe's webhook would set.
// runSI passes exactly the env given (no ambient AWS_* of this machine).

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

func s3e2eKeys(m testenv.MinIOServer) []string {
	return []string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
}

func TestE2ES3KServeEnv(t *testing.T) {
	m := testenv.MinIO(t)
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
		"multi/none":              "md5 of 3 parts (multipart ETag)",
	}, verified)
	assert.NotContains(t, stdout+stderr, m.SecretKey, "the secret key is never logged")
}

func TestE2ES3AWSEndpointURLAndSeveralPairs(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "a/model/w.bin", testenv.Random(3<<20, 1), types.ChecksumAlgorithmCrc64nvme)
	m.Put(t, bucket, "a/model/cfg/c.json", []byte(`{}`), "")
	m.Put(t, bucket, "a/model-hf/w.bin", []byte("sibling"), "")
	m.Put(t, bucket, "b/tokenizer.json", []byte(`{"t":1}`), types.ChecksumAlgorithmSha256)
	d1, d2 := t.TempDir(), t.TempDir()

	env := append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+m.Endpoint, "S3_ENDPOINT=wrong.invalid:1")
	_, stderr, code := runSI(t, env,
		"s3://"+bucket+"/a/model/", d1,
		"s3://"+bucket+"/b/tokenizer.json", d2)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, d1, map[string][]byte{"w.bin": testenv.Random(3<<20, 1), "cfg/c.json": []byte(`{}`)})
	s3e2eAssertTree(t, d2, map[string][]byte{"tokenizer.json": []byte(`{"t":1}`)})
}

func TestE2ES3StorageConfig(t *testing.T) {
	m := testenv.MinIO(t)
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
	m := testenv.MinIO(t)
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
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	good := testenv.Random(100_000, 1)
	m.Put(t, bucket, "m/good.bin", good, types.ChecksumAlgorithmCrc32c)
	m.Put(t, bucket, "m/bad.bin", testenv.Random(100_000, 2), types.ChecksumAlgorithmSha256)
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
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	const size = 24 << 20
	body := testenv.Random(size, 9)
	m.Put(t, bucket, "m/model.safetensors", body, types.ChecksumAlgorithmCrc64nvme)
	dest := t.TempDir()
	env := append(s3e2eKeys(m), "STORAGE_INITIALIZER_CHUNK_SIZE=1MiB", "STORAGE_INITIALIZER_CONCURRENCY=2")
	slow := m.Proxy(t, testenv.ProxyOptions{BytesPerSecond: 2 << 20})

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
