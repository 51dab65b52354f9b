package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The reliability suite runs the binary against the real MinIO through
// pkg/internal/faultproxy, which injects one kind of fault per case, and
// classifies every run: recovered (exit 0, tree byte-identical), detected
// (exit 1 with the expected reason, nothing wrong under a final name) or
// silently wrong (anything else that left wrong bytes under a final name).
// Go's internal rule keeps this package from importing the proxy, so it
// runs as its own process (pkg/internal/faultproxy/cmd/faultproxy) and is
// driven over its admin API; fp* below mirror its JSON types.

// fpRule mirrors faultproxy.Rule.
type fpRule struct {
	Kind       string  `json:"kind"`
	Method     string  `json:"method,omitempty"`
	Path       string  `json:"path,omitempty"`
	Skip       int     `json:"skip,omitempty"`
	Times      int     `json:"times,omitempty"`
	Prob       float64 `json:"prob,omitempty"`
	At         int64   `json:"at,omitempty"`
	Stall      string  `json:"stall,omitempty"`
	RetryAfter int     `json:"retry_after,omitempty"`
	SwapFile   string  `json:"swap_file,omitempty"`
}

// fpConfig mirrors faultproxy.Config.
type fpConfig struct {
	Seed      uint64   `json:"seed"`
	Rules     []fpRule `json:"rules,omitempty"`
	HoldAfter int64    `json:"hold_after,omitempty"`
}

// fpStats mirrors faultproxy.Stats.
type fpStats struct {
	Requests    int64            `json:"requests"`
	ObjectReads int64            `json:"object_reads"`
	ObjectBytes int64            `json:"object_bytes"`
	Bytes       int64            `json:"bytes"`
	Faults      map[string]int64 `json:"faults"`
	Held        bool             `json:"held"`
}

var (
	fpBuildOnce sync.Once
	fpBinPath   string
	fpBuildErr  error
)

func fpBinary(t testing.TB) string {
	t.Helper()
	fpBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "si-faultproxy-")
		if err != nil {
			fpBuildErr = err
			return
		}
		fpBinPath = filepath.Join(dir, "faultproxy")
		cmd := exec.Command("go", "build", "-o", fpBinPath,
			"github.com/storage-initializer/storage-initializer/pkg/internal/faultproxy/cmd/faultproxy")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fpBuildErr = errors.New(string(out))
		}
	})
	if fpBuildErr != nil {
		t.Fatalf("build faultproxy: %v", fpBuildErr)
	}
	return fpBinPath
}

// fpProxy is a running faultproxy process.
type fpProxy struct {
	URL string
	hc  *http.Client
}

// startFaultProxy runs a faultproxy in front of target until the test ends.
func startFaultProxy(t *testing.T, target string) *fpProxy {
	t.Helper()
	cmd := exec.Command(fpBinary(t), "-target", target)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		url, ok := strings.CutPrefix(strings.TrimSpace(l), "listening on ")
		require.True(t, ok, "faultproxy said %q", l)
		return &fpProxy{URL: url, hc: &http.Client{Timeout: 10 * time.Second}}
	case <-time.After(10 * time.Second):
		t.Fatal("faultproxy did not start")
		return nil
	}
}

func (p *fpProxy) call(t testing.TB, method, op string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		require.NoError(t, err)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.URL+"/_faultproxy/"+op, body)
	require.NoError(t, err)
	resp, err := p.hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Less(t, resp.StatusCode, 300, "faultproxy %s: %s", op, b)
	if out != nil {
		require.NoError(t, json.Unmarshal(b, out))
	}
}

// set replaces the schedule and zeroes the counters.
func (p *fpProxy) set(t testing.TB, cfg fpConfig) {
	t.Helper()
	p.call(t, http.MethodPost, "reset", nil, nil)
	p.call(t, http.MethodPut, "config", cfg, nil)
}

