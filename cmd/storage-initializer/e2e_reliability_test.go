package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/faultproxy"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// The reliability suite runs the binary against the real MinIO through
// internal/faultproxy, which injects one kind of fault per case, and
// classifies every run: recovered (exit 0, tree byte-identical), detected
// (exit 1 with the expected reason, nothing wrong under a final name) or
// silently wrong (anything else that left wrong bytes under a final name).

// --- outcomes ---------------------------------------------------------------

type outcome int

const (
	recovered outcome = iota
	detected
	silentlyWrong
	unexpected // a transient fault that was not recovered, or a wrong reason
)

func (o outcome) String() string {
	return [...]string{"recovered", "detected", "silently wrong", "unexpected"}[o]
}

// finalFiles reads every file under its final name in dest (the engine's
// state folder is not part of the result).
func finalFiles(t testing.TB, dest string) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	if _, err := os.Stat(dest); os.IsNotExist(err) {
		return got // killed before it made DEST
	}
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		if d.IsDir() {
			if rel == ".storage-initializer" {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = b
		return err
	})
	require.NoError(t, err)
	return got
}

// classify judges one run. A failed run may leave files it committed
// before failing; they must be byte-identical, and nothing may exist under
// a final name that is not in the source.
func classify(t testing.TB, code int, dest string, want map[string][]byte) outcome {
	t.Helper()
	got := finalFiles(t, dest)
	for rel, b := range got {
		if w, ok := want[rel]; !ok || !bytes.Equal(w, b) {
			t.Logf("WRONG FILE %s under its final name (%d bytes, want %d)", rel, len(b), len(w))
			return silentlyWrong
		}
	}
	if code != 0 {
		return detected
	}
	if len(got) != len(want) {
		t.Logf("exit 0 but %d of %d files in DEST", len(got), len(want))
		return silentlyWrong
	}
	return recovered
}

// faultRow is one line of the fault table.
type faultRow struct {
	name                                          string
	runs, faults, recovered, detected, wrong, bad int
}

type faultTable struct {
	mu   sync.Mutex
	rows []*faultRow
}

func (ft *faultTable) add(name string, o outcome, faults int64) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	var row *faultRow
	for _, r := range ft.rows {
		if r.name == name {
			row = r
		}
	}
	if row == nil {
		row = &faultRow{name: name}
		ft.rows = append(ft.rows, row)
	}
	row.runs++
	row.faults += int(faults)
	switch o {
	case recovered:
		row.recovered++
	case detected:
		row.detected++
	case silentlyWrong:
		row.wrong++
	default:
		row.bad++
	}
}

func (ft *faultTable) String() string {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%-46s %5s %7s %10s %9s %15s\n", "fault kind", "runs", "faults", "recovered", "detected", "silently wrong")
	var tot faultRow
	for _, r := range ft.rows {
		fmt.Fprintf(&b, "%-46s %5d %7d %10d %9d %15d\n", r.name, r.runs, r.faults, r.recovered, r.detected, r.wrong)
		tot.runs += r.runs
		tot.faults += r.faults
		tot.recovered += r.recovered
		tot.detected += r.detected
		tot.wrong += r.wrong
		tot.bad += r.bad
	}
	fmt.Fprintf(&b, "%-46s %5d %7d %10d %9d %15d\n", "total", tot.runs, tot.faults, tot.recovered, tot.detected, tot.wrong)
	if tot.bad > 0 {
		fmt.Fprintf(&b, "%d run(s) ended otherwise (a transient fault not recovered, or a wrong reason)\n", tot.bad)
	}
	return b.String()
}

func (ft *faultTable) wrong() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	n := 0
	for _, r := range ft.rows {
		n += r.wrong
	}
	return n
}

// --- the fault suite --------------------------------------------------------

// relModel is the source every fault case downloads: single-part objects
// with CRC64NVME and SHA-256, a multipart object with a full-object
// CRC64NVME, and small objects verified by their MD5 ETag.
type relModel struct {
	bucket string
	want   map[string][]byte
	chunks int // ranged reads of one full download at 1 MiB chunks
}

func seedRelModel(t *testing.T, m testenv.MinIOServer) relModel {
	t.Helper()
	bucket := m.Bucket(t)
	parts := [][]byte{testenv.Random(5<<20, 31), testenv.Random(1<<20+5, 32)}
	want := map[string][]byte{
		"crc64.bin":       testenv.Random(4<<20+123, 21),
		"sha256.bin":      testenv.Random(3<<20+7, 22),
		"multi.bin":       bytes.Join(parts, nil),
		"config.json":     []byte(`{"architectures":["Tiny"]}`),
		"nested/tok.json": testenv.Random(70_000, 23),
	}
	m.Put(t, bucket, "m/crc64.bin", want["crc64.bin"], types.ChecksumAlgorithmCrc64nvme)
	m.Put(t, bucket, "m/sha256.bin", want["sha256.bin"], types.ChecksumAlgorithmSha256)
	m.PutMultipart(t, bucket, "m/multi.bin", parts, types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeFullObject)
	m.Put(t, bucket, "m/config.json", want["config.json"], "")
	m.Put(t, bucket, "m/nested/tok.json", want["nested/tok.json"], "")
	// A multipart upload without checksums: verified by its multipart ETag.
	m.PutMultipart(t, bucket, "sizeonly/w.bin", parts, "", "")
	// Objects a case rewrites on the server while it is being fetched.
	m.Put(t, bucket, "rewrite/w.bin", testenv.Random(6<<20, 41), types.ChecksumAlgorithmCrc64nvme)
	return relModel{bucket: bucket, want: want, chunks: 5 + 4 + 5 + 2 + 1 + 1}
}

