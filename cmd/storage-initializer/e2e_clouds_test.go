package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
	"github.com/storage-initializer/storage-initializer/pkg/provider/azblob"
)

// The gs:// and Azure Blob end-to-end tests run the binary against the real
// emulators hack/test.sh starts (fake-gcs-server, Azurite), with the
// environment KServe's webhook would set: STORAGE_EMULATOR_HOST for GCS,
// AZURE_STORAGE_ACCESS_KEY plus a connection string's BlobEndpoint for
// Azure, whose URIs keep their production form
// (https://devstoreaccount1.blob.core.windows.net/…).

// cloudsModel is the folder both clouds serve, plus what must not be
// fetched with it.
func cloudsModel() map[string][]byte {
	return map[string][]byte{
		"config.json":       []byte(`{"model":"tiny"}`),
		"weights/w.bin":     testenv.Random(5<<20+321, 1),
		"empty.txt":         {},
		"deep/er/tok.json":  []byte(`{"tok":1}`),
		"weights/nomd5.bin": testenv.Random(3<<20+5, 2),
	}
}

func cloudsVerified(t *testing.T, sum string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range s3e2eReadSummary(t, sum).Files {
		out[f.Path] = f.Verified
	}
	return out
}

func TestE2EGCSFolderAndExactObject(t *testing.T) {
	g := testenv.FakeGCS(t)
	bucket := g.Bucket(t)
	want := cloudsModel()
	for rel, body := range want {
		g.Put(t, bucket, "model/"+rel, body)
	}
	g.Put(t, bucket, "model/weights/", nil) // folder marker
	g.Put(t, bucket, "model-hf/not-me.bin", []byte("sibling"))
	g.Put(t, bucket, "modelx", []byte("string prefix"))

	dest := filepath.Join(t.TempDir(), "mnt", "models")
	sum := filepath.Join(t.TempDir(), "summary.json")
	stdout, stderr, code := runSI(t, append(g.Env(), "STORAGE_INITIALIZER_CHUNK_SIZE=1MiB"),
		"--summary-json", sum, "gs://"+bucket+"/model", dest)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	s3e2eAssertTree(t, dest, want)
	for rel, v := range cloudsVerified(t, sum) {
		assert.Equal(t, "crc32c", v, "%s: every GCS object has a CRC32C, combined from the ranges", rel)
	}

	dest = t.TempDir()
	_, stderr, code = runSI(t, g.Env(), "gs://"+bucket+"/model/weights/w.bin", dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, map[string][]byte{"w.bin": want["weights/w.bin"]})
}

func TestE2EAzureFolderAndExactBlob(t *testing.T) {
	a := testenv.Azurite(t)
	c := a.Container(t)
	want := cloudsModel()
	for rel, body := range want {
		if rel == "weights/nomd5.bin" {
			a.PutBlocks(t, c, "model/"+rel, [][]byte{body[:2<<20], body[2<<20:]}, false)
			continue
		}
		a.Put(t, c, "model/"+rel, body, true)
	}
	a.PutBlocks(t, c, "model/weights/w.bin", [][]byte{want["weights/w.bin"][:4<<20], want["weights/w.bin"][4<<20:]}, true)
	a.Put(t, c, "model/weights/", nil, true)
	a.Put(t, c, "model-hf/not-me.bin", []byte("sibling"), true)
	a.Put(t, c, "modelx", []byte("string prefix"), true)

	dest := filepath.Join(t.TempDir(), "mnt", "models")
	sum := filepath.Join(t.TempDir(), "summary.json")
	stdout, stderr, code := runSI(t, a.Env(), "--summary-json", sum, a.URI(c, "model"), dest)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	s3e2eAssertTree(t, dest, want)
	verified := cloudsVerified(t, sum)
	// The loader checks every range of a blob without Content-MD5 and the
	// summary says so (engine.RangeChecker).
	assert.Equal(t, "size, "+azblob.RangeCheck, verified["weights/nomd5.bin"])
	delete(verified, "weights/nomd5.bin")
	assert.Equal(t, map[string]string{
		"config.json":      "md5",
		"weights/w.bin":    "md5",
		"empty.txt":        "md5",
		"deep/er/tok.json": "md5",
	}, verified)
	assert.NotContains(t, stdout+stderr, a.Key, "the account key is never logged")

	dest = t.TempDir()
	_, stderr, code = runSI(t, a.Env(), a.URI(c, "model/weights/nomd5.bin"), dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, map[string][]byte{"nomd5.bin": want["weights/nomd5.bin"]})
}

