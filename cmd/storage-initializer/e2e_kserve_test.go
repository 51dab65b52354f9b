package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// KServe 0.20 integration points other than the init container: the
// LocalModelCache download Job, S3 exact-object semantics, confidential
// mode. Each runs the binary against the real MinIO.

// A LocalModelCache download Job (pkg/controller/v1alpha1/localmodelnode):
// container args are exactly [SRC, /mnt/models], and /mnt/models is the
// node group's PVC mounted with subPath models/<sha256(SRC)[:16]>, so DEST
// exists before the binary starts (it is a mount point and cannot be
// replaced). A failed Job is retried by the agent into the same folder.
func TestE2EKServeLocalModelCacheJob(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	want := m.SeedModel(t, bucket, "model")
	src := "s3://" + bucket + "/model"
	sum := sha256.Sum256([]byte(src))
	pvc := t.TempDir()
	dest := filepath.Join(pvc, "models", hex.EncodeToString(sum[:])[:16]) // the subPath
	require.NoError(t, os.MkdirAll(dest, 0o775))
	require.NoError(t, os.WriteFile(filepath.Join(pvc, "lost+found"), nil, 0o644)) // a PVC root is not empty

	env := append(m.Env(), "STORAGE_INITIALIZER_PROGRESS_INTERVAL=5s")
	stdout, stderr, code := runSI(t, env, src, dest) // two positional args, nothing else
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	s3e2eAssertTree(t, dest, want)

	// The agent's retry (or a second node of the group sharing the volume):
	// nothing is fetched again, the folder is unchanged.
	summary := filepath.Join(t.TempDir(), "summary.json")
	_, stderr, code = runSI(t, append(env, "STORAGE_INITIALIZER_SUMMARY_JSON="+summary), src, dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, want)
	assert.Zero(t, s3e2eReadSummary(t, summary).Fetched, "a rerun into a complete cache folder fetches nothing")
	_, err := os.Stat(filepath.Join(pvc, "lost+found"))
	assert.NoError(t, err, "nothing outside DEST is touched")
}

// KServe fetches an S3 URI naming an exact object whatever
// STORAGE_ALLOW_PATTERNS / STORAGE_IGNORE_PATTERNS say; the patterns only
// select files inside a folder.
func TestE2EKServeExactObjectBypassesPatterns(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	weights := testenv.Random(3<<20, 7)
	m.Put(t, bucket, "iris/model.joblib", weights, types.ChecksumAlgorithmCrc64nvme)
	m.Put(t, bucket, "iris/config.json", []byte(`{"a":1}`), types.ChecksumAlgorithmCrc32c)
	env := append(m.Env(), `STORAGE_ALLOW_PATTERNS=["*.json"]`, "STORAGE_IGNORE_PATTERNS=*.joblib")

	dest := t.TempDir()
	_, stderr, code := runSI(t, env, "s3://"+bucket+"/iris/model.joblib", dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, map[string][]byte{"model.joblib": weights})

	// The same patterns on the folder: they apply.
	dest = t.TempDir()
	_, stderr, code = runSI(t, env, "s3://"+bucket+"/iris", dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, map[string][]byte{"config.json": []byte(`{"a":1}`)})
}

// confidentialModel seeds a model encrypted as KServe's confidential mode
// expects: a *.jwe file and a JWE under a model name, plus a plain file.
func confidentialModel(t *testing.T, m testenv.MinIOServer, key []byte) (src string, plain map[string][]byte) {
	t.Helper()
	bucket := m.Bucket(t)
	plain = map[string][]byte{
		"model.safetensors": testenv.Random(1<<20, 11),
		"config.json":       []byte(`{"architectures":["LlamaForCausalLM"]}`),
		"README.md":         []byte("not encrypted"),
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: key}, nil)
	require.NoError(t, err)
	seal := func(b []byte) []byte {
		obj, err := enc.Encrypt(b)
		require.NoError(t, err)
		s, err := obj.CompactSerialize()
		require.NoError(t, err)
		return []byte(s)
	}
	m.Put(t, bucket, "llm/model.safetensors.jwe", seal(plain["model.safetensors"]), types.ChecksumAlgorithmCrc64nvme)
	m.Put(t, bucket, "llm/config.json", seal(plain["config.json"]), types.ChecksumAlgorithmCrc64nvme)
	m.Put(t, bucket, "llm/README.md", plain["README.md"], types.ChecksumAlgorithmCrc64nvme)
	return "s3://" + bucket + "/llm", plain
}