// faultCase is one row of the table: how to fault, and what must happen.
type faultCase struct {
	name   string
	runs   int
	config func(run int) faultproxy.Config
	src    string   // default: the model folder
	args   []string // extra flags
	env    []string // extra environment
	want   outcome
	reason string // substring of the failure reason, for detected cases
	// during runs while the binary is held by the proxy (HoldAfter) and
	// must release it.
	during func(t *testing.T, p *faultproxy.Proxy)
	check  func(t *testing.T, r faultRun)
}

type faultRun struct {
	code           int
	stdout, stderr string
	termLog        string
	elapsed        time.Duration
	stats          faultproxy.Stats
}

func TestReliabilityFaults(t *testing.T) {
	m := testenv.MinIO(t)
	model := seedRelModel(t, m)
	proxy, _ := faultproxy.Start(t, m.Endpoint, faultproxy.Config{})
	objPath := func(rel string) string { return "^/" + model.bucket + "/m/" + strings.ReplaceAll(rel, ".", `\.`) + "$" }
	otherVersion := filepath.Join(t.TempDir(), "crc64-v2")
	require.NoError(t, os.WriteFile(otherVersion, testenv.Random(len(model.want["crc64.bin"]), 99), 0o644))
	every := func(kind faultproxy.Kind, prob float64, extra faultproxy.Rule) func(int) faultproxy.Config {
		return func(run int) faultproxy.Config {
			r := extra
			r.Kind, r.Prob = kind, prob
			return faultproxy.Config{Seed: uint64(run + 1), Rules: []faultproxy.Rule{r}}
		}
	}
	fixed := func(rules ...faultproxy.Rule) func(int) faultproxy.Config {
		return func(run int) faultproxy.Config { return faultproxy.Config{Seed: uint64(run + 1), Rules: rules} }
	}
	const maxAttempts = 3
	cases := []faultCase{
		{name: "reset mid-body (25% of reads)", runs: 3, config: every("reset", 0.25, faultproxy.Rule{At: -1}), want: recovered},
		{name: "truncated body, clean EOF (25%)", runs: 3, config: every("truncate", 0.25, faultproxy.Rule{At: -1}), want: recovered},
		{name: "500 InternalError (25%)", runs: 3, config: every("500", 0.25, faultproxy.Rule{}), want: recovered},
		{name: "503 SlowDown + Retry-After: 1 (2 reads)", runs: 1, config: fixed(faultproxy.Rule{Kind: "503-slowdown", Times: 2, RetryAfter: 1}),
			want: recovered, check: func(t *testing.T, r faultRun) {
				assert.GreaterOrEqual(t, r.elapsed, time.Second, "Retry-After is honoured")
			}},
		{name: "429 + Retry-After: 1 (2 reads)", runs: 1, config: fixed(faultproxy.Rule{Kind: "429", Times: 2, RetryAfter: 1}),
			want: recovered, check: func(t *testing.T, r faultRun) {
				assert.GreaterOrEqual(t, r.elapsed, time.Second, "Retry-After is honoured")
			}},
		{name: "500 on the listing, 503 on a HEAD", runs: 1, config: fixed(
			faultproxy.Rule{Kind: "500", Path: "^/" + model.bucket + "/?$", Times: 2},
			faultproxy.Rule{Kind: "503-slowdown", Method: http.MethodHead, Times: 2}),
			want: recovered},
		{name: "stall 60s mid-body, --read-timeout 1s (2)", runs: 1, config: fixed(faultproxy.Rule{Kind: "stall", At: 100_000, Stall: faultproxy.Duration(60 * time.Second), Times: 2}),
			want: recovered, check: func(t *testing.T, r faultRun) {
				assert.Less(t, r.elapsed, 20*time.Second, "the watchdog broke the stall")
			}},
		{name: "stall 60s before headers, --read-timeout 1s", runs: 1, config: fixed(faultproxy.Rule{Kind: "stall-headers", Stall: faultproxy.Duration(60 * time.Second), Times: 2}),
			want: recovered, check: func(t *testing.T, r faultRun) {
				assert.Less(t, r.elapsed, 20*time.Second, "the watchdog broke the stall")
			}},
		{name: "stall 5m mid-listing (once), S3_READ_TIMEOUT=2", runs: 1, env: []string{"S3_READ_TIMEOUT=2"},
			config: fixed(faultproxy.Rule{Kind: "stall", Path: "^/" + model.bucket + "/?$", At: 50, Stall: faultproxy.Duration(5 * time.Minute), Times: 1}),
			want:   recovered, check: func(t *testing.T, r faultRun) {
				assert.Less(t, r.elapsed, 30*time.Second, "the stalled listing was abandoned and retried")
			}},
		{name: "flipped bit once (CRC64NVME object)", runs: 1, config: fixed(faultproxy.Rule{Kind: "flip", Path: objPath("crc64.bin"), At: -1, Times: 1}),
			want: recovered},
		{name: "flipped bit once (multipart, full CRC64NVME)", runs: 1, config: fixed(faultproxy.Rule{Kind: "flip", Path: objPath("multi.bin"), At: 7, Times: 1}),
			want: recovered},
		{name: "other version once, halfway (CRC64NVME)", runs: 1,
			config: fixed(faultproxy.Rule{Kind: "swap", Path: objPath("crc64.bin"), At: -1, Times: 1, SwapFile: otherVersion}), want: recovered},
		{name: "mixed transient faults (10% each)", runs: 3, config: func(run int) faultproxy.Config {
			return faultproxy.Config{Seed: uint64(100 + run), Rules: []faultproxy.Rule{
				{Kind: "reset", Prob: 0.1, At: -1}, {Kind: "truncate", Prob: 0.1, At: -1}, {Kind: "500", Prob: 0.1},
				{Kind: "flip", Prob: 0.02, At: -1, Times: 1}, {Kind: "stall", Prob: 0.05, At: 10, Stall: faultproxy.Duration(60 * time.Second), Times: 1}}}
		}, want: recovered},

		{name: "flipped bit, every read (CRC64NVME)", runs: 1, config: fixed(faultproxy.Rule{Kind: "flip", Path: objPath("crc64.bin"), At: -1}),
			want: detected, reason: "checksum mismatch for crc64.bin: crc64nvme"},
		{name: "flipped bit, every read (SHA-256)", runs: 1, config: fixed(faultproxy.Rule{Kind: "flip", Path: objPath("sha256.bin"), At: 3}),
			want: detected, reason: "checksum mismatch for sha256.bin: sha256"},
		{name: "flipped bit, every read (multipart CRC64NVME)", runs: 1, config: fixed(faultproxy.Rule{Kind: "flip", Path: objPath("multi.bin"), At: -1}),
			want: detected, reason: "checksum mismatch for multi.bin"},
		{name: "flipped bit, every read (MD5 ETag)", runs: 1, config: fixed(faultproxy.Rule{Kind: "flip", Path: objPath("nested/tok.json"), At: 9}),
			want: detected, reason: "checksum mismatch for nested/tok.json: md5"},
		{name: "other version halfway, every read", runs: 1,
			config: fixed(faultproxy.Rule{Kind: "swap", Path: objPath("crc64.bin"), At: -1, SwapFile: otherVersion}),
			want:   detected, reason: "checksum mismatch for crc64.bin"},
		{name: "multipart object without checksums, --verify=strict: its ETag", runs: 1, src: "s3://" + model.bucket + "/sizeonly",
			config: fixed(faultproxy.Rule{Kind: "flip", At: -1}), args: []string{"--verify", "strict"},
			want: detected, reason: "checksum mismatch for w.bin: md5 of"},
		{name: "object rewritten on the server mid-download", runs: 1, src: "s3://" + model.bucket + "/rewrite",
			config: func(int) faultproxy.Config { return faultproxy.Config{HoldAfter: 1<<20 + 1000} }, args: []string{"--concurrency", "2"},
			want: detected, reason: "changed during download",
			during: func(t *testing.T, p *faultproxy.Proxy) {
				m.Put(t, model.bucket, "rewrite/w.bin", testenv.Random(6<<20, 42), types.ChecksumAlgorithmCrc64nvme)
				p.Release()
			}},
		{name: "stall 5m mid-listing, every listing", runs: 1, env: []string{"S3_READ_TIMEOUT=2"},
			config: fixed(faultproxy.Rule{Kind: "stall", Path: "^/" + model.bucket + "/?$", At: 50, Stall: faultproxy.Duration(5 * time.Minute)}),
			want:   detected, reason: "S3_READ_TIMEOUT", check: func(t *testing.T, r faultRun) {
				assert.Less(t, r.elapsed, 60*time.Second, "no hang: S3_READ_TIMEOUT × the SDK's attempts")
			}},
		{name: fmt.Sprintf("500 on every read, --max-attempts %d", maxAttempts), runs: 1, config: fixed(faultproxy.Rule{Kind: "500"}),
			args: []string{"--max-attempts", fmt.Sprint(maxAttempts)}, want: detected,
			reason: fmt.Sprintf("gave up after %d attempts", maxAttempts),
			check: func(t *testing.T, r faultRun) {
				assert.GreaterOrEqual(t, r.stats.ObjectReads, int64(maxAttempts), "it did retry")
				assert.LessOrEqual(t, r.stats.ObjectReads, int64(model.chunks*maxAttempts), "attempts are bounded per range")
			}},
		{name: "stall on every read, --max-attempts 2", runs: 1, config: fixed(faultproxy.Rule{Kind: "stall", At: 10, Stall: faultproxy.Duration(60 * time.Second)}),
			args: []string{"--max-attempts", "2"}, want: detected, reason: "read timeout",
			check: func(t *testing.T, r faultRun) {
				assert.Less(t, r.elapsed, 20*time.Second, "no hang: read timeout × attempts")
				assert.LessOrEqual(t, r.stats.ObjectReads, int64(model.chunks*2))
			}},
	}

	table := &faultTable{}
	for _, fc := range cases {
		for run := range fc.runs {
			t.Run(fmt.Sprintf("%s/%d", fc.name, run), func(t *testing.T) {
				r, dest := runFaultCase(t, m, proxy, model, fc, run)
				want := model.want
				if fc.src != "" {
					want = map[string][]byte{} // other sources: only failures are expected
				}
				o := classify(t, r.code, dest, want)
				if o == detected && fc.want == detected {
					if !strings.Contains(r.stderr, fc.reason) || !strings.Contains(r.termLog, fc.reason) {
						t.Errorf("reason %q missing\nstderr: %s\ntermination log: %s", fc.reason, r.stderr, r.termLog)
						o = unexpected
					}
					assert.Equal(t, 1, r.code)
					assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.termLog), "\n")+1, "one-line reason")
					t.Logf("reason: %s", strings.TrimSpace(r.termLog))
				}
				table.add(fc.name, o, r.stats.FaultCount())
				if fc.want == recovered {
					assert.Positive(t, r.stats.FaultCount(), "the fault must actually hit for the run to count")
				}
				assert.Equal(t, fc.want.String(), o.String(), "stderr: %s", r.stderr)
				if fc.check != nil {
					fc.check(t, r)
				}
				if o == recovered {
					_, err := os.Stat(filepath.Join(dest, ".storage-initializer"))
					assert.True(t, os.IsNotExist(err), "no state folder left after success")
				}
			})
		}
	}
	t.Logf("fault table (S3 through faultproxy, 1 MiB chunks):\n%s", table)
	assert.Zero(t, table.wrong(), "no run may leave wrong bytes under a final name")
}