func TestE2ECloudErrors(t *testing.T) {
	g := testenv.FakeGCS(t)
	a := testenv.Azurite(t)
	c := a.Container(t)
	a.Put(t, c, "model-hf/w.bin", []byte("x"), true)
	wrongKey := "aHVudGVyMi1ub3QtbG9nZ2VkLWh1bnRlcjItbm90LWxvZ2dlZC1odW50ZXIyLW5vdA=="

	for _, tc := range []struct {
		name string
		env  []string
		src  string
		want string
	}{
		{"gcs missing bucket", g.Env(), "gs://si-no-such-bucket/model", "bucket si-no-such-bucket does not exist"},
		{"azure missing container", a.Env(), a.URI("si-no-such-container", "model"), "si-no-such-container does not exist"},
		{"azure wrong key", []string{"AZURE_STORAGE_CONNECTION_STRING=" + a.ConnectionString(""), "AZURE_STORAGE_ACCESS_KEY=" + wrongKey},
			a.URI(c, "model-hf"), "credentials were rejected"},
		{"azure nothing under the folder (a sibling prefix does not count)", a.Env(), a.URI(c, "model"), "no blobs found at " + a.URI(c, "model")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			termLog := filepath.Join(t.TempDir(), "termination-log")
			require.NoError(t, os.WriteFile(termLog, nil, 0o644))
			stdout, stderr, code := runSI(t, tc.env, "--termination-log", termLog, tc.src, dest)
			assert.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout, stderr)
			assert.Contains(t, stderr, tc.want)
			reason, err := os.ReadFile(termLog)
			require.NoError(t, err)
			assert.Contains(t, string(reason), tc.want)
			assert.Equal(t, 1, strings.Count(string(reason), "\n"), "one line: %s", reason)
			for _, out := range []string{stdout, stderr, string(reason)} {
				assert.NotContains(t, out, wrongKey)
				assert.NotContains(t, out, a.Key)
			}
			entries, _ := os.ReadDir(dest)
			assert.Empty(t, entries, "nothing is left in DEST")
		})
	}
}

// cloudsJournalLines counts the chunks the resume journal lists (a header
// line, then one per chunk).
func cloudsJournalLines(dest string) int {
	matches, _ := filepath.Glob(filepath.Join(dest, ".storage-initializer", "*.journal"))
	if len(matches) != 1 {
		return 0
	}
	b, _ := os.ReadFile(matches[0])
	return bytes.Count(b, []byte("\n"))
}

// cloudsSource is one cloud set up for the kill and change tests: how to
// upload the large file, the env that reaches the server directly and
// through a throttling proxy, and the URI of the folder.
type cloudsSource struct {
	name          string
	put           func(body []byte)
	direct, slow  []string
	uri, verified string
}

func cloudsSources(t *testing.T) []cloudsSource {
	g := testenv.FakeGCS(t)
	a := testenv.Azurite(t)
	bucket := g.Bucket(t)
	c := a.Container(t)
	slowGCS := strings.TrimPrefix(g.Proxy(t, testenv.ProxyOptions{BytesPerSecond: 2 << 20}), "http://")
	slowAzure := a.Proxy(t, testenv.ProxyOptions{BytesPerSecond: 2 << 20})
	return []cloudsSource{
		{
			name:     "gcs",
			put:      func(b []byte) { g.Put(t, bucket, "m/model.safetensors", b) },
			direct:   g.Env(),
			slow:     []string{"STORAGE_EMULATOR_HOST=" + slowGCS, "GCE_METADATA_HOST=127.0.0.1:1"},
			uri:      "gs://" + bucket + "/m",
			verified: "crc32c",
		},
		{
			name:     "azure",
			put:      func(b []byte) { a.PutBlocks(t, c, "m/model.safetensors", [][]byte{b[:len(b)/2], b[len(b)/2:]}, true) },
			direct:   a.Env(),
			slow:     []string{"AZURE_STORAGE_CONNECTION_STRING=" + a.ConnectionString(slowAzure), "AZURE_STORAGE_ACCESS_KEY=" + a.Key},
			uri:      a.URI(c, "m"),
			verified: "md5",
		},
	}
}

var cloudsRun = []string{"STORAGE_INITIALIZER_CHUNK_SIZE=1MiB", "STORAGE_INITIALIZER_CONCURRENCY=2"}

// TestE2ECloudsResumeAfterKill kills the binary halfway through a large
// object (served slowly through a throttling proxy) and runs it again:
// the journaled chunks are not fetched again, and the file verifies.
func TestE2ECloudsResumeAfterKill(t *testing.T) {
	for _, src := range cloudsSources(t) {
		t.Run(src.name, func(t *testing.T) {
			const size = 24 << 20
			body := testenv.Random(size, 9)
			src.put(body)
			dest := t.TempDir()
			cmd, out := startSI(t, append(src.slow, cloudsRun...), src.uri, dest)
			require.True(t, waitFor(t, 60*time.Second, func() bool { return cloudsJournalLines(dest) >= 1+4 }), "no progress: %s", out)
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			_, _ = cmd.Process.Wait()
			_, err := os.Stat(filepath.Join(dest, "model.safetensors"))
			require.True(t, os.IsNotExist(err), "no final name before the file is complete")

			// Through the same endpoint: the identity a journal is kept for
			// names it (the same object from another endpoint starts over).
			sum := filepath.Join(t.TempDir(), "summary.json")
			_, stderr, code := runSI(t, append(src.slow, cloudsRun...), "--summary-json", sum, src.uri, dest)
			require.Equal(t, 0, code, stderr)
			s3e2eAssertTree(t, dest, map[string][]byte{"model.safetensors": body})
			s := s3e2eReadSummary(t, sum)
			require.Len(t, s.Files, 1)
			assert.Equal(t, "resumed", s.Files[0].Status)
			assert.Equal(t, src.verified, s.Files[0].Verified)
			assert.LessOrEqual(t, s.Fetched, int64(size-4<<20), "the 4+ journaled chunks are not fetched again")
		})
	}
}

