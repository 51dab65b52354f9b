package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// Node cache on a shared node, end to end with real processes: no process
// waits on itself or on another forever, an entry is never served after it
// was changed on disk, keys name the origin, and a hit needs the pod's own
// access to the origin. docs/node-cache.md states the properties.

// runSIWithin is runSI with a deadline: a hang fails the test instead of
// stalling the suite.
func runSIWithin(t *testing.T, d time.Duration, env []string, args ...string) (stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, siBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &e, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("storage-initializer %v did not finish within %s:\n%s", args, d, e.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return e.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return e.String(), 0
}

type ociFile struct {
	path string
	data []byte
}

// oci2ePushFiles pushes files as an oras-style artifact: one raw layer per
// file, titled with its path (the same bytes at two paths are one blob).
func oci2ePushFiles(t *testing.T, host, repo, tag string, files ...ociFile) {
	t.Helper()
	put := func(data []byte) string {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
		resp, err := http.Post(fmt.Sprintf("http://%s/v2/%s/blobs/uploads/", host, repo), "application/octet-stream", nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		loc, err := resp.Location()
		require.NoError(t, err)
		q := loc.Query()
		q.Set("digest", d)
		loc.RawQuery = q.Encode()
		req, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(data))
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		return d
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	empty := []byte("{}")
	m := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"artifactType": "application/vnd.example.files",
		"config":       desc{MediaType: "application/vnd.oci.empty.v1+json", Digest: put(empty), Size: 2}}
	var ls []desc
	for _, f := range files {
		ls = append(ls, desc{MediaType: "application/octet-stream", Digest: put(f.data), Size: int64(len(f.data)),
			Annotations: map[string]string{"org.opencontainers.image.title": f.path}})
	}
	m["layers"] = ls
	body, _ := json.Marshal(m)
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v2/%s/manifests/%s", host, repo, tag), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
}

func assertFiles(t *testing.T, dest string, files ...ociFile) {
	t.Helper()
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(dest, f.path))
		require.NoError(t, err, f.path)
		assert.True(t, bytes.Equal(f.data, got), "%s has other bytes", f.path)
	}
}

// An OCI artifact with the same bytes at two paths, pulled with a node
// cache at --concurrency 1, finishes; then two processes pulling
// artifacts that share two blobs in opposite order finish too, and the
// registry serves each blob about once.
func TestE2ECacheSharedBlobsNeverDeadlock(t *testing.T) {
	regs := testenv.Registry(t)
	a := testenv.Random(3<<20, 91)
	b := testenv.Random(2<<20, 92)
	repo := oci2eRepo(t)
	oci2ePushFiles(t, regs.Plain, repo, "dup", ociFile{"weights/a.bin", a}, ociFile{"copy/a.bin", a}, ociFile{"b.bin", b})
	oci2ePushFiles(t, regs.Plain, repo, "ab", ociFile{"a.bin", a}, ociFile{"b.bin", b})
	oci2ePushFiles(t, regs.Plain, repo, "ba", ociFile{"b.bin", b}, ociFile{"a.bin", a})
	host, served := registryCounter(t, regs.Plain, 4<<20) // slow: the two pulls overlap
	env := []string{"STORAGE_CACHE_DIR=" + t.TempDir()}

	dest := t.TempDir()
	stderr, code := runSIWithin(t, 90*time.Second, env, "--concurrency", "1", "--chunk-size", "1MiB",
		"oci://"+host+"/"+repo+":dup", dest)
	require.Equal(t, 0, code, stderr)
	assertFiles(t, dest, ociFile{"weights/a.bin", a}, ociFile{"copy/a.bin", a}, ociFile{"b.bin", b})
	assert.LessOrEqual(t, served.Load(), int64(len(a)+len(b))*11/10, "the blob at two paths is fetched once")

	env = []string{"STORAGE_CACHE_DIR=" + t.TempDir()}
	before := served.Load()
	var wg sync.WaitGroup
	dests := []string{t.TempDir(), t.TempDir()}
	codes, errs := make([]int, 2), make([]string, 2)
	for i, tag := range []string{"ab", "ba"} {
		wg.Go(func() {
			errs[i], codes[i] = runSIWithin(t, 90*time.Second, env, "--concurrency", "1", "--chunk-size", "1MiB",
				"oci://"+host+"/"+repo+":"+tag, dests[i])
		})
	}
	wg.Wait()
	for i := range dests {
		require.Equal(t, 0, codes[i], errs[i])
		assertFiles(t, dests[i], ociFile{"a.bin", a}, ociFile{"b.bin", b})
	}
	assert.LessOrEqual(t, served.Load()-before, int64(len(a)+len(b))*11/10, "two pulls in opposite order fetch each blob once")
}

