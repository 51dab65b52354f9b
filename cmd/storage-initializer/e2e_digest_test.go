package main

import (
	"encoding/json"
	"encoding/pem"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/hubtest"
)

// KServe's digest pinning (kserve#6051): VERIFICATION_DIGEST=sha256:HEX,
// set by the webhook from the internal.serving.kserve.io/verification-digest
// annotation, must match the one file or archive SRC names, or the run
// fails closed (exit 1) with nothing at the file's final name.

// digeste2eRun runs the binary with a termination log and returns the
// output, the exit code and the one-line reason.
func digeste2eRun(t *testing.T, env []string, args ...string) (stdout, stderr string, code int, reason string) {
	t.Helper()
	tl := filepath.Join(t.TempDir(), "termination-log")
	require.NoError(t, os.WriteFile(tl, nil, 0o644)) // kubelet creates it; the binary never does
	stdout, stderr, code = runSI(t, env, append([]string{"--termination-log", tl}, args...)...)
	if b, err := os.ReadFile(tl); err == nil {
		reason = string(b)
	}
	return stdout, stderr, code, reason
}

// digeste2eSummary is the part of --summary-json these tests read.
type digeste2eSummary struct {
	Files []struct {
		Path     string `json:"path"`
		Verified string `json:"verified"`
		Digest   string `json:"digest"`
	} `json:"files"`
}

func digeste2eReadSummary(t *testing.T, path string) digeste2eSummary {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s digeste2eSummary
	require.NoError(t, json.Unmarshal(b, &s))
	return s
}