func (p *fpProxy) stats(t testing.TB) fpStats {
	t.Helper()
	var s fpStats
	p.call(t, http.MethodGet, "stats", nil, &s)
	return s
}

// faults is the number of faults injected.
func (s fpStats) faults() int64 {
	var n int64
	for _, v := range s.Faults {
		n += v
	}
	return n
}

func (p *fpProxy) release(t testing.TB) { p.call(t, http.MethodPost, "release", nil, nil) }

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

func seedRelModel(t *testing.T, m s3e2eServer) relModel {
	t.Helper()
	bucket := m.Bucket(t)
	parts := [][]byte{s3e2eRandom(5<<20, 31), s3e2eRandom(1<<20+5, 32)}
	want := map[string][]byte{
		"crc64.bin":       s3e2eRandom(4<<20+123, 21),
		"sha256.bin":      s3e2eRandom(3<<20+7, 22),
		"multi.bin":       bytes.Join(parts, nil),
		"config.json":     []byte(`{"architectures":["Tiny"]}`),
		"nested/tok.json": s3e2eRandom(70_000, 23),
	}
	m.Put(t, bucket, "m/crc64.bin", want["crc64.bin"], types.ChecksumAlgorithmCrc64nvme)
	m.Put(t, bucket, "m/sha256.bin", want["sha256.bin"], types.ChecksumAlgorithmSha256)
	m.PutMultipart(t, bucket, "m/multi.bin", parts, types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeFullObject)
	m.Put(t, bucket, "m/config.json", want["config.json"], "")
	m.Put(t, bucket, "m/nested/tok.json", want["nested/tok.json"], "")
	// A multipart upload without checksums: verifiable by size only.
	m.PutMultipart(t, bucket, "sizeonly/w.bin", parts, "", "")
	// Objects a case rewrites on the server while it is being fetched.
	m.Put(t, bucket, "rewrite/w.bin", s3e2eRandom(6<<20, 41), types.ChecksumAlgorithmCrc64nvme)
	return relModel{bucket: bucket, want: want, chunks: 5 + 4 + 5 + 2 + 1 + 1}
}

// faultCase is one row of the table: how to fault, and what must happen.
type faultCase struct {
	name   string
	runs   int
	config func(run int) fpConfig
	src    string   // default: the model folder
	args   []string // extra flags
	want   outcome
	reason string // substring of the failure reason, for detected cases
	// during runs while the binary is held by the proxy (HoldAfter) and
	// must release it.
	during func(t *testing.T, p *fpProxy)
	check  func(t *testing.T, r faultRun)
}

type faultRun struct {
	code           int
	stdout, stderr string
	termLog        string
	elapsed        time.Duration
	stats          fpStats
}

