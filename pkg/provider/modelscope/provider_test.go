package modelscope

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/hubtest"
	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

func bytesOf(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13) + seed
	}
	return b
}

func model(seed byte) map[string][]byte {
	return map[string][]byte{
		"configuration.json": []byte(`{"framework":"pytorch"}`),
		"model.safetensors":  bytesOf(200<<10+5, seed),
		"onnx/model.onnx":    bytesOf(3000, seed+1),
	}
}

func env(h *hubtest.Hub, extra ...string) func(string) string {
	m := map[string]string{"MODELSCOPE_DOMAIN": h.MS.URL}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return func(k string) string { return m[k] }
}

func fetch(t *testing.T, plan *engine.Plan) (string, error) {
	t.Helper()
	dest := t.TempDir()
	eng := engine.New(engine.WithChunkSize(32<<10), engine.WithRetry(2, time.Millisecond, 10*time.Millisecond))
	_, err := eng.Fetch(context.Background(), dest, plan.Files)
	return dest, err
}

func TestPlanPinsCommitAndVerifiesSHA256(t *testing.T) {
	h := hubtest.New(t)
	files := model(1)
	commit := h.Push("qwen/Qwen-7B", "master", files)
	var once sync.Once
	// A push while downloading: the plan reads the pinned commit only.
	h.OnRange(func(hubtest.Request) { once.Do(func() { h.Push("qwen/Qwen-7B", "master", model(7)) }) })
	p := New(WithGetenv(env(h, "MODELSCOPE_API_TOKEN", h.Token)))

	plan, err := p.Plan(context.Background(), "modelscope://qwen/Qwen-7B")
	require.NoError(t, err)
	assert.Equal(t, "modelscope://qwen/Qwen-7B", plan.Source)
	assert.Equal(t, "commit "+commit, plan.Resolved)
	require.Len(t, plan.Files, 3, ".gitattributes is dropped as the SDK does")
	for _, f := range plan.Files {
		require.Len(t, f.Expect, 1, f.Path)
		assert.Equal(t, checksum.SHA256, f.Expect[0].Algorithm)
		assert.Equal(t, int64(len(files[f.Path])), f.Size)
		assert.Contains(t, f.Identity, h.MS.URL+"/qwen/Qwen-7B@"+commit+"/"+f.Path)
	}
	dest, err := fetch(t, plan)
	require.NoError(t, err)
	for path, b := range files {
		got, err := os.ReadFile(filepath.Join(dest, path))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(b, got), path)
	}
	assert.Zero(t, h.CDNAuthorized(), "no cookie or token to the CDN")
	var cdn int
	for _, r := range h.Requests() {
		if r.Server == "cdn" {
			cdn++
		}
		if r.Server == "ms" && strings.Contains(r.Path, "/repo") {
			assert.Contains(t, r.Query, "Revision="+commit, "downloads name the commit")
			assert.Contains(t, r.Cookie, "m_session_id=")
		}
	}
	assert.Greater(t, cdn, 1)
}

func TestSubfolderTagAndErrors(t *testing.T) {
	h := hubtest.New(t)
	old := h.Push("org/m", "master", model(1))
	h.Tag("org/m", "v1.0.0", old)
	h.Push("org/m", "master", model(2))
	h.Push("org/private", "master", model(1))
	h.Private("org/private")
	p := New(WithGetenv(env(h)))

	plan, err := p.Plan(context.Background(), "modelscope://org/m/onnx:v1.0.0")
	require.NoError(t, err)
	assert.Equal(t, "commit "+old, plan.Resolved)
	require.Len(t, plan.Files, 1)
	assert.Equal(t, "model.onnx", plan.Files[0].Path)

	_, err = p.Plan(context.Background(), "modelscope://org/m:v9")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `revision "v9" not found`)
	assert.Contains(t, err.Error(), "master")

	_, err = p.Plan(context.Background(), "modelscope://org/private")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "model not found")
	assert.Contains(t, err.Error(), "MODELSCOPE_API_TOKEN")

	tok := New(WithGetenv(env(h, "MODELSCOPE_API_TOKEN", h.Token)))
	_, err = tok.Plan(context.Background(), "modelscope://org/private")
	require.NoError(t, err)

	h.Corrupt("org/m", "model.safetensors")
	plan, err = p.Plan(context.Background(), "modelscope://org/m")
	require.NoError(t, err)
	dest, err := fetch(t, plan)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "checksum mismatch for model.safetensors")
	_, statErr := os.Stat(filepath.Join(dest, "model.safetensors"))
	assert.ErrorIs(t, statErr, os.ErrNotExist)
}

func TestDomainWithoutSchemeIsHTTPS(t *testing.T) {
	p := New(WithGetenv(func(k string) string { return map[string]string{"MODELSCOPE_DOMAIN": "mirror.example"}[k] }))
	c, _, err := p.client()
	require.NoError(t, err)
	assert.Equal(t, "https://mirror.example", c.Endpoint().String())
	c, _, err = New().client()
	require.NoError(t, err)
	assert.Equal(t, "https://"+DefaultDomain, c.Endpoint().String())
}