// digeste2eModelFiles lists the regular files of dest outside the state
// folder: what a model server would see.
func digeste2eModelFiles(t *testing.T, dest string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".storage-initializer" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dest, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// assertMismatch checks a failed pin: exit 1, a one-line reason naming the
// pinned and the actual digest, and no file at its final name.
func digeste2eAssertMismatch(t *testing.T, code int, stderr, reason, pinned, actual, dest string) {
	t.Helper()
	t.Logf("reason: %s", reason)
	require.Equal(t, 1, code, "stderr: %s", stderr)
	assert.NotContains(t, strings.TrimSpace(reason), "\n", "one line")
	assert.Contains(t, reason, pinned, "the reason names the pinned digest")
	assert.Contains(t, reason, actual, "the reason names the digest the bytes have")
	assert.Contains(t, reason, "VERIFICATION_DIGEST")
	assert.Empty(t, digeste2eModelFiles(t, dest), "nothing gets its final name")
}

func TestE2EDigestS3(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	weights := testenv.Random(3<<20+5, 61) // several 1 MiB ranges
	config := []byte(`{"architectures":["x"]}`)
	m.Put(t, bucket, "m/model.bin", weights, types.ChecksumAlgorithmCrc64nvme)
	m.Put(t, bucket, "m/config.json", config, types.ChecksumAlgorithmCrc32c) // one range: checksums sent with the body
	m.Put(t, bucket, "m/sha.bin", config, types.ChecksumAlgorithmSha256)     // the store holds its own SHA-256
	right, wrong := httpe2eSHA(weights), httpe2eSHA([]byte("another version"))
	src := "s3://" + bucket + "/m/model.bin"

	t.Run("right", func(t *testing.T) {
		dest, sum := t.TempDir(), filepath.Join(t.TempDir(), "summary.json")
		_, stderr, code, _ := digeste2eRun(t, append(m.Env(), "VERIFICATION_DIGEST=sha256:"+right),
			"--chunk-size", "1MiB", "--summary-json", sum, src, dest)
		require.Equal(t, 0, code, stderr)
		s3e2eAssertTree(t, dest, map[string][]byte{"model.bin": weights})
		s := digeste2eReadSummary(t, sum)
		require.Len(t, s.Files, 1)
		assert.Equal(t, "sha256", s.Files[0].Verified, "verified by the pinned SHA-256, not the store's CRC64NVME")
		assert.Equal(t, right, s.Files[0].Digest)
		assert.Contains(t, stderr, "verification digest pins the file")
	})
	t.Run("wrong", func(t *testing.T) {
		dest := t.TempDir()
		_, stderr, code, reason := digeste2eRun(t, append(m.Env(), "VERIFICATION_DIGEST=sha256:"+wrong),
			"--chunk-size", "1MiB", src, dest)
		digeste2eAssertMismatch(t, code, stderr, reason, wrong, right, dest)
		assert.Contains(t, stderr, "fetching the file again", "one refetch before failing")
	})
	t.Run("flag wins over env, small object", func(t *testing.T) {
		dest := t.TempDir()
		_, stderr, code, reason := digeste2eRun(t, append(m.Env(), "VERIFICATION_DIGEST=sha256:"+httpe2eSHA(config)),
			"--verification-digest", "sha256:"+wrong, "s3://"+bucket+"/m/config.json", dest)
		digeste2eAssertMismatch(t, code, stderr, reason, wrong, httpe2eSHA(config), dest)

		dest = t.TempDir()
		_, stderr, code, _ = digeste2eRun(t, m.Env(), "--verification-digest", "sha256:"+httpe2eSHA(config),
			"s3://"+bucket+"/m/config.json", dest)
		require.Equal(t, 0, code, stderr)
		s3e2eAssertTree(t, dest, map[string][]byte{"config.json": config})
	})
	t.Run("the store's own sha256 disagrees", func(t *testing.T) {
		dest := t.TempDir()
		_, stderr, code, reason := digeste2eRun(t, append(m.Env(), "VERIFICATION_DIGEST=sha256:"+wrong),
			"s3://"+bucket+"/m/sha.bin", dest)
		digeste2eAssertMismatch(t, code, stderr, reason, wrong, httpe2eSHA(config), dest)
	})
	t.Run("--verify=size keeps the pin", func(t *testing.T) {
		dest := t.TempDir()
		_, stderr, code, reason := digeste2eRun(t, append(m.Env(), "VERIFICATION_DIGEST=sha256:"+wrong, "STORAGE_INITIALIZER_VERIFY=size"),
			src, dest)
		digeste2eAssertMismatch(t, code, stderr, reason, wrong, right, dest)
	})
	t.Run("folder", func(t *testing.T) {
		dest := t.TempDir()
		_, stderr, code, reason := digeste2eRun(t, append(m.Env(), "VERIFICATION_DIGEST=sha256:"+right),
			"s3://"+bucket+"/m", dest)
		require.Equal(t, 1, code, stderr)
		assert.Contains(t, reason, "VERIFICATION_DIGEST is set but s3://"+bucket+"/m is a folder of 3 files: a digest pins a single file or archive")
		assert.NotContains(t, strings.TrimSpace(reason), "\n")
		assert.Empty(t, digeste2eModelFiles(t, dest), "nothing is fetched")
	})
	t.Run("dry-run", func(t *testing.T) {
		dest := t.TempDir()
		stdout, stderr, code, _ := digeste2eRun(t, append(m.Env(), "VERIFICATION_DIGEST=sha256:"+right),
			"--dry-run", "--log-format", "json", src, dest)
		require.Equal(t, 0, code, stderr)
		var plan digeste2eSummary
		require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(stdout)), &plan), stdout)
		require.Len(t, plan.Files, 1)
		assert.Equal(t, "sha256", plan.Files[0].Verified)
		assert.Equal(t, right, plan.Files[0].Digest, "--dry-run shows the pinned digest")
		assert.Contains(t, stderr, "sha256:"+right)
		assert.Empty(t, digeste2eModelFiles(t, dest))
	})
}

