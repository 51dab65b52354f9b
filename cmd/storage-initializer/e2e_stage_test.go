package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/faultproxy"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// OCI staging as an engine job with explicit state (issue 10): a modelcar
// pull, with and without --cache-dir, failed at each phase — a layer blob
// that cannot be fetched, a reset mid-blob, a blob whose bytes do not match
// its digest, a SIGKILL while blobs are unpacked, merged or committed, and
// at seeded random times — then rerun into the same DEST with the fault
// removed: exit 0 and exactly the model. And a rerun after a successful
// pull fetches nothing, unless a file was changed in place.

// accStageImage is a modelcar in the real registry, reached through a fault
// proxy whose blob GETs a gauge counts.
type accStageImage struct {
	src     string
	want    map[string][]byte
	digests []string
	proxy   *faultproxy.Proxy
	blobs   *faultproxy.Gauge // counts blob GETs only
	refuse  *accRefuse
}

// accRefuse answers GETs of one path with a fixed status while set.
type accRefuse struct {
	suffix string
	status int
}

func (a *accRefuse) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.status != 0 && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, a.suffix) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(a.status)
			fmt.Fprintf(w, `{"errors":[{"code":"BLOB_UNKNOWN","message":"refused by the test"}]}`)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// accStageModelcar pushes 3 gzip tar layers: each holds a weights file of
// size bytes, files small files (a merge and a commit that take a while)
// and models/config.json, which later layers overwrite.
func accStageModelcar(t *testing.T, size, files int) *accStageImage {
	t.Helper()
	r := testenv.Registry(t)
	want := map[string][]byte{}
	var layers []accLayer
	for i := range 3 {
		content := map[string][]byte{}
		w := testenv.Random(size, int64(700+i))
		content[fmt.Sprintf("models/layer-%d/weights.bin", i)] = w
		for j := range files {
			content[fmt.Sprintf("models/small-%d/%03d/f-%04d.txt", i, j/100, j)] = []byte(fmt.Sprintf("layer %d file %d\n", i, j))
		}
		content["models/config.json"] = []byte(fmt.Sprintf(`{"layer":%d}`, i))
		for p, b := range content {
			want[strings.TrimPrefix(p, "models/")] = b
		}
		layers = append(layers, accLayer{MediaType: accMTLayerGzip, Data: accTarGz(t, content)})
	}
	repo := accRepo(t)
	digests := accPush(t, r.Plain, repo, "v1", "", accImageConfig(), layers...)
	img := &accStageImage{want: want, digests: digests, refuse: &accRefuse{suffix: "/blobs/" + digests[1]},
		blobs: &faultproxy.Gauge{Count: func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/")
		}}}
	var url string
	img.proxy, url = accFront(t, "http://"+r.Plain, img.blobs, faultproxy.Config{}, img.refuse.wrap)
	img.src = "oci://" + accHost(url) + "/" + repo + ":v1"
	return img
}

// accOutside lists what DEST holds outside the state folder.
func accOutside(t *testing.T, dest string) []string {
	t.Helper()
	entries, _ := accTree(t, dest)
	var out []string
	for _, e := range entries {
		rel := e[2:]
		if rel != engineStateDir && !strings.HasPrefix(rel, engineStateDir+"/") {
			out = append(out, e)
		}
	}
	return out
}

const engineStateDir = ".storage-initializer"

// accWaitExit waits for cmd in the background.
func accWaitExit(cmd *exec.Cmd) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	return ch
}

func accCacheArgs(t *testing.T, cache bool) []string {
	args := []string{"--chunk-size", "256KiB", "--concurrency", "4"}
	if cache {
		args = append(args, "--cache-dir", t.TempDir())
	}
	return args
}

