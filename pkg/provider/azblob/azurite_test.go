package azblob

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

const mib = 1 << 20

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// planSettings are the tests' planning settings: four connections and quick
// retries that still honour a Retry-After of a second or two.
func planSettings() engine.PlanSettings {
	return engine.New(engine.WithConcurrency(4), engine.WithRetry(4, time.Millisecond, time.Second)).PlanSettings()
}

func emulated(a testenv.AzuriteServer, extra ...string) *Provider {
	return New(planSettings(), WithGetenv(envOf(append(a.Env(), extra...)...)))
}

// seedModel writes a folder with every kind of blob, and what must not be
// fetched with it.
func seedModel(t *testing.T, a testenv.AzuriteServer, c string) (map[string][]byte, map[string]bool) {
	blocks := [][]byte{testenv.Random(4*mib, 1), testenv.Random(4*mib, 2), testenv.Random(mib+77, 3)}
	want := map[string][]byte{
		"config.json":       []byte(`{"model":"tiny"}`),
		"sub/dir/multi.bin": bytes.Join(blocks, nil),
		"sub/dir/nomd5.bin": bytes.Join(blocks, nil),
		"small-nomd5.txt":   []byte("no md5 here"),
		"empty.txt":         {},
		"deeper/a/tok.json": []byte(`{"tok":1}`),
	}
	hasMD5 := map[string]bool{"config.json": true, "sub/dir/multi.bin": true, "empty.txt": true, "deeper/a/tok.json": true}
	for _, rel := range []string{"config.json", "empty.txt", "deeper/a/tok.json"} {
		a.Put(t, c, "model/"+rel, want[rel], true)
	}
	a.Put(t, c, "model/small-nomd5.txt", want["small-nomd5.txt"], false)
	a.PutBlocks(t, c, "model/sub/dir/multi.bin", blocks, true)
	a.PutBlocks(t, c, "model/sub/dir/nomd5.bin", blocks, false)
	a.Put(t, c, "model/sub/", nil, true) // folder marker
	// A Data Lake Storage directory entry: empty, hdi_isfolder=true.
	yes := "true"
	_, err := a.ContainerClient(t, c).NewBlockBlobClient("model/adls-dir").UploadBuffer(context.Background(), nil,
		&blockblob.UploadBufferOptions{Metadata: map[string]*string{"hdi_isfolder": &yes}})
	require.NoError(t, err)
	a.Put(t, c, "model-hf/not-me.bin", []byte("sibling prefix"), true)
	a.Put(t, c, "modelx", []byte("string prefix"), true)
	return want, hasMD5
}

