package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// Node cache, end to end: real processes sharing one --cache-dir against a
// real MinIO, with a counting (and throttling) proxy in front to measure
// the object bytes the store serves.

type cacheStore struct {
	url    string
	served *atomic.Int64 // object body bytes served (listings excluded)
}

func cacheProxy(t *testing.T, m testenv.MinIOServer, bytesPerSecond int64) cacheStore {
	t.Helper()
	served := &atomic.Int64{}
	addr := m.Proxy(t, testenv.ProxyOptions{BytesPerSecond: bytesPerSecond, Counted: served, Count: func(r *http.Request) bool {
		return r.Method == http.MethodGet && !strings.Contains(r.URL.RawQuery, "list-type") &&
			!strings.Contains(r.URL.RawQuery, "versioning")
	}})
	return cacheStore{url: addr, served: served}
}

// cacheModel seeds a model with a multi-chunk file and small files, all
// with CRC64NVME checksums, and returns its files and total size.
func cacheModel(t *testing.T, m testenv.MinIOServer, bucket string) (map[string][]byte, int64) {
	t.Helper()
	want := map[string][]byte{
		"model.safetensors":  testenv.Random(6<<20, 71),
		"config.json":        []byte(`{"hidden_size": 4096}`),
		"tok/tokenizer.json": testenv.Random(100_000, 72),
	}
	var total int64
	for rel, b := range want {
		m.Put(t, bucket, "model/"+rel, b, types.ChecksumAlgorithmCrc64nvme)
		total += int64(len(b))
	}
	return want, total
}

type cacheSummary struct {
	Files []struct {
		Path  string `json:"path"`
		Cache string `json:"cache"`
	} `json:"files"`
}

func cacheOutcomes(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s cacheSummary
	require.NoError(t, json.Unmarshal(b, &s))
	out := map[string]string{}
	for _, f := range s.Files {
		out[f.Path] = f.Cache
	}
	return out
}