func TestE2EDigestHTTP(t *testing.T) {
	weights := pvce2eBytes(2<<20 + 7)
	inner := map[string][]byte{"config.json": []byte(`{}`), "sub/w.bin": pvce2eBytes(300 << 10)}
	tgz := httpe2eTarGz(t, inner)
	files := map[string][]byte{"/m/weights.bin": weights, "/m/model.tar.gz": tgz}
	srv := httpe2eServe(t, files, nil)
	right, wrong := httpe2eSHA(weights), httpe2eSHA([]byte("another version"))

	t.Run("file right", func(t *testing.T) {
		dest, sum := t.TempDir(), filepath.Join(t.TempDir(), "summary.json")
		_, stderr, code, _ := digeste2eRun(t, []string{"VERIFICATION_DIGEST=sha256:" + right},
			"--chunk-size", "1MiB", "--summary-json", sum, srv.URL+"/m/weights.bin", dest)
		require.Equal(t, 0, code, stderr)
		s3e2eAssertTree(t, dest, map[string][]byte{"weights.bin": weights})
		s := digeste2eReadSummary(t, sum)
		require.Len(t, s.Files, 1)
		assert.Equal(t, "sha256", s.Files[0].Verified)
		assert.Equal(t, right, s.Files[0].Digest)
	})
	t.Run("file wrong", func(t *testing.T) {
		dest := t.TempDir()
		_, stderr, code, reason := digeste2eRun(t, []string{"VERIFICATION_DIGEST=sha256:" + wrong},
			"--chunk-size", "1MiB", srv.URL+"/m/weights.bin", dest)
		digeste2eAssertMismatch(t, code, stderr, reason, wrong, right, dest)
	})
	t.Run("fragment disagrees", func(t *testing.T) {
		dest := t.TempDir()
		_, stderr, code, reason := digeste2eRun(t, []string{"VERIFICATION_DIGEST=sha256:" + wrong},
			srv.URL+"/m/weights.bin#sha256="+right, dest)
		digeste2eAssertMismatch(t, code, stderr, reason, wrong, right, dest)
	})
	t.Run("archive right", func(t *testing.T) {
		dest, sum := t.TempDir(), filepath.Join(t.TempDir(), "summary.json")
		_, stderr, code, _ := digeste2eRun(t, []string{"VERIFICATION_DIGEST=sha256:" + httpe2eSHA(tgz)},
			"--summary-json", sum, srv.URL+"/m/model.tar.gz", dest)
		require.Equal(t, 0, code, stderr)
		s3e2eAssertTree(t, dest, inner)
		verified := httpe2eVerified(t, sum)
		want := "sha256 of model.tar.gz (VERIFICATION_DIGEST sha256:" + httpe2eSHA(tgz) + ")"
		assert.Equal(t, map[string]string{"config.json": want, "sub/w.bin": want}, verified)
	})
	t.Run("archive wrong", func(t *testing.T) {
		dest := t.TempDir()
		_, stderr, code, reason := digeste2eRun(t, []string{"VERIFICATION_DIGEST=sha256:" + wrong},
			srv.URL+"/m/model.tar.gz", dest)
		digeste2eAssertMismatch(t, code, stderr, reason, wrong, httpe2eSHA(tgz), dest)
	})
	t.Run("archive: a tree committed without the pin is checked again", func(t *testing.T) {
		dest := t.TempDir()
		_, stderr, code, _ := digeste2eRun(t, nil, srv.URL+"/m/model.tar.gz", dest)
		require.Equal(t, 0, code, stderr)
		_, stderr, code, reason := digeste2eRun(t, []string{"VERIFICATION_DIGEST=sha256:" + wrong}, srv.URL+"/m/model.tar.gz", dest)
		require.Equal(t, 1, code, stderr)
		assert.Contains(t, reason, wrong)
		assert.Contains(t, reason, httpe2eSHA(tgz))
	})
	t.Run("https", func(t *testing.T) {
		tls := httptest.NewTLSServer(httpe2eHandler(files, nil))
		t.Cleanup(tls.Close)
		ca := filepath.Join(t.TempDir(), "ca.pem")
		require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tls.Certificate().Raw}), 0o644))
		env := []string{"SSL_CERT_FILE=" + ca}

		dest := t.TempDir()
		_, stderr, code, _ := digeste2eRun(t, append(env, "VERIFICATION_DIGEST=sha256:"+right), tls.URL+"/m/weights.bin", dest)
		require.Equal(t, 0, code, stderr)
		s3e2eAssertTree(t, dest, map[string][]byte{"weights.bin": weights})

		dest = t.TempDir()
		_, stderr, code, reason := digeste2eRun(t, append(env, "VERIFICATION_DIGEST=sha256:"+wrong), tls.URL+"/m/weights.bin", dest)
		digeste2eAssertMismatch(t, code, stderr, reason, wrong, right, dest)
	})
}