func runFaultCase(t *testing.T, m testenv.MinIOServer, proxy *faultproxy.Proxy, model relModel, fc faultCase, run int) (faultRun, string) {
	t.Helper()
	require.NoError(t, proxy.Reconfigure(fc.config(run), 30*time.Second))
	dest := t.TempDir()
	termLog := filepath.Join(t.TempDir(), "termination-log")
	require.NoError(t, os.WriteFile(termLog, nil, 0o644))
	src := fc.src
	if src == "" {
		src = "s3://" + model.bucket + "/m"
	}
	env := append(append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+proxy.URL), fc.env...)
	args := append([]string{"--chunk-size", "1MiB", "--concurrency", "4", "--read-timeout", "1s",
		"--max-attempts", "8", "--termination-log", termLog}, fc.args...)
	args = append(args, src, dest)
	var r faultRun
	start := time.Now()
	if fc.during == nil {
		r.stdout, r.stderr, r.code = runSI(t, env, args...)
	} else {
		cmd, out := startSI(t, env, args...)
		require.True(t, waitFor(t, 20*time.Second, func() bool { return proxy.Stats().Held }), "the proxy never held: %s", out)
		fc.during(t, proxy)
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.code = ee.ExitCode()
		}
		r.stderr = out.String()
	}
	r.elapsed = time.Since(start)
	r.stats = proxy.Stats()
	b, _ := os.ReadFile(termLog)
	r.termLog = string(b)
	return r, dest
}