// TestE2ECloudsChangedObject replaces the object while the binary reads it:
// the generation (GCS) or ETag (Azure) pin turns that into a clear
// failure, never a file mixing two versions.
func TestE2ECloudsChangedObject(t *testing.T) {
	for _, src := range cloudsSources(t) {
		t.Run(src.name, func(t *testing.T) {
			const size = 24 << 20
			src.put(testenv.Random(size, 1))
			dest := t.TempDir()
			termLog := filepath.Join(t.TempDir(), "termination-log")
			require.NoError(t, os.WriteFile(termLog, nil, 0o644))
			cmd, out := startSI(t, append(src.slow, cloudsRun...), "--termination-log", termLog, src.uri, dest)
			require.True(t, waitFor(t, 60*time.Second, func() bool { return cloudsJournalLines(dest) >= 1+2 }), "no progress: %s", out)
			src.put(testenv.Random(size, 2))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("still running a minute after the object changed: %s", out)
			}
			assert.Equal(t, 1, cmd.ProcessState.ExitCode(), out.String())
			reason, err := os.ReadFile(termLog)
			require.NoError(t, err)
			assert.Contains(t, string(reason), "changed during download")
			_, err = os.Stat(filepath.Join(dest, "model.safetensors"))
			assert.True(t, os.IsNotExist(err), "no mixed file under the final name")
		})
	}
}

// cloudsFault answers planning requests with fail's status while it gives
// one, and counts them.
func cloudsFault(planning func(*http.Request) bool, fail func(n int32) (int, string)) (testenv.Fault, *atomic.Int32) {
	var n atomic.Int32
	return func(r *http.Request) (int, string) {
		if !planning(r) {
			return 0, ""
		}
		return fail(n.Add(1))
	}, &n
}

// TestE2ECloudsPlanningFollowsTheRetryPolicy: planning requests (GCS
// metadata and listings, Azure properties and listings) are retried by the
// run's one policy, not by a loop or SDK of their own: exactly
// --max-attempts attempts, and a Retry-After is waited for.
func TestE2ECloudsPlanningFollowsTheRetryPolicy(t *testing.T) {
	g := testenv.FakeGCS(t)
	a := testenv.Azurite(t)
	bucket := g.Bucket(t)
	c := a.Container(t)
	g.Put(t, bucket, "m/config.json", []byte(`{"model":"tiny"}`))
	a.Put(t, c, "m/config.json", []byte(`{"model":"tiny"}`), true)
	for _, cloud := range []struct {
		name, uri string
		env       func(testenv.Fault) []string
		planning  func(*http.Request) bool
	}{
		{"gcs", "gs://" + bucket + "/m",
			func(f testenv.Fault) []string {
				return []string{"STORAGE_EMULATOR_HOST=" + strings.TrimPrefix(g.FaultProxy(t, f), "http://"), "GCE_METADATA_HOST=127.0.0.1:1"}
			},
			func(r *http.Request) bool { return r.URL.Query().Get("alt") != "media" }},
		{"azure", a.URI(c, "m"),
			func(f testenv.Fault) []string {
				return []string{"AZURE_STORAGE_CONNECTION_STRING=" + a.ConnectionString(a.FaultProxy(t, f)), "AZURE_STORAGE_ACCESS_KEY=" + a.Key}
			},
			func(r *http.Request) bool { return r.Method == http.MethodHead || r.URL.Query().Get("comp") == "list" }},
	} {
		t.Run(cloud.name+" gives up after --max-attempts", func(t *testing.T) {
			fault, n := cloudsFault(cloud.planning, func(int32) (int, string) { return http.StatusInternalServerError, "" })
			stdout, stderr, code := runSI(t, cloud.env(fault), "--max-attempts", "3", cloud.uri, t.TempDir())
			assert.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout, stderr)
			assert.Contains(t, stderr, "server error [HTTP 500")
			assert.Equal(t, int32(3), n.Load(), "the first planning request, tried --max-attempts times and no more")
		})
		t.Run(cloud.name+" waits for Retry-After", func(t *testing.T) {
			fault, n := cloudsFault(cloud.planning, func(n int32) (int, string) {
				if n == 1 {
					return http.StatusTooManyRequests, "2"
				}
				return 0, ""
			})
			dest := t.TempDir()
			start := time.Now()
			stdout, stderr, code := runSI(t, cloud.env(fault), cloud.uri, dest)
			require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
			assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "the policy's first backoff is 200 ms at most; Retry-After asked for 2 s")
			assert.GreaterOrEqual(t, n.Load(), int32(2))
			got, err := os.ReadFile(filepath.Join(dest, "config.json"))
			require.NoError(t, err)
			assert.Equal(t, `{"model":"tiny"}`, string(got))
		})
	}
}
