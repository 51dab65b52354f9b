package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/hubtest"
)

// hfe2eModel is a small model: two plain git files, LFS weights (CDN) and
// a sub-folder.
func hfe2eModel(seed byte, weights int) map[string][]byte {
	w := make([]byte, weights)
	for i := range w {
		w[i] = byte(i*31+i>>11) + seed
	}
	return map[string][]byte{
		"config.json":       []byte(`{"architectures":["LlamaForCausalLM"],"seed":` + string(rune('0'+seed)) + `}`),
		"tokenizer.json":    []byte(`{"version":"1.0"}`),
		"model.safetensors": w,
		"onnx/model.onnx":   w[:4096],
		"onnx/config.json":  []byte(`{"onnx":true}`),
	}
}

type hfe2eSummary struct {
	Files []struct {
		Path     string `json:"path"`
		Status   string `json:"status"`
		Verified string `json:"verified"`
	} `json:"files"`
	Fetched int64 `json:"fetched_bytes"`
}

func hfe2eReadSummary(t *testing.T, path string) (hfe2eSummary, map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s hfe2eSummary
	require.NoError(t, json.Unmarshal(b, &s))
	v := map[string]string{}
	for _, f := range s.Files {
		v[f.Path] = f.Verified
	}
	return s, v
}

func hfe2eAssertTree(t *testing.T, dest string, want map[string][]byte) {
	t.Helper()
	for rel, b := range want {
		got, err := os.ReadFile(filepath.Join(dest, rel))
		require.NoError(t, err, rel)
		assert.True(t, bytes.Equal(b, got), "%s differs", rel)
	}
	var n int
	require.NoError(t, filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	}))
	assert.Equal(t, len(want), n, "exactly the expected files under DEST")
}

func hfe2eEnv(h *hubtest.Hub, extra ...string) []string {
	return append([]string{"HF_ENDPOINT=" + h.API.URL, "STORAGE_INITIALIZER_CHUNK_SIZE=64KiB"}, extra...)
}

func TestE2EHFRevisionsSubfolderAndPatterns(t *testing.T) {
	pvce2eRequireScheme(t, "hf://registered/check")
	h := hubtest.New(t)
	v1 := hfe2eModel(1, 700<<10)
	old := h.Push("org/llm", "main", v1)
	h.Tag("org/llm", "v1", old)
	v2 := hfe2eModel(2, 700<<10)
	head := h.Push("org/llm", "main", v2)

	// Default revision: main's head, every file verified, commit logged.
	dest, sum := t.TempDir(), filepath.Join(t.TempDir(), "s.json")
	_, stderr, code := runSI(t, hfe2eEnv(h), "--summary-json", sum, "hf://org/llm", dest)
	require.Equal(t, 0, code, stderr)
	hfe2eAssertTree(t, dest, v2)
	assert.Contains(t, stderr, head, "the resolved commit is logged")
	_, verified := hfe2eReadSummary(t, sum)
	assert.Equal(t, "sha256", verified["model.safetensors"])
	assert.Equal(t, "git-sha1", verified["config.json"])

	// Named revision (a tag) and a sub-folder.
	dest = t.TempDir()
	_, stderr, code = runSI(t, hfe2eEnv(h), "hf://org/llm/onnx:v1", dest)
	require.Equal(t, 0, code, stderr)
	hfe2eAssertTree(t, dest, map[string][]byte{"model.onnx": v1["onnx/model.onnx"], "config.json": v1["onnx/config.json"]})

	// Include patterns (LLMISVC's tokenizer-only list).
	dest = t.TempDir()
	_, stderr, code = runSI(t, hfe2eEnv(h), "--include", "tokenizer*,config.json", "hf://org/llm:"+old, dest)
	require.Equal(t, 0, code, stderr)
	hfe2eAssertTree(t, dest, map[string][]byte{"tokenizer.json": v1["tokenizer.json"], "config.json": v1["config.json"]})
	assert.Zero(t, h.CDNAuthorized())
}

func TestE2EHFGatedTokenNeverPrinted(t *testing.T) {
	pvce2eRequireScheme(t, "hf://registered/check")
	h := hubtest.New(t)
	files := hfe2eModel(3, 200<<10)
	h.Push("meta/gated", "main", files)
	h.Gate("meta/gated", true)
	term := filepath.Join(t.TempDir(), "termination-log")
	require.NoError(t, os.WriteFile(term, nil, 0o644))

	stdout, stderr, code := runSI(t, hfe2eEnv(h), "--termination-log", term, "hf://meta/gated", t.TempDir())
	assert.Equal(t, 1, code, stderr)
	msg, err := os.ReadFile(term)
	require.NoError(t, err)
	assert.Contains(t, string(msg), "gated")
	assert.Contains(t, string(msg), "HF_TOKEN")
	assert.Contains(t, stdout+stderr, "accept the model's terms")

	dest := t.TempDir()
	stdout, stderr, code = runSI(t, hfe2eEnv(h, "HF_TOKEN="+h.Token), "--log-level", "debug", "hf://meta/gated", dest)
	require.Equal(t, 0, code, stderr)
	hfe2eAssertTree(t, dest, files)
	assert.NotContains(t, stdout+stderr, h.Token)
	assert.Zero(t, h.CDNAuthorized(), "the token never reaches the CDN")

	// A token the Hub refuses: named by its variable, never printed.
	stdout, stderr, code = runSI(t, hfe2eEnv(h, "HF_TOKEN=hf_wrong_value_5ecret"), "hf://meta/gated", t.TempDir())
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout+stderr, "HF_TOKEN")
	assert.NotContains(t, stdout+stderr, "hf_wrong_value_5ecret")
}