// --- kill and resume --------------------------------------------------------

const (
	killChunk       = 1 << 20 // --chunk-size
	killConcurrency = 4       // --concurrency: requests in flight
)

// killScenario is one source downloaded again and again with SIGKILLs.
type killScenario struct {
	name          string
	src           string
	env           []string
	size          int64 // bytes the proxy serves for one full download
	chains        int   // fresh DESTs
	killsPerChain int
	seed          uint64
	// count restricts the proxy's byte counter to these paths (regexp).
	count string
	// kept is the progress DEST holds: bytes a rerun will not fetch again.
	kept func(t *testing.T, dest string) int64
	// bound is the most bytes one kill may cost (served and not kept).
	bound int64
	// check asserts the final tree after the successful rerun.
	check func(t *testing.T, dest string)
}

// killFigures are the byte counts a scenario reports.
type killFigures struct {
	kills     int
	chains    int
	bound     int64 // the most one kill may cost
	size      int64 // bytes of the source, per chain
	fetched   int64 // bytes served over all runs of all chains
	maxWaste  int64 // worst bytes served in one killed run and not kept
	sumWasted int64
}

func (f killFigures) String() string {
	need := f.size * int64(f.chains)
	return fmt.Sprintf("%d chains × %s = %s needed, %d SIGKILLs; fetched %s in all runs: re-fetched %s (%.1f%%); "+
		"per kill %s on average, worst %s (bound %s)",
		f.chains, mib(f.size), mib(need), f.kills, mib(f.fetched), mib(f.fetched-need), 100*float64(f.fetched-need)/float64(need),
		mib(f.sumWasted/int64(max(f.kills, 1))), mib(f.maxWaste), mib(f.bound))
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// keptBytes is the progress DEST holds: files under their final name plus
// the chunks the engine's resume journals list. It reads the journal
// format (a JSON header line with path and size, then one chunk index per
// line; chunks of --chunk-size from offset 0) to measure what a rerun will
// not fetch again.
func keptBytes(t *testing.T, dest string, want map[string][]byte) int64 {
	t.Helper()
	var kept int64
	final := finalFiles(t, dest)
	for rel, b := range final {
		require.True(t, bytes.Equal(want[rel], b), "%s is wrong under its final name", rel)
		kept += int64(len(b))
	}
	journals, _ := filepath.Glob(filepath.Join(dest, ".storage-initializer", "*.journal"))
	for _, j := range journals {
		data, err := os.ReadFile(j)
		require.NoError(t, err)
		lines := strings.Split(string(data), "\n")
		var hdr struct {
			Path string `json:"path"`
			Size int64  `json:"size"`
		}
		require.NoError(t, json.Unmarshal([]byte(lines[0]), &hdr), "journal header of %s", j)
		if _, done := final[hdr.Path]; done {
			continue // committed; the journal is removed right after
		}
		seen := map[int64]bool{}
		for _, l := range lines[1:] {
			var i int64
			if _, err := fmt.Sscanf(l, "%d", &i); err != nil || seen[i] {
				continue // a torn last line is ignored by the engine too
			}
			seen[i] = true
			kept += min(killChunk, hdr.Size-i*killChunk)
		}
	}
	return kept
}

// waitExit waits for cmd in the background.
func waitExit(cmd *exec.Cmd) <-chan error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done
}