// findEntry returns the cache entry of the given size.
func findEntry(t *testing.T, cacheDir string, size int) string {
	t.Helper()
	var entry string
	require.NoError(t, filepath.WalkDir(filepath.Join(cacheDir, "entries"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(d.Name(), ".") {
			if fi, _ := d.Info(); fi.Size() == int64(size) {
				entry = p
			}
		}
		return err
	}))
	require.NotEmpty(t, entry, "no entry of %d bytes", size)
	return entry
}

// A size-only http file (an ETag, no #sha256): an entry changed in place
// (with its mtime put back) or swapped for another file is never served.
func TestE2ECacheChangedEntryOfASizeOnlyFileIsNeverServed(t *testing.T) {
	body := testenv.Random(3<<20, 93)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "w.bin", time.Unix(1_700_000_000, 0), bytes.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	cacheDir := t.TempDir()
	env := []string{"STORAGE_CACHE_DIR=" + cacheDir}
	src := srv.URL + "/w.bin"
	stderr, code := runSIWithin(t, time.Minute, env, src, t.TempDir())
	require.Equal(t, 0, code, stderr)

	for _, attack := range []string{"in place", "swapped"} {
		entry := findEntry(t, cacheDir, len(body))
		fi, err := os.Stat(entry)
		require.NoError(t, err)
		bad := bytes.Clone(body)
		copy(bad[1<<20:], "poison")
		switch attack {
		case "in place":
			require.NoError(t, os.Chmod(entry, 0o644))
			require.NoError(t, os.WriteFile(entry, bad, 0o644))
			require.NoError(t, os.Chmod(entry, fi.Mode()))
			require.NoError(t, os.Chtimes(entry, fi.ModTime(), fi.ModTime()))
		case "swapped":
			other := filepath.Join(t.TempDir(), "other")
			require.NoError(t, os.WriteFile(entry+".x", bad, 0o444))
			require.NoError(t, os.Rename(entry+".x", entry))
			_ = other
		}
		dest := t.TempDir()
		sum := filepath.Join(t.TempDir(), "s.json")
		stderr, code = runSIWithin(t, time.Minute, env, "--summary-json", sum, src, dest)
		require.Equal(t, 0, code, stderr)
		got, err := os.ReadFile(filepath.Join(dest, "w.bin"))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(body, got), "%s: the changed entry was served", attack)
		assert.Equal(t, "miss", cacheOutcomes(t, sum)["w.bin"], attack)
		assert.Contains(t, stderr, "cache entry failed verification", attack)
	}
}

// Keys name the origin: an endpoint answering with another endpoint's
// bucket, key, ETag and size (here the same MinIO behind a second address)
// fills entries that pods of the real endpoint never receive.
func TestE2ECacheAnotherEndpointNeverFillsTheEntries(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	big := testenv.Random(2<<20, 94)
	// Size only: a multipart-like object without checksums.
	m.Put(t, bucket, "model/w.bin", big, "")
	hostile := cacheProxy(t, m, 0)
	cacheDir := t.TempDir()
	src := "s3://" + bucket + "/model"
	creds := []string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey, "STORAGE_CACHE_DIR=" + cacheDir}
	stderr, code := runSIWithin(t, time.Minute, append(creds, "AWS_ENDPOINT_URL="+hostile.url), src, t.TempDir())
	require.Equal(t, 0, code, stderr)

	real := cacheProxy(t, m, 0) // the real endpoint, counted
	sum := filepath.Join(t.TempDir(), "s.json")
	stderr, code = runSIWithin(t, time.Minute, append(creds, "AWS_ENDPOINT_URL="+real.url), "--summary-json", sum, src, t.TempDir())
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "miss", cacheOutcomes(t, sum)["w.bin"], "an entry filled through another endpoint is not served")
	assert.Equal(t, int64(len(big)), real.served.Load())
}