func cacheEnv(m testenv.MinIOServer, store cacheStore, cacheDir string) []string {
	return []string{"AWS_ENDPOINT_URL=" + store.url, "AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey, "STORAGE_CACHE_DIR=" + cacheDir}
}

func TestE2ECacheConcurrentColdPullsFetchOnceThenWarmHits(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	want, total := cacheModel(t, m, bucket)
	store := cacheProxy(t, m, 8<<20) // slow enough that the two pulls overlap
	cacheDir := t.TempDir()
	env := cacheEnv(m, store, cacheDir)
	src := "s3://" + bucket + "/model"

	var wg sync.WaitGroup
	dests := []string{t.TempDir(), t.TempDir()}
	sums := []string{filepath.Join(t.TempDir(), "a.json"), filepath.Join(t.TempDir(), "b.json")}
	codes := make([]int, 2)
	errs := make([]string, 2)
	for i := range dests {
		wg.Go(func() {
			_, errs[i], codes[i] = runSI(t, env, "--chunk-size", "1MiB", "--summary-json", sums[i], src, dests[i])
		})
	}
	wg.Wait()
	for i := range dests {
		require.Equal(t, 0, codes[i], errs[i])
		s3e2eAssertTree(t, dests[i], want)
	}
	assert.LessOrEqual(t, store.served.Load(), total*11/10, "two concurrent cold pulls cost the model's bytes once")
	a, b := cacheOutcomes(t, sums[0]), cacheOutcomes(t, sums[1])
	hits := 0
	for rel := range want {
		if strings.HasPrefix(a[rel], "hit") || strings.HasPrefix(b[rel], "hit") {
			hits++
		}
	}
	assert.Equal(t, len(want), hits, "for every file one pull fetched and the other linked: %v / %v", a, b)

	// Warm: a third pod links everything and the store serves no object byte.
	before := store.served.Load()
	dest := t.TempDir()
	sum := filepath.Join(t.TempDir(), "c.json")
	_, stderr, code := runSI(t, env, "--summary-json", sum, src, dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, want)
	assert.Equal(t, before, store.served.Load())
	for rel, c := range cacheOutcomes(t, sum) {
		assert.Equal(t, "hit (hardlink)", c, rel)
	}
}

func TestE2ECacheKilledPullIsResumedByTheNextProcess(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	want, total := cacheModel(t, m, bucket)
	store := cacheProxy(t, m, 4<<20)
	cacheDir := t.TempDir()
	env := cacheEnv(m, store, cacheDir)
	src := "s3://" + bucket + "/model"

	cmd, out := startSI(t, env, "--chunk-size", "1MiB", "--concurrency", "2", src, t.TempDir())
	journalLines := func() int {
		matches, _ := filepath.Glob(filepath.Join(cacheDir, "tmp", "*.journal"))
		n := 0
		for _, j := range matches {
			b, _ := os.ReadFile(j)
			n += strings.Count(string(b), "\n")
		}
		return n
	}
	require.True(t, waitFor(t, 20*time.Second, func() bool { return journalLines() >= 3 }), out.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	servedFirst := store.served.Load()

	dest := t.TempDir()
	sum := filepath.Join(t.TempDir(), "s.json")
	_, stderr, code := runSI(t, env, "--chunk-size", "1MiB", "--concurrency", "2", "--summary-json", sum, src, dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, want)
	assert.Equal(t, "partial", cacheOutcomes(t, sum)["model.safetensors"], "the dead holder's journal is resumed")
	refetched := store.served.Load() - servedFirst
	assert.Less(t, refetched, total, "the second process fetches only what the first did not write")
	t.Logf("killed pull: first process %d bytes, second %d bytes, model %d bytes", servedFirst, refetched, total)
}

func TestE2ECacheOnTmpfsTamperAndEviction(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	want, total := cacheModel(t, m, bucket)
	store := cacheProxy(t, m, 0)
	// /dev/shm is a tmpfs: another filesystem than DEST's, so no hardlinks.
	cacheDir, err := os.MkdirTemp("/dev/shm", "si-e2e-cache-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(cacheDir) })
	env := cacheEnv(m, store, cacheDir)
	src := "s3://" + bucket + "/model"

	_, stderr, code := runSI(t, env, src, t.TempDir())
	require.Equal(t, 0, code, stderr)
	dest := t.TempDir()
	sum := filepath.Join(t.TempDir(), "s.json")
	_, stderr, code = runSI(t, env, "--summary-json", sum, src, dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, want)
	for rel, c := range cacheOutcomes(t, sum) {
		assert.Contains(t, []string{"hit (copy)", "hit (reflink)"}, c, rel)
	}

	// Tamper with the big entry: detected, replaced, DEST still correct.
	var entry string
	require.NoError(t, filepath.WalkDir(filepath.Join(cacheDir, "entries"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".used") {
			if fi, _ := d.Info(); fi.Size() == int64(len(want["model.safetensors"])) {
				entry = p
			}
		}
		return err
	}))
	require.NotEmpty(t, entry)
	require.NoError(t, os.Chmod(entry, 0o644))
	f, err := os.OpenFile(entry, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("poison"), 4096)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	dest = t.TempDir()
	sum = filepath.Join(t.TempDir(), "t.json")
	_, stderr, code = runSI(t, env, "--summary-json", sum, src, dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, want)
	assert.Equal(t, "miss", cacheOutcomes(t, sum)["model.safetensors"])
	assert.Contains(t, stderr, "cache entry failed verification")

	// A bound smaller than the model: entries beyond it are evicted.
	_, stderr, code = runSI(t, append(env, fmt.Sprintf("STORAGE_CACHE_MAX_BYTES=%d", total/2)), src, t.TempDir())
	require.Equal(t, 0, code, stderr)
	var cached int64
	require.NoError(t, filepath.WalkDir(filepath.Join(cacheDir, "entries"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".used") {
			fi, _ := d.Info()
			cached += fi.Size()
		}
		return err
	}))
	assert.LessOrEqual(t, cached, total/2)
}

func TestE2ECacheUnwritableFallsBackToDirect(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	want, _ := cacheModel(t, m, bucket)
	store := cacheProxy(t, m, 0)
	notADir := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(notADir, nil, 0o644))
	dest := t.TempDir()
	_, stderr, code := runSI(t, cacheEnv(m, store, filepath.Join(notADir, "cache")), "s3://"+bucket+"/model", dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, want)
	assert.Contains(t, stderr, "node cache disabled")
}