func paths(p *engine.Plan) []string {
	var out []string
	for _, f := range p.Files {
		out = append(out, f.Path)
	}
	sort.Strings(out)
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fetch runs the plan with the engine's default 16 MiB chunks, so a Load
// spans several 4 MiB checked sub-ranges.
func fetch(t *testing.T, p *engine.Plan) (string, *engine.Report) {
	t.Helper()
	dest := t.TempDir()
	eng := engine.New(engine.WithConcurrency(4), engine.WithRetry(2, 0, 0))
	rep, err := eng.Run(context.Background(), dest, p)
	require.NoError(t, err)
	return dest, rep
}

func TestFolderIsAFolderNotAStringPrefix(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	want, hasMD5 := seedModel(t, a, c)

	for _, uri := range []string{a.URI(c, "model"), a.URI(c, "model/"), a.URI(c, "/model"),
		"https://" + a.Account + ".z7.blob.storage.azure.net/" + c + "/model"} {
		plan, err := emulated(a).Plan(context.Background(), uri)
		require.NoError(t, err, uri)
		assert.Equal(t, keys(want), paths(plan), uri)
	}

	plan, err := emulated(a).Plan(context.Background(), a.URI(c, "model")+"?sv=2024&sig=c2VjcmV0")
	require.NoError(t, err)
	assert.Equal(t, a.URI(c, "model"), plan.Source, "the SAS never reaches logs")
	for _, f := range plan.Files {
		assert.Equal(t, int64(len(want[f.Path])), f.Size, f.Path)
		assert.Equal(t, hasMD5[f.Path], len(f.Expect) == 1, "%s: Content-MD5 planned iff the blob has one", f.Path)
		assert.Contains(t, f.Identity, a.BlobEndpoint+"/"+c+"/model/"+f.Path+" etag=", f.Path)
		rc, ok := f.Source.(interface{ RangeCheck() string })
		require.True(t, ok, "%s: the loader says how ranges are verified", f.Path)
		if hasMD5[f.Path] {
			assert.Empty(t, rc.RangeCheck(), "%s: the whole file is checked by its Content-MD5 instead", f.Path)
		} else {
			assert.Equal(t, "transactional md5 per range", rc.RangeCheck(), f.Path)
		}
		assert.False(t, f.ModTime.IsZero(), f.Path)
	}

	dest, rep := fetch(t, plan)
	for rel, body := range want {
		got, err := os.ReadFile(filepath.Join(dest, rel))
		require.NoError(t, err, rel)
		assert.True(t, bytes.Equal(body, got), "%s differs", rel)
	}
	for _, r := range rep.Files {
		if hasMD5[r.Path] {
			assert.Equal(t, "md5", r.Verified, r.Path)
		}
	}
	assert.NoFileExists(t, filepath.Join(dest, "adls-dir"))
	assert.NoFileExists(t, filepath.Join(dest, "not-me.bin"))
}

func TestExactBlobAndWholeContainer(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	want, _ := seedModel(t, a, c)

	plan, err := emulated(a).Plan(context.Background(), a.URI(c, "model/sub/dir/nomd5.bin"))
	require.NoError(t, err)
	require.Equal(t, []string{"nomd5.bin"}, paths(plan))
	assert.True(t, plan.Files[0].Unfiltered)
	assert.Empty(t, plan.Files[0].Expect)
	dest, _ := fetch(t, plan)
	got, err := os.ReadFile(filepath.Join(dest, "nomd5.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want["sub/dir/nomd5.bin"], got))

	plan, err = emulated(a).Plan(context.Background(), a.URI(c, "modelx"))
	require.NoError(t, err)
	assert.Equal(t, []string{"modelx"}, paths(plan))

	plan, err = emulated(a).Plan(context.Background(), "https://"+a.Account+".blob.core.windows.net/"+c)
	require.NoError(t, err)
	all := paths(plan)
	assert.Contains(t, all, "model-hf/not-me.bin")
	assert.Contains(t, all, "model/config.json")
	assert.NotContains(t, all, "model/sub/")
}

func TestLoaderReadsExactRangesAcrossSubRanges(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	body := testenv.Random(9*mib+3, 4)
	a.PutBlocks(t, c, "m/w.bin", [][]byte{body[:5*mib], body[5*mib:]}, false)
	plan, err := emulated(a).Plan(context.Background(), a.URI(c, "m/w.bin"))
	require.NoError(t, err)
	src := plan.Files[0].Source
	for _, r := range [][2]int64{{0, 1}, {3, 4*mib + 10}, {4 * mib, 4 * mib}, {0, 9*mib + 3}, {9*mib + 2, 1}, {5, 0}} {
		var got []byte
		err := src.Load(context.Background(), r[1], r[0], func(rd io.Reader) error {
			var err error
			got, err = io.ReadAll(rd)
			return err
		})
		require.NoError(t, err, "range %v", r)
		assert.True(t, bytes.Equal(body[r[0]:r[0]+r[1]], got), "range %v", r)
	}
}

func TestChangedBlobFailsPermanently(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	a.Put(t, c, "m/w.bin", testenv.Random(mib, 1), true)
	plan, err := emulated(a).Plan(context.Background(), a.URI(c, "m"))
	require.NoError(t, err)
	src := plan.Files[0].Source
	require.NoError(t, src.Load(context.Background(), 10, 0, func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }))

	a.Put(t, c, "m/w.bin", testenv.Random(mib, 2), true)
	called := false
	err = src.Load(context.Background(), 10, 10, func(io.Reader) error { called = true; return nil })
	require.Error(t, err)
	assert.False(t, called, "no byte of another version reaches the engine")
	assert.True(t, engine.IsPermanent(err), "%v", err)
	assert.Contains(t, err.Error(), "changed during download")
	assert.Contains(t, err.Error(), "m/w.bin")
}

func TestWrongKeyMissingContainerAnonymous(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	a.Put(t, c, "model/a", []byte("a"), true)

	wrongKey := "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
	_, err := New(planSettings(), WithGetenv(envOf("AZURE_STORAGE_CONNECTION_STRING="+a.ConnectionString(""), "AZURE_STORAGE_ACCESS_KEY="+wrongKey))).
		Plan(context.Background(), a.URI(c, "model"))
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "credentials were rejected")
	assert.Contains(t, err.Error(), "AZURE_STORAGE_ACCESS_KEY")
	assert.NotContains(t, err.Error(), wrongKey)
	assert.NotContains(t, err.Error(), "\n")

	_, err = emulated(a).Plan(context.Background(), a.URI("si-no-such-container", "model"))
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "container "+a.BlobEndpoint+"/si-no-such-container does not exist")
	assert.NotContains(t, err.Error(), "\n")

	_, err = New(planSettings(), WithGetenv(envOf("AZURE_STORAGE_CONNECTION_STRING="+a.ConnectionString("")))).Plan(context.Background(), a.URI(c, "model"))
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "not readable anonymously")
	assert.NotContains(t, err.Error(), "\n")

	_, err = emulated(a).Plan(context.Background(), a.URI(c, "nothing-here"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no blobs found at "+a.URI(c, "nothing-here"))
}

// flipper flips one bit of the first byte of every GET body it passes.
type flipper struct {
	io.ReadCloser
	done bool
}

func (f *flipper) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if n > 0 && !f.done {
		p[0] ^= 1
		f.done = true
	}
	return n, err
}

