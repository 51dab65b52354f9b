package hf

import (
	"bytes"
	"context"
	"io"
	"net/http"
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
	"github.com/storage-initializer/storage-initializer/pkg/provider/hf/hubclient"
)

func bytesOf(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

func model(seed byte) map[string][]byte {
	return map[string][]byte{
		"config.json":              []byte(`{"model_type":"llama"}` + string(rune('a'+seed))),
		"model.safetensors":        bytesOf(300<<10+17, seed),
		"tokenizer/tokenizer.json": []byte(`{"v":1}`),
		"sub/dir/weights.bin":      bytesOf(5000, seed+1),
	}
}

func env(h *hubtest.Hub, extra ...string) func(string) string {
	m := map[string]string{"HF_ENDPOINT": h.API.URL, "HOME": "/nonexistent"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return func(k string) string { return m[k] }
}

func fetch(t *testing.T, plan *engine.Plan, opts ...engine.Option) (string, *engine.Report, error) {
	t.Helper()
	dest := t.TempDir()
	eng := engine.New(append([]engine.Option{engine.WithChunkSize(64 << 10), engine.WithRetry(3, 10*time.Millisecond, 50*time.Millisecond)}, opts...)...)
	rep, err := eng.Fetch(context.Background(), dest, plan.Files)
	return dest, rep, err
}

func TestPlanPinsCommitListsAllPagesAndVerifiesEveryFile(t *testing.T) {
	h := hubtest.New(t)
	h.PageSize = 2 // 4 files + 3 folders: 4 pages
	files := model(1)
	commit := h.Push("org/llm", "main", files)
	p := New(WithGetenv(env(h, "HF_TOKEN", h.Token)))

	plan, err := p.Plan(context.Background(), "hf://org/llm")
	require.NoError(t, err)
	assert.Equal(t, "hf://org/llm", plan.Source)
	assert.Equal(t, "commit "+commit, plan.Resolved)
	require.Len(t, plan.Files, 4)
	byPath := map[string]engine.File{}
	for _, f := range plan.Files {
		byPath[f.Path] = f
	}
	for path, b := range files {
		f, ok := byPath[path]
		require.True(t, ok, path)
		assert.Equal(t, int64(len(b)), f.Size, path)
		require.Len(t, f.Expect, 1, path)
		if len(b) >= h.LFSThreshold {
			assert.Equal(t, checksum.SHA256, f.Expect[0].Algorithm, path)
		} else {
			assert.Equal(t, checksum.GitSHA1, f.Expect[0].Algorithm, path)
			assert.Equal(t, hubtest.GitSHA1(b), f.Expect[0].String(), path)
		}
		assert.Contains(t, f.Identity, h.API.URL+"/org/llm@"+commit+"/"+path, "identity names endpoint, repo, commit, path")
		assert.Contains(t, f.Identity, f.Expect[0].String())
	}
	pages := 0
	for _, r := range h.Requests() {
		if strings.Contains(r.Path, "/tree/") {
			pages++
			assert.Contains(t, r.Path, commit, "every page is listed at the pinned commit")
		}
	}
	assert.Equal(t, 4, pages)

	dest, rep, err := fetch(t, plan)
	require.NoError(t, err)
	for path, b := range files {
		got, err := os.ReadFile(filepath.Join(dest, path))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(b, got), path)
	}
	verified := map[string]string{}
	for _, f := range rep.Files {
		verified[f.Path] = f.Verified
	}
	assert.Equal(t, "sha256", verified["model.safetensors"])
	assert.Equal(t, "git-sha1", verified["config.json"])

	assert.Zero(t, h.CDNAuthorized(), "the token never goes to the CDN")
	var cdn, authed int
	for _, r := range h.Requests() {
		if r.Server == "cdn" {
			cdn++
		}
		if r.Server == "api" && r.Authorization == "Bearer "+h.Token {
			authed++
		}
	}
	assert.Greater(t, cdn, 4, "large files come from the CDN in ranges")
	assert.Greater(t, authed, 0, "the token goes to the Hub")
}

func TestPlanNamedRevisionAndSubfolder(t *testing.T) {
	h := hubtest.New(t)
	old := h.Push("org/llm", "main", model(1))
	h.Tag("org/llm", "v1.0", old)
	h.Push("org/llm", "main", model(2))
	p := New(WithGetenv(env(h)))

	plan, err := p.Plan(context.Background(), "hf://org/llm/sub:v1.0")
	require.NoError(t, err)
	assert.Equal(t, "commit "+old, plan.Resolved)
	require.Len(t, plan.Files, 1)
	assert.Equal(t, "dir/weights.bin", plan.Files[0].Path, "paths are relative to the sub-folder")
	dest, _, err := fetch(t, plan)
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dest, "dir/weights.bin"))
	require.NoError(t, err)
	assert.Equal(t, model(1)["sub/dir/weights.bin"], got, "the tagged commit's bytes")

	plan, err = p.Plan(context.Background(), "hf://org/llm:"+old)
	require.NoError(t, err, "a commit id is a revision")
	assert.Equal(t, "commit "+old, plan.Resolved)

	_, err = p.Plan(context.Background(), "hf://org/llm/nope")
	assert.ErrorContains(t, err, "no files in folder nope")
}