func runKillResume(t *testing.T, proxy *faultproxy.Proxy, sc killScenario) killFigures {
	t.Helper()
	rng := newRand(sc.seed)
	size := sc.size
	fig := killFigures{size: size, chains: sc.chains, bound: sc.bound}
	for chain := range sc.chains {
		dest := filepath.Join(t.TempDir(), "dest")
		args := []string{"--chunk-size", "1MiB", "--concurrency", fmt.Sprint(killConcurrency), sc.src, dest}
		var prev int64 // bytes kept before this run
		for k := range sc.killsPerChain {
			left := size - prev
			if left < 2 {
				break
			}
			// The first kill of a chain is by time (it may land in
			// planning); the others stop the client at a byte count: the
			// proxy serves exactly that many object bytes, then holds.
			byTime := k == 0
			threshold := 1 + rng.Int64N(left-1)
			cfg := faultproxy.Config{HoldAfter: threshold, Count: sc.count}
			if byTime {
				// Held one byte short of the end, so a fast run cannot
				// finish before the kill lands.
				cfg = faultproxy.Config{HoldAfter: left - 1, Count: sc.count}
			}
			require.NoError(t, proxy.Reconfigure(cfg, 30*time.Second))
			cmd, out := startSI(t, sc.env, args...)
			exited := waitExit(cmd)
			if byTime {
				time.Sleep(time.Duration(20+rng.Int64N(300)) * time.Millisecond)
			} else {
				held := waitFor(t, 60*time.Second, func() bool { return proxy.Stats().Held })
				require.True(t, held, "chain %d kill %d: never reached %d bytes: %s", chain, k, threshold, out)
				// A random moment after the hold: the client may still be
				// writing and recording what it received.
				time.Sleep(time.Duration(rng.Int64N(20)) * time.Millisecond)
			}
			_ = cmd.Process.Signal(syscall.SIGKILL)
			err := <-exited
			proxy.Release()
			if err == nil {
				// Finished before the kill (a time-based kill can be late).
				t.Logf("chain %d kill %d: the run completed before the kill", chain, k)
				fig.fetched += proxy.Stats().ObjectBytes
				prev = size
				break
			}
			served := proxy.Stats().ObjectBytes
			kept := sc.kept(t, dest)
			require.GreaterOrEqual(t, kept, prev, "progress is never lost")
			waste := served - (kept - prev)
			t.Logf("chain %d kill %2d (%s): served %s, kept %s more, re-fetch cost %s",
				chain, k, map[bool]string{true: "by time", false: "at " + mib(threshold)}[byTime],
				mib(served), mib(kept-prev), mib(waste))
			assert.LessOrEqual(t, waste, sc.bound, "bytes served but not kept must fit in what was in flight")
			fig.kills++
			fig.fetched += served
			fig.sumWasted += waste
			fig.maxWaste = max(fig.maxWaste, waste)
			prev = kept
		}
		require.NoError(t, proxy.Reconfigure(faultproxy.Config{Count: sc.count}, 30*time.Second))
		stdout, stderr, code := runSI(t, sc.env, args...)
		require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
		final := proxy.Stats().ObjectBytes
		fig.fetched += final
		assert.LessOrEqual(t, final, size-prev, "the rerun fetches only what was not kept")
		sc.check(t, dest)
		_, err := os.Stat(filepath.Join(dest, ".storage-initializer"))
		assert.True(t, os.IsNotExist(err), "no temp or journal file left after success")
	}
	assert.Equal(t, fig.sumWasted, fig.fetched-size*int64(sc.chains), "every byte re-fetched is accounted to a kill")
	t.Logf("%s: %s", sc.name, fig)
	return fig
}

// s3KillScenario downloads src (whose files are want) through proxy with
// --concurrency 4 and 1 MiB chunks: a kill costs at most one chunk per
// request in flight.
func s3KillScenario(m testenv.MinIOServer, proxy *faultproxy.Proxy, name, src string, want map[string][]byte, seed uint64) killScenario {
	var size int64
	for _, b := range want {
		size += int64(len(b))
	}
	return killScenario{name: name, src: src, env: append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+proxy.URL), size: size,
		chains: 4, killsPerChain: 5, seed: seed, bound: killConcurrency * killChunk,
		kept:  func(t *testing.T, dest string) int64 { return keptBytes(t, dest, want) },
		check: func(t *testing.T, dest string) { s3e2eAssertTree(t, dest, want) }}
}