// A Hugging Face source that is one file (here a sub-folder holding one
// file) is pinned: an LFS file lists its SHA-256, so a different pin fails
// before the download; a plain git file lists only a git SHA-1, so the pin
// is what the engine verifies.
func TestE2EDigestHF(t *testing.T) {
	h := hubtest.New(t)
	weights := pvce2eBytes(300<<10 + 1)
	config := []byte(`{"architectures":["LlamaForCausalLM"]}`)
	h.Push("org/m", "main", map[string][]byte{"weights/model.safetensors": weights, "meta/config.json": config})
	right, wrong := httpe2eSHA(weights), httpe2eSHA([]byte("another version"))

	dest, sum := t.TempDir(), filepath.Join(t.TempDir(), "s.json")
	_, stderr, code, _ := digeste2eRun(t, hfe2eEnv(h, "VERIFICATION_DIGEST=sha256:"+right), "--summary-json", sum, "hf://org/m/weights", dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, map[string][]byte{"model.safetensors": weights})
	s := digeste2eReadSummary(t, sum)
	require.Len(t, s.Files, 1)
	assert.Equal(t, "sha256", s.Files[0].Verified)
	assert.Equal(t, right, s.Files[0].Digest)

	dest = t.TempDir()
	_, stderr, code, reason := digeste2eRun(t, hfe2eEnv(h, "VERIFICATION_DIGEST=sha256:"+wrong), "hf://org/m/weights", dest)
	digeste2eAssertMismatch(t, code, stderr, reason, wrong, right, dest)

	dest = t.TempDir()
	_, stderr, code, reason = digeste2eRun(t, hfe2eEnv(h, "VERIFICATION_DIGEST=sha256:"+wrong), "hf://org/m/meta", dest)
	digeste2eAssertMismatch(t, code, stderr, reason, wrong, httpe2eSHA(config), dest)
	assert.Contains(t, stderr, "fetching the file again", "downloaded, then refused by the pin")

	dest = t.TempDir()
	_, stderr, code, reason = digeste2eRun(t, hfe2eEnv(h, "VERIFICATION_DIGEST=sha256:"+right), "hf://org/m", dest)
	require.Equal(t, 1, code, stderr)
	assert.Contains(t, reason, "VERIFICATION_DIGEST is set but hf://org/m")
	assert.Contains(t, reason, "is a folder of 2 files")
}

// A local file is pinned when it is copied (and so read); a link to it is
// not downloaded and cannot be.
func TestE2EDigestLocalFile(t *testing.T) {
	dir := t.TempDir()
	body := []byte("local weights")
	file := filepath.Join(dir, "model.bin")
	require.NoError(t, os.WriteFile(file, body, 0o644))
	env := []string{"VERIFICATION_DIGEST=sha256:" + httpe2eSHA(body)}

	dest := t.TempDir()
	_, stderr, code, _ := digeste2eRun(t, env, "--pvc-mode", "copy", file, dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, map[string][]byte{"model.bin": body})

	dest = t.TempDir()
	_, stderr, code, reason := digeste2eRun(t, env, file, dest)
	require.Equal(t, 1, code, stderr)
	assert.Contains(t, reason, "linked into DEST from a mounted claim")
	assert.Contains(t, reason, "--pvc-mode=copy")
	assert.Empty(t, digeste2eModelFiles(t, dest))
}

func TestE2EDigestMalformed(t *testing.T) {
	for _, v := range []string{"sha256:abc", "md5:" + strings.Repeat("0", 32), strings.Repeat("0", 64), "sha256:" + strings.Repeat("z", 64)} {
		_, stderr, code, reason := digeste2eRun(t, []string{"VERIFICATION_DIGEST=" + v}, "s3://b/m", t.TempDir())
		assert.Equal(t, 2, code, "%s: %s", v, stderr)
		assert.Contains(t, reason, "VERIFICATION_DIGEST", v)
		assert.Contains(t, reason, "64 hex digits", v)
	}
	_, stderr, code, _ := digeste2eRun(t, nil, "--verification-digest", "sha256:", "s3://b/m", t.TempDir())
	assert.Equal(t, 2, code, stderr)
}