func TestReliabilityFaults(t *testing.T) {
	m := s3e2eMinIO(t)
	model := seedRelModel(t, m)
	proxy := startFaultProxy(t, m.Endpoint)
	objPath := func(rel string) string { return "^/" + model.bucket + "/m/" + strings.ReplaceAll(rel, ".", `\.`) + "$" }
	otherVersion := filepath.Join(t.TempDir(), "crc64-v2")
	require.NoError(t, os.WriteFile(otherVersion, s3e2eRandom(len(model.want["crc64.bin"]), 99), 0o644))
	every := func(kind string, prob float64, extra fpRule) func(int) fpConfig {
		return func(run int) fpConfig {
			r := extra
			r.Kind, r.Prob = kind, prob
			return fpConfig{Seed: uint64(run + 1), Rules: []fpRule{r}}
		}
	}
	fixed := func(rules ...fpRule) func(int) fpConfig {
		return func(run int) fpConfig { return fpConfig{Seed: uint64(run + 1), Rules: rules} }
	}
	const maxAttempts = 3
	cases := []faultCase{
		{name: "reset mid-body (25% of reads)", runs: 3, config: every("reset", 0.25, fpRule{At: -1}), want: recovered},
		{name: "truncated body, clean EOF (25%)", runs: 3, config: every("truncate", 0.25, fpRule{At: -1}), want: recovered},
		{name: "500 InternalError (25%)", runs: 3, config: every("500", 0.25, fpRule{}), want: recovered},
		{name: "503 SlowDown + Retry-After: 1 (2 reads)", runs: 1, config: fixed(fpRule{Kind: "503-slowdown", Times: 2, RetryAfter: 1}),
			want: recovered, check: func(t *testing.T, r faultRun) {
				assert.GreaterOrEqual(t, r.elapsed, time.Second, "Retry-After is honoured")
			}},
		{name: "429 + Retry-After: 1 (2 reads)", runs: 1, config: fixed(fpRule{Kind: "429", Times: 2, RetryAfter: 1}),
			want: recovered, check: func(t *testing.T, r faultRun) {
				assert.GreaterOrEqual(t, r.elapsed, time.Second, "Retry-After is honoured")
			}},
		{name: "500 on the listing, 503 on a HEAD", runs: 1, config: fixed(
			fpRule{Kind: "500", Path: "^/" + model.bucket + "/?$", Times: 2},
			fpRule{Kind: "503-slowdown", Method: http.MethodHead, Times: 2}),
			want: recovered},
		{name: "stall 60s mid-body, --read-timeout 1s (2)", runs: 1, config: fixed(fpRule{Kind: "stall", At: 100_000, Stall: "60s", Times: 2}),
			want: recovered, check: func(t *testing.T, r faultRun) {
				assert.Less(t, r.elapsed, 20*time.Second, "the watchdog broke the stall")
			}},
		{name: "stall 60s before headers, --read-timeout 1s", runs: 1, config: fixed(fpRule{Kind: "stall-headers", Stall: "60s", Times: 2}),
			want: recovered, check: func(t *testing.T, r faultRun) {
				assert.Less(t, r.elapsed, 20*time.Second, "the watchdog broke the stall")
			}},
		{name: "flipped bit once (CRC64NVME object)", runs: 1, config: fixed(fpRule{Kind: "flip", Path: objPath("crc64.bin"), At: -1, Times: 1}),
			want: recovered},
		{name: "flipped bit once (multipart, full CRC64NVME)", runs: 1, config: fixed(fpRule{Kind: "flip", Path: objPath("multi.bin"), At: 7, Times: 1}),
			want: recovered},
		{name: "other version once, halfway (CRC64NVME)", runs: 1,
			config: fixed(fpRule{Kind: "swap", Path: objPath("crc64.bin"), At: -1, Times: 1, SwapFile: otherVersion}), want: recovered},
		{name: "mixed transient faults (10% each)", runs: 3, config: func(run int) fpConfig {
			return fpConfig{Seed: uint64(100 + run), Rules: []fpRule{
				{Kind: "reset", Prob: 0.1, At: -1}, {Kind: "truncate", Prob: 0.1, At: -1}, {Kind: "500", Prob: 0.1},
				{Kind: "flip", Prob: 0.02, At: -1, Times: 1}, {Kind: "stall", Prob: 0.05, At: 10, Stall: "60s", Times: 1}}}
		}, want: recovered},

		{name: "flipped bit, every read (CRC64NVME)", runs: 1, config: fixed(fpRule{Kind: "flip", Path: objPath("crc64.bin"), At: -1}),
			want: detected, reason: "checksum mismatch for crc64.bin: crc64nvme"},
		{name: "flipped bit, every read (SHA-256)", runs: 1, config: fixed(fpRule{Kind: "flip", Path: objPath("sha256.bin"), At: 3}),
			want: detected, reason: "checksum mismatch for sha256.bin: sha256"},
		{name: "flipped bit, every read (multipart CRC64NVME)", runs: 1, config: fixed(fpRule{Kind: "flip", Path: objPath("multi.bin"), At: -1}),
			want: detected, reason: "checksum mismatch for multi.bin"},
		{name: "flipped bit, every read (MD5 ETag)", runs: 1, config: fixed(fpRule{Kind: "flip", Path: objPath("nested/tok.json"), At: 9}),
			want: detected, reason: "checksum mismatch for nested/tok.json: md5"},
		{name: "other version halfway, every read", runs: 1,
			config: fixed(fpRule{Kind: "swap", Path: objPath("crc64.bin"), At: -1, SwapFile: otherVersion}),
			want:   detected, reason: "checksum mismatch for crc64.bin"},
		{name: "size-only object, --verify=strict", runs: 1, src: "s3://" + model.bucket + "/sizeonly",
			config: fixed(fpRule{Kind: "flip", At: -1}), args: []string{"--verify", "strict"},
			want: detected, reason: "no checksum stronger than the size",
			check: func(t *testing.T, r faultRun) {
				assert.Zero(t, r.stats.ObjectReads, "refused before a byte is fetched")
			}},
		{name: "object rewritten on the server mid-download", runs: 1, src: "s3://" + model.bucket + "/rewrite",
			config: func(int) fpConfig { return fpConfig{HoldAfter: 1<<20 + 1000} }, args: []string{"--concurrency", "2"},
			want: detected, reason: "changed during download",
			during: func(t *testing.T, p *fpProxy) {
				m.Put(t, model.bucket, "rewrite/w.bin", s3e2eRandom(6<<20, 42), types.ChecksumAlgorithmCrc64nvme)
				p.release(t)
			}},
		{name: fmt.Sprintf("500 on every read, --max-attempts %d", maxAttempts), runs: 1, config: fixed(fpRule{Kind: "500"}),
			args: []string{"--max-attempts", fmt.Sprint(maxAttempts)}, want: detected,
			reason: fmt.Sprintf("gave up after %d attempts", maxAttempts),
			check: func(t *testing.T, r faultRun) {
				assert.GreaterOrEqual(t, r.stats.ObjectReads, int64(maxAttempts), "it did retry")
				assert.LessOrEqual(t, r.stats.ObjectReads, int64(model.chunks*maxAttempts), "attempts are bounded per range")
			}},
		{name: "stall on every read, --max-attempts 2", runs: 1, config: fixed(fpRule{Kind: "stall", At: 10, Stall: "60s"}),
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
				}
				table.add(fc.name, o, r.stats.faults())
				if fc.want == recovered {
					assert.Positive(t, r.stats.faults(), "the fault must actually hit for the run to count")
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

func runFaultCase(t *testing.T, m s3e2eServer, proxy *fpProxy, model relModel, fc faultCase, run int) (faultRun, string) {
	t.Helper()
	proxy.set(t, fc.config(run))
	dest := t.TempDir()
	termLog := filepath.Join(t.TempDir(), "termination-log")
	require.NoError(t, os.WriteFile(termLog, nil, 0o644))
	src := fc.src
	if src == "" {
		src = "s3://" + model.bucket + "/m"
	}
	env := append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+proxy.URL)
	args := append([]string{"--chunk-size", "1MiB", "--concurrency", "4", "--read-timeout", "1s",
		"--max-attempts", "8", "--termination-log", termLog}, fc.args...)
	args = append(args, src, dest)
	var r faultRun
	start := time.Now()
	if fc.during == nil {
		r.stdout, r.stderr, r.code = runSI(t, env, args...)
	} else {
		cmd, out := startSI(t, env, args...)
		require.True(t, waitFor(t, 20*time.Second, func() bool { return proxy.stats(t).Held }), "the proxy never held: %s", out)
		fc.during(t, proxy)
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.code = ee.ExitCode()
		}
		r.stderr = out.String()
	}
	r.elapsed = time.Since(start)
	r.stats = proxy.stats(t)
	b, _ := os.ReadFile(termLog)
	r.termLog = string(b)
	return r, dest
}