func TestKillResumeS3LargeFile(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	body := testenv.Random(64<<20, 51)
	m.Put(t, bucket, "big/model.safetensors", body, types.ChecksumAlgorithmCrc64nvme)
	proxy, _ := faultproxy.Start(t, m.Endpoint, faultproxy.Config{})
	fig := runKillResume(t, proxy, s3KillScenario(m, proxy, "S3 64 MiB file, 1 MiB chunks", "s3://"+bucket+"/big",
		map[string][]byte{"model.safetensors": body}, 7))
	assert.GreaterOrEqual(t, fig.kills, 20, "at least 20 kill points")
}

func TestKillResumeS3ManyFiles(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	want := map[string][]byte{}
	rng := newRand(11)
	for i := range 300 {
		rel := fmt.Sprintf("shard-%02d/file-%03d.bin", i%17, i)
		want[rel] = testenv.Random(1+int(rng.Int64N(96<<10)), int64(i))
	}
	putAll(t, m, bucket, "many/", want, types.ChecksumAlgorithmCrc32c)
	proxy, _ := faultproxy.Start(t, m.Endpoint, faultproxy.Config{})
	fig := runKillResume(t, proxy, s3KillScenario(m, proxy, "S3 300 small files", "s3://"+bucket+"/many", want, 13))
	assert.GreaterOrEqual(t, fig.kills, 20, "at least 20 kill points")
}

// putAll uploads files under prefix with 8 uploads in flight.
func putAll(t *testing.T, m testenv.MinIOServer, bucket, prefix string, files map[string][]byte, alg types.ChecksumAlgorithm) {
	t.Helper()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for rel, b := range files {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			m.Put(t, bucket, prefix+rel, b, alg)
		})
	}
	wg.Wait()
}

func TestSigtermStopsFastAndResumes(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	const size = 64 << 20
	body := testenv.Random(size, 61)
	m.Put(t, bucket, "big/model.safetensors", body, types.ChecksumAlgorithmCrc64nvme)
	proxy, _ := faultproxy.Start(t, m.Endpoint, faultproxy.Config{})
	dest := t.TempDir()
	termLog := filepath.Join(t.TempDir(), "termination-log")
	require.NoError(t, os.WriteFile(termLog, nil, 0o644))
	env := append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+proxy.URL)
	args := []string{"--chunk-size", "1MiB", "--concurrency", fmt.Sprint(killConcurrency), "--termination-log", termLog,
		"s3://" + bucket + "/big", dest}

	const heldAt = 20 << 20
	require.NoError(t, proxy.Reconfigure(faultproxy.Config{HoldAfter: heldAt}, 30*time.Second))
	cmd, out := startSI(t, env, args...)
	exited := waitExit(cmd)
	require.True(t, waitFor(t, 60*time.Second, func() bool { return proxy.Stats().Held }), "no progress: %s", out)
	time.Sleep(100 * time.Millisecond) // let the client journal what it has
	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	var err error
	select {
	case err = <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM: %s", out)
	}
	took := time.Since(start)
	proxy.Release()
	t.Logf("SIGTERM: exited in %s with %v", took, err)
	assert.Less(t, took, 2*time.Second, "exits within 2 seconds of SIGTERM")
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "non-zero exit: %v", err)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, out.String(), "stopped by signal")
	assert.Contains(t, out.String(), "rerun with the same arguments to resume")
	reason, _ := os.ReadFile(termLog)
	assert.Contains(t, string(reason), "stopped by signal")
	_, statErr := os.Stat(filepath.Join(dest, "model.safetensors"))
	assert.True(t, os.IsNotExist(statErr), "no final name for an incomplete file")
	kept := keptBytes(t, dest, map[string][]byte{"model.safetensors": body})
	assert.GreaterOrEqual(t, kept, int64(heldAt-killConcurrency*killChunk), "what was received is journaled")

	require.NoError(t, proxy.Reconfigure(faultproxy.Config{}, 30*time.Second))
	_, stderr, code := runSI(t, env, args...)
	require.Equal(t, 0, code, stderr)
	fetched := proxy.Stats().ObjectBytes
	t.Logf("SIGTERM at %s served: rerun fetched %s of %s", mib(heldAt), mib(fetched), mib(size))
	assert.Less(t, fetched, int64(size), "the rerun resumes")
	assert.LessOrEqual(t, fetched, int64(size)-kept)
	s3e2eAssertTree(t, dest, map[string][]byte{"model.safetensors": body})
}

// newRand is a seeded generator: every random choice of this suite
// (fault draws, kill points) is reproducible from its seed.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0xD1B54A32D192ED03)) }