func TestPlanErrorsSayWhatToDoAndNeverTheToken(t *testing.T) {
	h := hubtest.New(t)
	h.Push("org/llm", "main", model(1))
	h.Push("org/gated", "main", model(1))
	h.Gate("org/gated", false)
	h.Push("org/private", "main", model(1))
	h.Private("org/private")
	anon := New(WithGetenv(env(h)))
	withTok := New(WithGetenv(env(h, "HF_TOKEN", h.Token)))
	badTok := New(WithGetenv(env(h, "HUGGING_FACE_HUB_TOKEN", "hf_wrong_5ecret")))

	for _, tc := range []struct {
		name string
		p    *Provider
		src  string
		want []string
	}{
		{"repo not found", anon, "hf://org/missing", []string{"repository not found", "HF_TOKEN", "no token was sent"}},
		{"private without token", anon, "hf://org/private", []string{"repository not found", "or it is private"}},
		{"revision not found", anon, "hf://org/llm:v9", []string{`revision "v9" not found`, "branch, tag or commit"}},
		{"gated without token", anon, "hf://org/gated", []string{"gated", "accept the model's terms", "HF_TOKEN", "no token was sent"}},
		{"gated, terms not accepted", withTok, "hf://org/gated", []string{"gated", "accept the model's terms", "HF_TOKEN was sent", "403"}},
		{"invalid token", badTok, "hf://org/llm", []string{"invalid or expired", "HUGGING_FACE_HUB_TOKEN"}},
		{"bad uri", anon, "hf://just-one", []string{"hf://OWNER/MODEL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.p.Plan(context.Background(), tc.src)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.True(t, engine.IsPermanent(err), "not worth retrying: %v", err)
			assert.NotContains(t, err.Error(), h.Token)
			assert.NotContains(t, err.Error(), "5ecret")
		})
	}

	// A file gone at the commit (EntryNotFound) fails its load for good.
	plan, err := withTok.Plan(context.Background(), "hf://org/llm")
	require.NoError(t, err)
	src := plan.Files[0].Source.(*hubclient.File)
	missing := &hubclient.File{Client: src.Client, Size: 1, Name: "hf://org/llm/gone.txt",
		Origin:   resolveURL(src.Client, "org/llm", strings.TrimPrefix(plan.Resolved, "commit "), "gone.txt"),
		Classify: classifier{repo: "org/llm", endpoint: h.API.URL}.classify("gone.txt")}
	err = missing.Load(context.Background(), 1, 0, func(io.Reader) error { return nil })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gone.txt not found at this commit")
	assert.True(t, engine.IsPermanent(err))
}

func TestGatedWithAcceptedTermsDownloads(t *testing.T) {
	h := hubtest.New(t)
	h.Push("org/gated", "main", model(3))
	h.Gate("org/gated", true)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte(h.Token+"\n"), 0o600))
	p := New(WithGetenv(env(h, "HF_HOME", dir))) // the default token file, as huggingface_hub reads it
	plan, err := p.Plan(context.Background(), "hf://org/gated")
	require.NoError(t, err)
	_, _, err = fetch(t, plan)
	require.NoError(t, err)
	assert.Zero(t, h.CDNAuthorized())
}

func TestPushDuringListingDoesNotMixCommits(t *testing.T) {
	h := hubtest.New(t)
	h.PageSize = 1
	first := h.Push("org/llm", "main", model(1))
	var once sync.Once
	h.OnTreePage(func(int) { once.Do(func() { h.Push("org/llm", "main", model(9)) }) })
	plan, err := New(WithGetenv(env(h))).Plan(context.Background(), "hf://org/llm")
	require.NoError(t, err)
	assert.Equal(t, "commit "+first, plan.Resolved)
	for _, f := range plan.Files {
		assert.Contains(t, f.Identity, "@"+first+"/", f.Path)
	}
	dest, _, err := fetch(t, plan)
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dest, "model.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, model(1)["model.safetensors"], got, "bytes of the pinned commit, not of the push")
}