func TestE2EStageFailedAtEachPhaseThenRerun(t *testing.T) {
	img := accStageModelcar(t, 600_000, 20)
	layer1 := "/blobs/" + img.digests[1]
	faults := []struct {
		name  string
		set   func()
		flags []string
	}{
		{"blob-404", func() { img.refuse.status = http.StatusNotFound }, []string{"--max-attempts", "2"}},
		{"blob-500-after-attempts", func() { img.refuse.status = http.StatusInternalServerError }, []string{"--max-attempts", "2"}},
		{"reset-mid-blob", func() {
			require.NoError(t, img.proxy.SetConfig(faultproxy.Config{Rules: []faultproxy.Rule{{Kind: faultproxy.Reset, Path: layer1 + "$", At: -1}}}))
		}, []string{"--max-attempts", "1"}},
		{"digest-mismatch", func() {
			require.NoError(t, img.proxy.SetConfig(faultproxy.Config{Rules: []faultproxy.Rule{{Kind: faultproxy.Flip, Path: layer1 + "$", At: 1000}}}))
		}, []string{"--max-attempts", "2"}},
	}
	for _, cache := range []bool{false, true} {
		for _, f := range faults {
			t.Run(fmt.Sprintf("%s/cache-%v", f.name, cache), func(t *testing.T) {
				dest := filepath.Join(t.TempDir(), "m")
				args := accCacheArgs(t, cache)
				f.set()
				_, stderr, code := runSI(t, nil, append(append(args, f.flags...), img.src, dest)...)
				img.refuse.status = 0
				require.NoError(t, img.proxy.SetConfig(faultproxy.Config{}))
				assert.NotEqual(t, 0, code, "the fault did not fail the pull: %s", lastLines(stderr, 5))
				assert.Empty(t, accOutside(t, dest), "files committed into DEST by a failed pull")

				_, stderr, code = runSI(t, nil, append(args, img.src, dest)...)
				require.Equal(t, 0, code, "rerun: %s", lastLines(stderr, 10))
				accExactly(t, dest, img.want, "after the rerun")
			})
		}
	}
}

// accPhaseNow reads the unit's phase marker ("" when there is none) and
// whether a blob has been recorded as done.
func accPhaseNow(dest string) (phase string, blobDone bool) {
	units, _ := filepath.Glob(filepath.Join(dest, engineStateDir, "unit-*"))
	for _, u := range units {
		if b, err := os.ReadFile(filepath.Join(u, "phase")); err == nil {
			_ = json.Unmarshal(b, &phase)
		}
		if m, _ := filepath.Glob(filepath.Join(u, "blob-*.done")); len(m) > 0 {
			blobDone = true
		}
	}
	return phase, blobDone
}

// accKillAt starts a pull and SIGKILLs it as soon as when says so; it
// reports whether the kill came before the process ended by itself.
func accKillAt(t *testing.T, args []string, dest string, when func() bool) bool {
	t.Helper()
	cmd, out := startSI(t, nil, args...)
	exited := accWaitExit(cmd)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Logf("the pull ended before the kill: %s", lastLines(out.String(), 3))
			return false
		default:
		}
		if when() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			return true
		}
		time.Sleep(100 * time.Microsecond) // leave the CPU to the pull
	}
	t.Fatalf("neither the kill condition nor the end came: %s", out)
	return false
}

func TestE2EStageKilledAtEachPhaseThenRerun(t *testing.T) {
	img := accStageModelcar(t, 1_000_000, 800)
	phases := []struct {
		name string
		when func(dest string) bool
	}{
		{"unpacking", func(dest string) bool { _, done := accPhaseNow(dest); return done }},
		{"merging", func(dest string) bool { p, _ := accPhaseNow(dest); return p == "merging" }},
		{"merged-or-committing", func(dest string) bool { p, _ := accPhaseNow(dest); return p == "merged" || p == "committing" }},
		{"committing", func(dest string) bool { p, _ := accPhaseNow(dest); return p == "committing" }},
	}
	for _, cache := range []bool{false, true} {
		for _, ph := range phases {
			t.Run(fmt.Sprintf("%s/cache-%v", ph.name, cache), func(t *testing.T) {
				dest := filepath.Join(t.TempDir(), "m")
				args := accCacheArgs(t, cache)
				killed := accKillAt(t, append(args, img.src, dest), dest, func() bool { return ph.when(dest) })
				assert.True(t, killed, "the %s phase was never seen (the run ended first)", ph.name)
				p, _ := accPhaseNow(dest)
				t.Logf("killed; phase marker now %q; outside the state folder: %d entries", p, len(accOutside(t, dest)))

				_, stderr, code := runSI(t, nil, append(args, img.src, dest)...)
				require.Equal(t, 0, code, "rerun: %s", lastLines(stderr, 10))
				accExactly(t, dest, img.want, "after the rerun")
			})
		}
	}
}