func TestE2EHFCorruptBytesRefused(t *testing.T) {
	pvce2eRequireScheme(t, "hf://registered/check")
	for _, path := range []string{"model.safetensors", "config.json"} { // SHA-256, git SHA-1
		t.Run(path, func(t *testing.T) {
			h := hubtest.New(t)
			h.Push("org/llm", "main", hfe2eModel(1, 300<<10))
			h.Corrupt("org/llm", path)
			dest := t.TempDir()
			stdout, stderr, code := runSI(t, hfe2eEnv(h), "hf://org/llm", dest)
			assert.Equal(t, 1, code, stdout+stderr)
			assert.Contains(t, stdout+stderr, "checksum mismatch for "+path)
			_, err := os.Stat(filepath.Join(dest, path))
			assert.ErrorIs(t, err, os.ErrNotExist, "nothing unverified under the final name")
		})
	}
}

func TestE2EHFPushDuringDownloadDoesNotMix(t *testing.T) {
	pvce2eRequireScheme(t, "hf://registered/check")
	h := hubtest.New(t)
	v1 := hfe2eModel(1, 600<<10)
	h.Push("org/llm", "main", v1)
	var once sync.Once
	h.OnRange(func(hubtest.Request) { once.Do(func() { h.Push("org/llm", "main", hfe2eModel(5, 900<<10)) }) })
	dest := t.TempDir()
	_, stderr, code := runSI(t, hfe2eEnv(h), "hf://org/llm", dest)
	require.Equal(t, 0, code, stderr)
	hfe2eAssertTree(t, dest, v1)
}

func TestE2EHFKillAndResume(t *testing.T) {
	pvce2eRequireScheme(t, "hf://registered/check")
	h := hubtest.New(t)
	files := hfe2eModel(4, 8<<20)
	h.Push("org/llm", "main", files)
	// After a few CDN ranges the CDN stalls until the test is done with
	// the first run, so the kill lands mid-file.
	release := make(chan struct{})
	var served atomic.Int32
	h.OnRange(func(r hubtest.Request) {
		if r.Server == "cdn" && served.Add(1) > 6 {
			select {
			case <-release:
			case <-time.After(30 * time.Second):
			}
		}
	})
	dest := t.TempDir()
	env := hfe2eEnv(h, "STORAGE_INITIALIZER_CHUNK_SIZE=256KiB", "STORAGE_INITIALIZER_CONCURRENCY=2")
	cmd, out := startSI(t, env, "hf://org/llm", dest)
	journalLines := func() int {
		matches, _ := filepath.Glob(filepath.Join(dest, ".storage-initializer", "*.journal"))
		n := 0
		for _, m := range matches {
			b, _ := os.ReadFile(m)
			n += strings.Count(string(b), "\n")
		}
		return n
	}
	require.True(t, waitFor(t, 30*time.Second, func() bool { return journalLines() >= 1+4 }), "no progress: %s", out)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_, _ = cmd.Process.Wait()
	close(release)
	_, err := os.Stat(filepath.Join(dest, "model.safetensors"))
	require.True(t, os.IsNotExist(err), "no final name before the file is complete")

	sum := filepath.Join(t.TempDir(), "s.json")
	_, stderr, code := runSI(t, env, "--summary-json", sum, "hf://org/llm", dest)
	require.Equal(t, 0, code, stderr)
	hfe2eAssertTree(t, dest, files)
	s, verified := hfe2eReadSummary(t, sum)
	assert.Equal(t, "sha256", verified["model.safetensors"])
	for _, f := range s.Files {
		if f.Path == "model.safetensors" {
			assert.Equal(t, "resumed", f.Status)
		}
	}
	assert.LessOrEqual(t, s.Fetched, int64(8<<20-1<<20), "journaled chunks are not fetched again")
}

func TestE2EModelScopePinnedAndVerified(t *testing.T) {
	pvce2eRequireScheme(t, "modelscope://registered/check")
	h := hubtest.New(t)
	files := hfe2eModel(6, 300<<10)
	commit := h.Push("qwen/Qwen2-0.5B", "master", files)
	dest, sum := t.TempDir(), filepath.Join(t.TempDir(), "s.json")
	stdout, stderr, code := runSI(t, []string{"MODELSCOPE_DOMAIN=" + h.MS.URL, "MODELSCOPE_API_TOKEN=" + h.Token},
		"--summary-json", sum, "modelscope://qwen/Qwen2-0.5B", dest)
	require.Equal(t, 0, code, stderr)
	hfe2eAssertTree(t, dest, files)
	assert.Contains(t, stderr, commit)
	assert.NotContains(t, stdout+stderr, h.Token)
	_, verified := hfe2eReadSummary(t, sum)
	assert.Equal(t, "sha256", verified["config.json"])
	assert.Zero(t, h.CDNAuthorized())
}