func TestCorruptBytesAreRefused(t *testing.T) {
	for _, path := range []string{"model.safetensors", "config.json"} { // sha256, git-sha1
		t.Run(path, func(t *testing.T) {
			h := hubtest.New(t)
			h.Push("org/llm", "main", model(1))
			h.Corrupt("org/llm", path)
			plan, err := New(WithGetenv(env(h))).Plan(context.Background(), "hf://org/llm")
			require.NoError(t, err)
			dest, _, err := fetch(t, plan)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "checksum mismatch for "+path)
			_, statErr := os.Stat(filepath.Join(dest, path))
			assert.ErrorIs(t, statErr, os.ErrNotExist, "nothing unverified under the final name")
		})
	}
}

func TestExpiredSignedURLIsResolvedAgain(t *testing.T) {
	h := hubtest.New(t)
	files := model(1)
	h.Push("org/llm", "main", files)
	var once sync.Once
	h.OnRange(func(r hubtest.Request) {
		if r.Server == "cdn" {
			once.Do(h.ExpireSignedURLs)
		}
	})
	plan, err := New(WithGetenv(env(h))).Plan(context.Background(), "hf://org/llm")
	require.NoError(t, err)
	dest, _, err := fetch(t, plan, engine.WithConcurrency(1), engine.WithRetry(1, time.Millisecond, time.Millisecond))
	require.NoError(t, err, "a 403 from the CDN re-resolves within the same attempt")
	got, err := os.ReadFile(filepath.Join(dest, "model.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, files["model.safetensors"], got)
	var resolves, expired int
	for _, r := range h.Requests() {
		if r.Server == "api" && r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/model.safetensors") {
			resolves++
		}
		if r.Server == "cdn" && strings.Contains(r.Query, "gen0") {
			expired++
		}
	}
	assert.Equal(t, 2, resolves, "resolved once, then once more after the signature expired")
	assert.Greater(t, expired, 1)
}

func TestRetryAfterSecondsAndHTTPDate(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d, ok := hubclient.RetryAfter(http.Header{"Retry-After": {"7"}}, now)
	assert.True(t, ok)
	assert.Equal(t, 7*time.Second, d)
	d, ok = hubclient.RetryAfter(http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, now)
	assert.True(t, ok)
	assert.Equal(t, 90*time.Second, d)
	d, ok = hubclient.RetryAfter(http.Header{"Ratelimit": {`"api";r=0;t=55`}}, now)
	assert.True(t, ok)
	assert.Equal(t, 55*time.Second, d)
	_, ok = hubclient.RetryAfter(http.Header{}, now)
	assert.False(t, ok)

	h := hubtest.New(t)
	h.Push("org/llm", "main", model(1))
	// Metadata: the tree listing is throttled once for 1 s.
	h.Throttle("/api/models/org/llm/tree/", 1, "1")
	p := New(WithGetenv(env(h)))
	start := time.Now()
	plan, err := p.Plan(context.Background(), "hf://org/llm")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "waited as Retry-After asked")

	// Downloads: an HTTP-date two seconds ahead, through the engine's retry.
	h.Throttle("/org/llm/resolve/", 1, time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
	eng := engine.New(engine.WithRetry(3, time.Millisecond, 5*time.Second))
	var f engine.File
	for _, x := range plan.Files {
		if x.Path == "config.json" {
			f = x
		}
	}
	start = time.Now()
	dir := t.TempDir()
	_, err = eng.Fetch(context.Background(), dir, []engine.File{f})
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	assert.Equal(t, model(1)["config.json"], got)
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "waited for the HTTP-date")

	// Throttled for longer than the attempts: the message says rate-limited.
	h.Throttle("/api/models/org/llm/revision/", 10, "0")
	_, err = p.Plan(context.Background(), "hf://org/llm")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rate-limited")
}

func TestParseRef(t *testing.T) {
	for src, want := range map[string]hubclient.Ref{
		"hf://org/m":              {Scheme: "hf", Owner: "org", Model: "m"},
		"hf://org/m:v1":           {Scheme: "hf", Owner: "org", Model: "m", Revision: "v1"},
		"hf://org/m:refs/pr/1":    {Scheme: "hf", Owner: "org", Model: "m", Revision: "refs/pr/1"},
		"hf://org/m.v2/a/b:main":  {Scheme: "hf", Owner: "org", Model: "m.v2", Sub: "a/b", Revision: "main"},
		"hf://Org-1/Model_x/onnx": {Scheme: "hf", Owner: "Org-1", Model: "Model_x", Sub: "onnx"},
	} {
		got, err := hubclient.ParseRef("hf", src)
		require.NoError(t, err, src)
		assert.Equal(t, want, got, src)
	}
	for _, bad := range []string{"hf://org", "hf://org/m:", "hf://org/../x", "hf://org/m/../x", "hf://org/m?x=1", "s3://org/m"} {
		_, err := hubclient.ParseRef("hf", bad)
		assert.Error(t, err, bad)
	}
}
