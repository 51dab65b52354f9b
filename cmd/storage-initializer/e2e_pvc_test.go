package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pvce2eClaim lays out a pvc root with one claim holding a small model:
// ROOT/claim/models/llama/{config.json, weights.bin, tokenizer/vocab.txt}.
type pvce2eClaim struct {
	root, model string
	files       map[string][]byte
}

func pvce2eNewClaim(t *testing.T) pvce2eClaim {
	t.Helper()
	c := pvce2eClaim{root: filepath.Join(t.TempDir(), "pvc")}
	c.model = filepath.Join(c.root, "claim", "models", "llama")
	c.files = map[string][]byte{
		"config.json":         []byte(`{"arch":"llama"}`),
		"weights.bin":         pvce2eBytes(3<<20 + 7),
		"tokenizer/vocab.txt": []byte("a\nb\n"),
	}
	for rel, b := range c.files {
		p := filepath.Join(c.model, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, b, 0o644))
	}
	return c
}

// manifest writes SHA256SUMS for the model (corrupting one digest if asked).
func (c pvce2eClaim) manifest(t *testing.T, path, corrupt string) {
	t.Helper()
	var sb strings.Builder
	for rel, b := range c.files {
		s := sha256.Sum256(b)
		if rel == corrupt {
			s[0] ^= 0xff
		}
		sb.WriteString(hex.EncodeToString(s[:]) + "  " + rel + "\n")
	}
	require.NoError(t, os.WriteFile(path, []byte(sb.String()), 0o644))
}

// pvce2eRequireScheme skips (visibly) until the lead registers the provider
// for scheme in providers_build.go.
func pvce2eRequireScheme(t *testing.T, src string) {
	t.Helper()
	_, stderr, code := runSI(t, nil, "--pvc-mode", "verify", src, t.TempDir())
	if code == 2 && strings.Contains(stderr, "unsupported source") {
		t.Skipf("no provider registered for %s in providers_build.go yet", src)
	}
}

func pvce2eBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>9)
	}
	return b
}

type pvce2eSummary struct {
	Files []struct {
		Path     string `json:"path"`
		Status   string `json:"status"`
		Verified string `json:"verified"`
		Digest   string `json:"digest"`
	} `json:"files"`
}

func pvce2eReadSummary(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s pvce2eSummary
	require.NoError(t, json.Unmarshal(b, &s))
	out := map[string]string{}
	for _, f := range s.Files {
		out[f.Path] = f.Status + "/" + f.Verified
	}
	return out
}

func TestE2EPVCSymlinkVerifiedByManifestAndRerun(t *testing.T) {
	pvce2eRequireScheme(t, "pvc://claim/x")
	c := pvce2eNewClaim(t)
	c.manifest(t, filepath.Join(c.model, "SHA256SUMS"), "")
	dest := filepath.Join(t.TempDir(), "mnt", "models")
	sum := filepath.Join(t.TempDir(), "summary.json")

	for run := 1; run <= 2; run++ { // the second run finds its own links
		stdout, stderr, code := runSI(t, nil, "--pvc-root", c.root, "--summary-json", sum, "pvc://claim/models/llama", dest)
		require.Equal(t, 0, code, "run %d\nstdout: %s\nstderr: %s", run, stdout, stderr)
		for _, name := range []string{"config.json", "weights.bin", "tokenizer", "SHA256SUMS"} {
			target, err := os.Readlink(filepath.Join(dest, name))
			require.NoError(t, err, "%s is a symlink", name)
			assert.Equal(t, filepath.Join(c.model, name), target)
		}
		for rel, want := range c.files {
			got, err := os.ReadFile(filepath.Join(dest, rel))
			require.NoError(t, err)
			assert.Equal(t, want, got, rel)
		}
		v := pvce2eReadSummary(t, sum)
		assert.Equal(t, "present/sha256", v["weights.bin"])
		assert.Equal(t, "present/sha256", v["tokenizer/vocab.txt"])
	}
}

func TestE2EPVCCopyModeWithManifestFlag(t *testing.T) {
	pvce2eRequireScheme(t, "pvc://claim/x")
	c := pvce2eNewClaim(t)
	manifest := filepath.Join(t.TempDir(), "sums.txt")
	c.manifest(t, manifest, "")
	dest := t.TempDir()
	sum := filepath.Join(t.TempDir(), "summary.json")
	// A plain absolute path, as KServe's older flow rewrote pvc:// URIs.
	stdout, stderr, code := runSI(t, []string{"STORAGE_INITIALIZER_PVC_MODE=copy"},
		"--manifest", manifest, "--chunk-size", "1MiB", "--summary-json", sum, c.model, dest)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	for rel, want := range c.files {
		p := filepath.Join(dest, rel)
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		assert.True(t, fi.Mode().IsRegular(), "%s is a copy", rel)
		got, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Equal(t, want, got, rel)
	}
	v := pvce2eReadSummary(t, sum)
	assert.Equal(t, "downloaded/sha256", v["weights.bin"])
	_, err := os.Stat(filepath.Join(dest, ".storage-initializer"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no state folder left behind")
}

func TestE2EPVCFailures(t *testing.T) {
	pvce2eRequireScheme(t, "pvc://claim/x")
	c := pvce2eNewClaim(t)
	term := filepath.Join(t.TempDir(), "termination-log")
	require.NoError(t, os.WriteFile(term, nil, 0o644))

	dest := filepath.Join(t.TempDir(), "dest")
	_, stderr, code := runSI(t, nil, "--pvc-root", c.root, "--termination-log", term, "pvc://other-claim/models/nope", dest)
	assert.Equal(t, 1, code, stderr)
	msg, err := os.ReadFile(term)
	require.NoError(t, err)
	assert.Contains(t, string(msg), "does not exist — is claim other-claim mounted at")
	assert.Equal(t, 1, strings.Count(string(msg), "\n"), "one line")

	c.manifest(t, filepath.Join(c.model, "SHA256SUMS"), "weights.bin")
	_, stderr, code = runSI(t, nil, "--pvc-root", c.root, "--pvc-mode", "verify", "--termination-log", term, "pvc://claim/models/llama", dest)
	assert.Equal(t, 1, code, stderr)
	msg, err = os.ReadFile(term)
	require.NoError(t, err)
	assert.Contains(t, string(msg), "checksum mismatch for weights.bin")
	ents, err := os.ReadDir(dest) // KServe creates each DEST first
	if err == nil {
		assert.Empty(t, ents, "nothing written when the source fails its checks")
	}

	secret := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(secret, []byte("s"), 0o600))
	require.NoError(t, os.Symlink(secret, filepath.Join(c.model, "tokenizer", "leak")))
	require.NoError(t, os.Remove(filepath.Join(c.model, "SHA256SUMS")))
	_, stderr, code = runSI(t, nil, "--pvc-root", c.root, "pvc://claim/models/llama", dest)
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "symlink tokenizer/leak points to")
}

func TestE2EPVCSourceUnderMntModelsIsANoop(t *testing.T) {
	pvce2eRequireScheme(t, "pvc://claim/x")
	dest := filepath.Join(t.TempDir(), "dest")
	stdout, stderr, code := runSI(t, nil, "/mnt/models/model-a", dest)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	assert.Contains(t, stderr, "nothing to do")
}