// TestE2EStageKilledAtRandomThenRerun kills a chain of pulls into one DEST
// at seeded random times within most of a clean run's length, then lets one
// finish: exactly the model.
func TestE2EStageKilledAtRandomThenRerun(t *testing.T) {
	img := accStageModelcar(t, 1_000_000, 800)
	for _, cache := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache-%v", cache), func(t *testing.T) {
			args := accCacheArgs(t, cache)
			start := time.Now()
			_, stderr, code := runSI(t, nil, append(args, img.src, filepath.Join(t.TempDir(), "clean"))...)
			require.Equal(t, 0, code, stderr)
			clean := time.Since(start)
			rnd := rand.New(rand.NewPCG(10, uint64(len(args))))
			for seed := range 5 {
				dest := filepath.Join(t.TempDir(), "m")
				args := accCacheArgs(t, cache) // a cold cache for each chain
				var at []string
				for range 2 {
					d := time.Duration(rnd.Int64N(int64(clean) * 8 / 10))
					cmd, _ := startSI(t, nil, append(args, img.src, dest)...)
					exited := accWaitExit(cmd)
					select {
					case <-exited:
						at = append(at, "ended")
					case <-time.After(d):
						_ = cmd.Process.Signal(syscall.SIGKILL)
						<-exited
						p, _ := accPhaseNow(dest)
						at = append(at, fmt.Sprintf("%s(%q)", d.Round(time.Millisecond), p))
					}
				}
				t.Logf("chain %d: killed at %v (clean run %s)", seed, at, clean.Round(time.Millisecond))
				_, stderr, code := runSI(t, nil, append(args, img.src, dest)...)
				require.Equal(t, 0, code, "chain %d (%v): rerun: %s", seed, at, lastLines(stderr, 10))
				accExactly(t, dest, img.want, fmt.Sprintf("chain %d (%v)", seed, at))
			}
		})
	}
}

// accSummary reads --summary-json: status by path.
func accSummary(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s struct {
		Files []struct {
			Path   string `json:"path"`
			Status string `json:"status"`
		} `json:"files"`
	}
	require.NoError(t, json.Unmarshal(b, &s))
	out := map[string]string{}
	for _, f := range s.Files {
		out[f.Path] = f.Status
	}
	return out
}

func TestE2EStageRerunAfterSuccessFetchesNothing(t *testing.T) {
	img := accStageModelcar(t, 400_000, 5)
	for _, cache := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache-%v", cache), func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "m")
			args := accCacheArgs(t, cache)
			_, stderr, code := runSI(t, nil, append(args, img.src, dest)...)
			require.Equal(t, 0, code, stderr)
			accExactly(t, dest, img.want)

			img.blobs.Reset()
			sum := filepath.Join(t.TempDir(), "summary.json")
			_, stderr, code = runSI(t, nil, append(args, "--summary-json", sum, img.src, dest)...)
			require.Equal(t, 0, code, stderr)
			assert.Zero(t, img.blobs.Total(), "a rerun of the same image into the same DEST fetched blobs: %v", img.blobs.Seen())
			accExactly(t, dest, img.want)
			statuses := accSummary(t, sum)
			assert.Len(t, statuses, len(img.want))
			for p := range img.want {
				assert.Equal(t, "present", statuses[p], "%s in the summary", p)
			}

			// The same size, other bytes, changed in place: fetched again.
			victim := filepath.Join(dest, "layer-1", "weights.bin")
			f, err := os.OpenFile(victim, os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte("tampered"), 1000)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			img.blobs.Reset()
			_, stderr, code = runSI(t, nil, append(args, img.src, dest)...)
			require.Equal(t, 0, code, stderr)
			if !cache {
				assert.NotZero(t, img.blobs.Total(), "the changed file was not fetched again")
			}
			accExactly(t, dest, img.want, "after a file was changed in place")
		})
	}
}