// TestKillResumeOCILayers kills the binary at 20 seeded points while it
// pulls a modelcar of 8 gzip layers through the proxy. Layers are streamed
// through the decompressor and extractor, so the OCI provider resumes whole
// layers (a ".done" record per verified layer), not chunks: one kill costs
// at most the layers in flight (2 at a time) in full.
func TestKillResumeOCILayers(t *testing.T) {
	s := testenv.Registry(t)
	const layerJobs = 2 // oci.DefaultLayerJobs
	want := map[string][]byte{}
	var layers [][]byte
	for i := range 8 {
		l, body := oci2eLayer(t, fmt.Sprintf("part-%d.bin", i), 1_500_000+i*100_000, uint64(40+i))
		layers = append(layers, l)
		want[fmt.Sprintf("part-%d.bin", i)] = body
	}
	repo := oci2eRepo(t)
	digests, sizes := oci2ePush(t, s.Plain, repo, "v1", layers...)
	sizeOf := map[string]int64{}
	var total, biggest int64
	for i, d := range digests {
		sizeOf[d] = sizes[i]
		total += sizes[i]
		biggest = max(biggest, sizes[i])
	}
	proxy, _ := faultproxy.Start(t, "http://"+s.Plain, faultproxy.Config{})
	src := "oci://" + strings.TrimPrefix(proxy.URL, "http://") + "/" + repo + ":v1"
	// Only layer bytes count: every run reads the manifest and config again.
	count := "/blobs/(" + strings.Join(digests, "|") + ")$"
	fig := runKillResume(t, proxy, killScenario{name: "OCI modelcar, 8 gzip layers", src: src, size: total, count: count,
		chains: 4, killsPerChain: 5, seed: 17, bound: layerJobs * biggest,
		kept: func(t *testing.T, dest string) int64 {
			if len(finalFiles(t, dest)) > 0 {
				return total // committed
			}
			var kept int64
			// The engine's unit state: one record per verified blob, its
			// identity ending with the layer digest (oci REPO@DIGEST).
			marks, _ := filepath.Glob(filepath.Join(dest, ".storage-initializer", "unit-*", "blob-*.done"))
			for _, mk := range marks {
				var rec struct {
					Identity string `json:"identity"`
				}
				b, err := os.ReadFile(mk)
				require.NoError(t, err)
				require.NoError(t, json.Unmarshal(b, &rec), "layer record %s", mk)
				kept += sizeOf[rec.Identity[strings.LastIndex(rec.Identity, "@")+1:]]
			}
			return kept
		},
		check: func(t *testing.T, dest string) { oci2eCheckTree(t, dest, want) },
	})
	assert.GreaterOrEqual(t, fig.kills, 20, "at least 20 kill points")
}

// TestReliabilityFaultsOCI runs the fault kinds against the real registry
// (a modelcar of three gzip layers) through the proxy, with the same
// classification and table as the S3 suite.
func TestReliabilityFaultsOCI(t *testing.T) {
	s := testenv.Registry(t)
	want := map[string][]byte{}
	var layers [][]byte
	for i := range 3 {
		l, body := oci2eLayer(t, fmt.Sprintf("w-%d.bin", i), 600_000+i*200_000, uint64(60+i))
		layers = append(layers, l)
		want[fmt.Sprintf("w-%d.bin", i)] = body
	}
	repo := oci2eRepo(t)
	digests, sizes := oci2ePush(t, s.Plain, repo, "v1", layers...)
	otherVersion := filepath.Join(t.TempDir(), "layer-v2")
	require.NoError(t, os.WriteFile(otherVersion, testenv.Random(int(sizes[1]), 98), 0o644))
	proxy, _ := faultproxy.Start(t, "http://"+s.Plain, faultproxy.Config{})
	src := "oci://" + strings.TrimPrefix(proxy.URL, "http://") + "/" + repo + ":v1"
	blobs := "/blobs/(" + strings.Join(digests, "|") + ")$"
	one := "/blobs/" + digests[1] + "$"
	const streamAttempts = 5 // --max-attempts default: OCI layer ranges use the engine's retry policy

	cases := []struct {
		name   string
		runs   int
		rules  []faultproxy.Rule
		want   outcome
		reason string
		check  func(t *testing.T, st faultproxy.Stats, elapsed time.Duration)
	}{
		// Layers are read in one range each here, so faults hit fixed reads
		// (run r skips r of them) rather than a share of many.
		{name: "reset mid-body (2 layer reads)", runs: 3, rules: []faultproxy.Rule{{Kind: "reset", Path: blobs, Times: 2, At: -1}}, want: recovered},
		{name: "truncated body, clean EOF (2 reads)", runs: 3, rules: []faultproxy.Rule{{Kind: "truncate", Path: blobs, Times: 2, At: -1}}, want: recovered},
		{name: "500 (2 layer reads)", runs: 3, rules: []faultproxy.Rule{{Kind: "500", Path: blobs, Times: 2}}, want: recovered},
		{name: "429 + Retry-After (2 reads)", runs: 1, rules: []faultproxy.Rule{{Kind: "429", Path: blobs, Times: 2, RetryAfter: 1}}, want: recovered},
		{name: "stall 3s mid-body (once)", runs: 1, rules: []faultproxy.Rule{{Kind: "stall", Path: one, At: 1000, Stall: faultproxy.Duration(3 * time.Second), Times: 1}}, want: recovered},
		{name: "flipped bit once", runs: 1, rules: []faultproxy.Rule{{Kind: "flip", Path: one, At: -1, Times: 1}}, want: recovered},
		{name: "other version halfway once", runs: 1, rules: []faultproxy.Rule{{Kind: "swap", Path: one, At: -1, Times: 1, SwapFile: otherVersion}}, want: recovered},
		{name: "flipped bit, every read", runs: 1, rules: []faultproxy.Rule{{Kind: "flip", Path: one, At: -1}}, want: detected, reason: "digest mismatch"},
		{name: "other version halfway, every read", runs: 1, rules: []faultproxy.Rule{{Kind: "swap", Path: one, At: -1, SwapFile: otherVersion}},
			want: detected, reason: "digest mismatch"},
		{name: "500 on every layer read", runs: 1, rules: []faultproxy.Rule{{Kind: "500", Path: one}}, want: detected,
			reason: fmt.Sprintf("gave up after %d attempts", streamAttempts),
			check: func(t *testing.T, st faultproxy.Stats, _ time.Duration) {
				assert.LessOrEqual(t, st.Faults["500"], int64(streamAttempts), "attempts are bounded")
			}},
	}
	table := &faultTable{}
	for _, fc := range cases {
		for run := range fc.runs {
			t.Run(fmt.Sprintf("%s/%d", fc.name, run), func(t *testing.T) {
				rules := slices.Clone(fc.rules)
				for i := range rules {
					rules[i].Skip = run
				}
				require.NoError(t, proxy.Reconfigure(faultproxy.Config{Seed: uint64(run + 1), Rules: rules}, 30*time.Second))
				dest := filepath.Join(t.TempDir(), "m")
				termLog := filepath.Join(t.TempDir(), "termination-log")
				require.NoError(t, os.WriteFile(termLog, nil, 0o644))
				start := time.Now()
				_, stderr, code := runSI(t, nil, "--termination-log", termLog, src, dest)
				elapsed := time.Since(start)
				st := proxy.Stats()
				o := classify(t, code, dest, want)
				if o == detected && fc.want == detected {
					reason, _ := os.ReadFile(termLog)
					if !strings.Contains(logText(stderr), fc.reason) || !strings.Contains(string(reason), fc.reason) {
						t.Errorf("reason %q missing\nstderr: %s\ntermination log: %s", fc.reason, stderr, reason)
						o = unexpected
					}
					assert.Equal(t, 1, code)
				}
				table.add(fc.name, o, st.FaultCount())
				assert.Equal(t, fc.want.String(), o.String(), "stderr: %s", stderr)
				if fc.want == recovered {
					assert.Positive(t, st.FaultCount(), "the fault must actually hit for the run to count")
					oci2eCheckTree(t, dest, want)
				}
				if fc.check != nil {
					fc.check(t, st, elapsed)
				}
			})
		}
	}
	t.Logf("fault table (OCI registry through faultproxy, 3 gzip layers):\n%s", table)
	assert.Zero(t, table.wrong(), "no run may leave wrong bytes under a final name")
}