// cdhStandIn serves the Confidential Data Hub's resource endpoint for one
// resource id, as a CoCo guest's CDH does on 127.0.0.1:8006.
func cdhStandIn(t *testing.T, key []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cdh/resource/default/model-key/llm" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(base64.RawURLEncoding.EncodeToString(key)))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestE2EKServeConfidential(t *testing.T) {
	m := testenv.MinIO(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	src, plain := confidentialModel(t, m, key)
	modeEnv := append(m.Env(), "CONFIDENTIAL_ENABLED=true", "CONFIDENTIAL_RESOURCE_ID=kbs:///default/model-key/llm")

	// failClosed runs the binary and checks it exits 1 with a one-line
	// confidential-mode reason, leaving nothing a model server would load
	// as the model: no plaintext, no ciphertext under a model name.
	failClosed := func(t *testing.T, env []string, reason string) {
		t.Helper()
		dest := t.TempDir()
		term := filepath.Join(t.TempDir(), "termination-log")
		require.NoError(t, os.WriteFile(term, nil, 0o644)) // kubelet provides it
		_, stderr, code := runSI(t, append(env, "STORAGE_INITIALIZER_TERMINATION_LOG="+term), src, dest)
		require.Equal(t, 1, code, stderr)
		msg, err := os.ReadFile(term)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(msg), "confidential mode: "), "termination log: %s", msg)
		assert.Contains(t, string(msg), reason)
		assert.Equal(t, 1, strings.Count(strings.TrimRight(string(msg), "\n"), "\n")+1, "one line: %q", msg)
		for _, name := range []string{"model.safetensors", "config.json"} {
			_, err := os.Stat(filepath.Join(dest, name))
			assert.True(t, os.IsNotExist(err), "%s must not exist after a failure", name)
		}
		leftovers, _ := filepath.Glob(filepath.Join(dest, ".*decrypt*"))
		assert.Empty(t, leftovers, "no temporary plaintext")
	}

	t.Run("no resource id", func(t *testing.T) {
		failClosed(t, append(m.Env(), "CONFIDENTIAL_ENABLED=true"), "CONFIDENTIAL_RESOURCE_ID is not set")
	})
	t.Run("no CDH", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		gone := srv.URL
		srv.Close()
		failClosed(t, append(modeEnv, "CDH_ADDR="+gone), "Confidential Data Hub")
	})
	t.Run("wrong key", func(t *testing.T) {
		other := make([]byte, 32)
		_, _ = rand.Read(other)
		failClosed(t, append(modeEnv, "CDH_ADDR="+cdhStandIn(t, other)), "cannot decrypt")
	})
	t.Run("decrypted", func(t *testing.T) {
		dest := t.TempDir()
		_, stderr, code := runSI(t, append(modeEnv, "CDH_ADDR="+cdhStandIn(t, key)), src, dest)
		require.Equal(t, 0, code, stderr)
		s3e2eAssertTree(t, dest, plain) // model.safetensors.jwe is gone, config.json replaced in place
	})
	t.Run("mode off leaves ciphertext as KServe does", func(t *testing.T) {
		dest := t.TempDir()
		_, stderr, code := runSI(t, m.Env(), src, dest)
		require.Equal(t, 0, code, stderr)
		_, err := os.Stat(filepath.Join(dest, "model.safetensors.jwe"))
		assert.NoError(t, err)
	})
}