// A hit is authorised by the pod: planning against the origin with the
// pod's own credentials comes before any lookup, so a pod whose
// credentials the origin refuses gets an error, never the cached object.
func TestE2ECacheHitNeedsThePodsOwnAccess(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "model/w.bin", testenv.Random(1<<20, 95), types.ChecksumAlgorithmCrc64nvme)
	cacheDir := t.TempDir()
	src := "s3://" + bucket + "/model"
	env := []string{"AWS_ENDPOINT_URL=" + m.Endpoint, "STORAGE_CACHE_DIR=" + cacheDir}
	stderr, code := runSIWithin(t, time.Minute, append(env, "AWS_ACCESS_KEY_ID="+m.AccessKey, "AWS_SECRET_ACCESS_KEY="+m.SecretKey), src, t.TempDir())
	require.Equal(t, 0, code, stderr)

	for name, creds := range map[string][]string{
		"wrong secret": {"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=wrong-secret-key"},
		"anonymous":    {"awsAnonymousCredential=true"},
	} {
		dest := t.TempDir()
		stderr, code = runSIWithin(t, time.Minute, append(env, creds...), src, dest)
		assert.NotEqual(t, 0, code, "%s: %s", name, stderr)
		_, err := os.Stat(filepath.Join(dest, "w.bin"))
		assert.ErrorIs(t, err, os.ErrNotExist, "%s: the cached object reached DEST", name)
	}
}

// A process of another UID (what a tenant's container runs as; on a shared
// node it does not even get the mount, see node-cache-policy.yaml) can
// neither modify, replace, remove nor add an entry or its seal, and the
// binary run as that UID treats the cache as unusable and downloads
// directly.
func TestE2ECacheAnotherUIDCannotModifyEntries(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another UID")
	}
	body := testenv.Random(1<<20, 96)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "w.bin", time.Unix(1_700_000_000, 0), bytes.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	base, err := os.MkdirTemp("/var/tmp", "si-uid-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	cacheDir := filepath.Join(base, "cache")
	env := []string{"STORAGE_CACHE_DIR=" + cacheDir}
	stderr, code := runSIWithin(t, time.Minute, env, srv.URL+"/w.bin", filepath.Join(base, "first"))
	require.Equal(t, 0, code, stderr)
	entry := findEntry(t, cacheDir, len(body))

	const tenant = 4243
	asTenant := func(script string) error {
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "E=" + entry, "D=" + filepath.Dir(entry)}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tenant, Gid: tenant}}
		return cmd.Run()
	}
	require.NoError(t, asTenant(`cat "$E" >/dev/null`), "the harness can run a process as UID %d", tenant)
	for what, script := range map[string]string{
		"write the entry":        `printf evil | dd of="$E" conv=notrunc 2>/dev/null`,
		"truncate the entry":     `: > "$E"`,
		"chmod the entry":        `chmod 0666 "$E"`,
		"remove the entry":       `rm -f "$E" && test ! -e "$E"`,
		"rename over the entry":  `printf evil > /tmp/si-evil-$$ && mv -f /tmp/si-evil-$$ "$E"`,
		"rewrite the seal":       `printf 'v1 sha256=00 size=1' > "$E.seal"`,
		"plant a new entry":      `printf evil > "$D/0000000000000000000000000000000000000000000000000000000000000000"`,
		"plant a temporary file": `printf evil > "$D/../../tmp/x.part"`,
	} {
		assert.Error(t, asTenant(script), "UID %d could %s", tenant, what)
	}
	got, err := os.ReadFile(entry)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, got), "the entry is unchanged")

	// The binary as that UID: the cache is not writable for it, so it
	// downloads directly (and correctly).
	dest := filepath.Join(base, "tenant-dest")
	require.NoError(t, os.MkdirAll(dest, 0o755))
	require.NoError(t, os.Chown(dest, tenant, tenant))
	bin := filepath.Join(base, "storage-initializer") // the test binary's folder is private
	b, err := os.ReadFile(siBinary(t))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, b, 0o755))
	cmd := exec.Command(bin, srv.URL+"/w.bin", dest)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dest}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tenant, Gid: tenant}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "node cache disabled")
	got, err = os.ReadFile(filepath.Join(dest, "w.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, got))
}