// TestSigtermOCIStopsFastAndResumes is the SIGTERM check for a modelcar:
// layers are being streamed through decompressors and extractors when the
// signal comes.
func TestSigtermOCIStopsFastAndResumes(t *testing.T) {
	s := testenv.Registry(t)
	want := map[string][]byte{}
	var layers [][]byte
	for i := range 6 {
		l, body := oci2eLayer(t, fmt.Sprintf("part-%d.bin", i), 1_500_000, uint64(70+i))
		layers = append(layers, l)
		want[fmt.Sprintf("part-%d.bin", i)] = body
	}
	repo := oci2eRepo(t)
	digests, sizes := oci2ePush(t, s.Plain, repo, "v1", layers...)
	var total int64
	for _, n := range sizes {
		total += n
	}
	count := "/blobs/(" + strings.Join(digests, "|") + ")$"
	proxy, _ := faultproxy.Start(t, "http://"+s.Plain, faultproxy.Config{})
	src := "oci://" + strings.TrimPrefix(proxy.URL, "http://") + "/" + repo + ":v1"
	dest := filepath.Join(t.TempDir(), "m")
	termLog := filepath.Join(t.TempDir(), "termination-log")
	require.NoError(t, os.WriteFile(termLog, nil, 0o644))

	require.NoError(t, proxy.Reconfigure(faultproxy.Config{HoldAfter: total * 2 / 3, Count: count}, 30*time.Second))
	cmd, out := startSI(t, nil, "--termination-log", termLog, src, dest)
	exited := waitExit(cmd)
	require.True(t, waitFor(t, 60*time.Second, func() bool { return proxy.Stats().Held }), "no progress: %s", out)
	time.Sleep(200 * time.Millisecond) // let finished layers be recorded
	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	var err error
	select {
	case err = <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM: %s", out)
	}
	took := time.Since(start)
	proxy.Release()
	t.Logf("SIGTERM (OCI): exited in %s with %v", took, err)
	assert.Less(t, took, 2*time.Second, "exits within 2 seconds of SIGTERM")
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "non-zero exit: %v", err)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, out.String(), "stopped by signal")
	reason, _ := os.ReadFile(termLog)
	assert.Contains(t, string(reason), "stopped by signal")
	assert.Empty(t, finalFiles(t, dest), "nothing committed from an incomplete image")

	require.NoError(t, proxy.Reconfigure(faultproxy.Config{Count: count}, 30*time.Second))
	_, stderr, code := runSI(t, nil, src, dest)
	require.Equal(t, 0, code, stderr)
	fetched := proxy.Stats().ObjectBytes
	t.Logf("SIGTERM (OCI) at %s of %s: rerun fetched %s", mib(total*2/3), mib(total), mib(fetched))
	assert.Less(t, fetched, total, "the rerun keeps the layers verified before the signal")
	oci2eCheckTree(t, dest, want)
}