// A byte flipped in transit (by a proxy, a NIC, a middlebox) is caught by
// the transactional MD5 of its range even when the blob has no stored MD5.
func TestTransactionalMD5CatchesCorruptionInTransit(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	body := testenv.Random(6*mib, 5)
	a.PutBlocks(t, c, "m/w.bin", [][]byte{body}, false)

	target, err := url.Parse(a.BlobEndpoint)
	require.NoError(t, err)
	target.Path = ""
	var corrupt bool
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ModifyResponse = func(r *http.Response) error {
		if corrupt && r.Request.Method == http.MethodGet && r.StatusCode == http.StatusPartialContent {
			r.Body = &flipper{ReadCloser: r.Body}
		}
		return nil
	}
	proxy := httptest.NewServer(rp)
	defer proxy.Close()

	p := New(planSettings(), WithGetenv(envOf("AZURE_STORAGE_CONNECTION_STRING="+a.ConnectionString(proxy.URL+target.ResolveReference(&url.URL{}).Path+"/"+a.Account),
		"AZURE_STORAGE_ACCESS_KEY="+a.Key)))
	plan, err := p.Plan(context.Background(), a.URI(c, "m/w.bin"))
	require.NoError(t, err)
	require.Empty(t, plan.Files[0].Expect, "no stored MD5: only the per-range check stands between the wire and the disk")
	src := plan.Files[0].Source

	corrupt = true
	err = src.Load(context.Background(), 6*mib, 0, func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "transactional MD5 mismatch")
	assert.Contains(t, err.Error(), "bytes 0-4194303")
	assert.False(t, engine.IsPermanent(err), "corruption in transit is worth a retry")

	corrupt = false
	var got []byte
	require.NoError(t, src.Load(context.Background(), 6*mib, 0, func(r io.Reader) error { got, err = io.ReadAll(r); return err }))
	assert.True(t, bytes.Equal(body, got))
}