// TestE2EStageCorruptTarRepushedThenRerun pushes a modelcar whose second
// layer matches its digest but is not a tar (extraction fails; the proxy
// holds that blob a second so the other layers are verified first, and
// kept for a rerun), then fixes the tag (a new image, so a new unit) and
// reruns into the same DEST: exactly the model, and nothing left of the
// failed image's stage.
func TestE2EStageCorruptTarRepushedThenRerun(t *testing.T) {
	r := testenv.Registry(t)
	repo := accRepo(t)
	layers, want := accModelcar(t, 9, 300_000, 3)
	bad := append([]accLayer(nil), layers...)
	garbage := accTarGz(t, map[string][]byte{"x": testenv.Random(100_000, 99)})
	bad[1] = accLayer{MediaType: accMTLayerGzip, Data: garbage[:len(garbage)/2]} // a gzip stream cut halfway
	_, url := accFront(t, "http://"+r.Plain, nil, faultproxy.Config{Rules: []faultproxy.Rule{
		{Kind: faultproxy.StallHeaders, Path: "/blobs/" + bad[1].digest() + "$", Stall: faultproxy.Duration(time.Second)}}})
	src := "oci://" + accHost(url) + "/" + repo + ":v1"
	for _, cache := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache-%v", cache), func(t *testing.T) {
			accPush(t, r.Plain, repo, "v1", "", accImageConfig(), bad...)
			dest := filepath.Join(t.TempDir(), "m")
			args := accCacheArgs(t, cache)
			_, stderr, code := runSI(t, nil, append(args, "--max-attempts", "2", src, dest)...)
			assert.NotEqual(t, 0, code, "a layer that is not a tar was accepted: %s", lastLines(stderr, 5))
			assert.Empty(t, accOutside(t, dest), "files committed into DEST by a failed pull")
			kept, _ := filepath.Glob(filepath.Join(dest, engineStateDir, "unit-*", "blob-*.done"))
			t.Logf("verified blobs kept by the failed pull: %d; %s", len(kept), lastLines(stderr, 6))

			accPush(t, r.Plain, repo, "v1", "", accImageConfig(), layers...)
			_, stderr, code = runSI(t, nil, append(args, src, dest)...)
			require.Equal(t, 0, code, "rerun: %s", lastLines(stderr, 10))
			accExactly(t, dest, want, "after the fixed image was pulled into the same DEST")
		})
	}
}

// TestE2EStageModelPackRerunFetchesNothing: a ModelPack mixing a raw layer
// (a plain file) and a tar layer (a unit) is not fetched again by a rerun.
func TestE2EStageModelPackRerunFetchesNothing(t *testing.T) {
	r := testenv.Registry(t)
	w := testenv.Random(700_000, 81)
	docs := map[string][]byte{"README.md": []byte("# m\n"), "sub/notes.txt": testenv.Random(50_000, 82)}
	cfg := accLayer{MediaType: accMTMPConfig, Data: []byte(`{"descriptor":{"name":"m"}}`)}
	accPush(t, r.Plain, accRepo(t), "v1", accMTModelPack, cfg,
		accLayer{MediaType: accMTMPRaw, Data: w, Annotations: map[string]string{"org.cncf.model.filepath": "model.safetensors"}},
		accLayer{MediaType: "application/vnd.cncf.model.doc.v1.tar+gzip", Data: accTarGz(t, docs),
			Annotations: map[string]string{"org.cncf.model.filepath": "docs"}},
	)
	want := map[string][]byte{"model.safetensors": w, "docs/README.md": docs["README.md"], "docs/sub/notes.txt": docs["sub/notes.txt"]}
	blobs := &faultproxy.Gauge{Count: func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/")
	}}
	_, url := accFront(t, "http://"+r.Plain, blobs, faultproxy.Config{})
	src := "oci://" + accHost(url) + "/" + accRepo(t) + ":v1"
	for _, cache := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache-%v", cache), func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "m")
			args := accCacheArgs(t, cache)
			_, stderr, code := runSI(t, nil, append(args, src, dest)...)
			require.Equal(t, 0, code, stderr)
			accExactly(t, dest, want)
			blobs.Reset()
			sum := filepath.Join(t.TempDir(), "summary.json")
			_, stderr, code = runSI(t, nil, append(args, "--summary-json", sum, src, dest)...)
			require.Equal(t, 0, code, stderr)
			assert.Zero(t, blobs.Total(), "a rerun fetched blobs: %v", blobs.Seen())
			accExactly(t, dest, want)
			for p, st := range accSummary(t, sum) {
				assert.Equal(t, "present", st, p)
			}
		})
	}
}
