package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/filter"
)

const usageLine = "usage: storage-initializer [flags] SRC DEST [SRC DEST ...]   (storage-initializer --help for flags)"

var errHelp = errors.New("help requested")

// config is everything the command line and environment decide.
type config struct {
	pairs          []string
	concurrency    int
	chunkSize      int64
	verify         engine.VerifyMode
	maxAttempts    int
	readTimeout    time.Duration
	logFormat      string
	logLevel       string
	console        bool // human output on a terminal
	terminationLog string
	summaryJSON    string
	progressEvery  time.Duration
	showVersion    bool
	dryRun         bool
	filter         func(string) bool

	// providers
	pvcRoot, pvcMode, manifest string
	platform, caBundle         string
	insecureRegistries         []string
	registryMirrors            []string

	// tar-bomb caps for OCI layers (0: the extractor's defaults)
	maxExtractBytes   int64
	maxExtractEntries int64

	// node cache
	cacheDir      string
	cacheMaxBytes int64
	cacheWait     time.Duration

	// verificationDigest pins the single file or archive SRC names
	// (KServe's VERIFICATION_DIGEST); nil: not set.
	verificationDigest *checksum.Value

	// signature: the model-signing bundle and policy (signature_config.go).
	signature sigConfig
}

// envFlag pairs a flag with the environment variable that sets its default.
type envFlag struct{ flag, env string }

// flagEnv lists every flag's environment variable (documented in README).
var flagEnv = []envFlag{
	{"concurrency", "STORAGE_INITIALIZER_CONCURRENCY"},
	{"chunk-size", "STORAGE_INITIALIZER_CHUNK_SIZE"},
	{"verify", "STORAGE_INITIALIZER_VERIFY"},
	{"max-attempts", "STORAGE_INITIALIZER_MAX_ATTEMPTS"},
	{"read-timeout", "STORAGE_INITIALIZER_READ_TIMEOUT"},
	{"log-format", "STORAGE_INITIALIZER_LOG_FORMAT"},
	{"log-level", "STORAGE_INITIALIZER_LOG_LEVEL"},
	{"termination-log", "STORAGE_INITIALIZER_TERMINATION_LOG"},
	{"summary-json", "STORAGE_INITIALIZER_SUMMARY_JSON"},
	{"progress-interval", "STORAGE_INITIALIZER_PROGRESS_INTERVAL"},
	{"include", "STORAGE_ALLOW_PATTERNS"},
	{"exclude", "STORAGE_IGNORE_PATTERNS"},
	{"pvc-root", "STORAGE_INITIALIZER_PVC_ROOT"},
	{"pvc-mode", "STORAGE_INITIALIZER_PVC_MODE"},
	{"manifest", "STORAGE_INITIALIZER_MANIFEST"},
	{"platform", "STORAGE_INITIALIZER_PLATFORM"},
	{"ca-bundle", "STORAGE_INITIALIZER_CA_BUNDLE"},
	{"registry-mirror", "STORAGE_INITIALIZER_REGISTRY_MIRROR"},
	{"dry-run", "STORAGE_INITIALIZER_DRY_RUN"},
	{"max-extract-bytes", "STORAGE_INITIALIZER_MAX_EXTRACT_BYTES"},
	{"max-extract-entries", "STORAGE_INITIALIZER_MAX_EXTRACT_ENTRIES"},
	{"cache-dir", "STORAGE_CACHE_DIR"},
	{"cache-max-bytes", "STORAGE_CACHE_MAX_BYTES"},
	{"verification-digest", "VERIFICATION_DIGEST"},
	{"cache-wait", "STORAGE_CACHE_WAIT"},
}

// allFlagEnv is flagEnv and the signature flags' variables.
func allFlagEnv() []envFlag { return append(append([]envFlag(nil), flagEnv...), sigFlagEnv...) }

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := pflag.NewFlagSet("storage-initializer", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	var chunk, verify, cacheMax, extractMax, digest string
	var include, exclude []string
	var sig sigFlags
	fs.IntVar(&cfg.concurrency, "concurrency", engine.DefaultConcurrency, "requests in flight across all files")
	fs.StringVar(&chunk, "chunk-size", "16MiB", "size of each ranged read (e.g. 8MiB, 32MiB)")
	fs.StringVar(&verify, "verify", "auto", "verification: auto (strongest checksum offered, else size), strict (fail without a checksum), size")
	fs.IntVar(&cfg.maxAttempts, "max-attempts", engine.DefaultMaxAttempts, "attempts per range before giving up")
	fs.DurationVar(&cfg.readTimeout, "read-timeout", engine.DefaultReadTimeout, "abort and retry a request that delivers no bytes for this long")
	fs.StringVar(&cfg.logFormat, "log-format", "", "json or console (default: console on a terminal, else json)")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.terminationLog, "termination-log", "/dev/termination-log", "file that receives a one-line reason on failure (skipped when not writable)")
	fs.StringVar(&cfg.summaryJSON, "summary-json", "", "write the per-file integrity record (size, verification, digest) as JSON to this path")
	fs.DurationVar(&cfg.progressEvery, "progress-interval", 5*time.Second, "how often to log progress when not on a terminal")
	fs.StringSliceVar(&include, "include", nil, "only fetch paths matching these globs (comma list or JSON array)")
	fs.StringSliceVar(&exclude, "exclude", nil, "skip paths matching these globs (comma list or JSON array)")
	fs.StringVar(&cfg.pvcRoot, "pvc-root", "/mnt/pvc", "where pvc:// claims are mounted")
	fs.StringVar(&cfg.pvcMode, "pvc-mode", "symlink", "pvc:// and local sources: symlink, copy or verify")
	fs.StringVar(&cfg.manifest, "manifest", "", "sha256sum-format manifest to verify pvc:// and local sources against")
	fs.StringVar(&cfg.platform, "platform", "", "platform to pick from a multi-arch OCI index (default linux/<this arch>)")
	fs.StringVar(&cfg.caBundle, "ca-bundle", "", "PEM file of extra CAs to trust for OCI registries")
	fs.StringSliceVar(&cfg.insecureRegistries, "insecure-registry", nil, "allow plain http and unverified TLS for these OCI registries (host[:port]; alone: all) [also KSERVE_OCI_INSECURE_REGISTRY: true or a list]")
	fs.Lookup("insecure-registry").NoOptDefVal = "*"
	fs.StringSliceVar(&cfg.registryMirrors, "registry-mirror", nil, "pull OCI images through this mirror (host[:port], every registry) or REGISTRY=MIRROR; repeatable; falls back to the registry when the mirror fails")
	fs.StringVar(&cfg.cacheDir, "cache-dir", "", "node-local cache folder shared by pods (hostPath); empty: no cache")
	fs.StringVar(&cacheMax, "cache-max-bytes", "0", "bound on the cache size, e.g. 200GiB (least recently used entries are evicted); 0: no bound")
	fs.DurationVar(&cfg.cacheWait, "cache-wait", engine.DefaultCacheWait, "how long to wait for another process filling the same cache entry while it makes no progress; then download directly")
	fs.StringVar(&extractMax, "max-extract-bytes", "1TiB", "cap on the bytes unpacked from the tar layers of one OCI image or artifact (tar bombs)")
	fs.Int64Var(&cfg.maxExtractEntries, "max-extract-entries", 1_000_000, "cap on the entries unpacked from one OCI image or artifact")
	fs.StringVar(&digest, "verification-digest", "", "sha256:HEX the single file or archive SRC names must have (KServe's verification-digest annotation); checked before it gets its final name, even with --verify=size")
	addSignatureFlags(fs, &sig)
	fs.BoolVar(&cfg.dryRun, "dry-run", false, "resolve the sources and list what would be fetched (count, size, verification available); write nothing")
	fs.BoolVar(&cfg.showVersion, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, usageLine)
		fmt.Fprintln(stderr, "\nFlags (each also settable by the environment variable in brackets):")
		fmt.Fprint(stderr, fs.FlagUsages())
	}
	for _, fe := range allFlagEnv() {
		fl := fs.Lookup(fe.flag)
		fl.Usage += " [" + fe.env + "]"
	}
	// KServe's Python initializer reads S3_MAX_ATTEMPTS; honour it when our
	// own variable is not set.
	if getenv("STORAGE_INITIALIZER_MAX_ATTEMPTS") == "" && getenv("S3_MAX_ATTEMPTS") != "" {
		if err := fs.Set("max-attempts", getenv("S3_MAX_ATTEMPTS")); err != nil {
			return cfg, &usageError{fmt.Sprintf("invalid S3_MAX_ATTEMPTS=%q: %v", getenv("S3_MAX_ATTEMPTS"), err)}
		}
	}
	// Environment first, so flags given on the command line win.
	for _, fe := range allFlagEnv() {
		if v := getenv(fe.env); v != "" {
			if err := fs.Set(fe.flag, envListValue(fe.flag, v)); err != nil {
				return cfg, &usageError{fmt.Sprintf("invalid %s=%q: %v", fe.env, v, err)}
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return cfg, errHelp
		}
		return cfg, &usageError{err.Error()}
	}
	if cfg.showVersion {
		return cfg, nil
	}
	cfg.pairs = fs.Args()
	if len(cfg.pairs) == 0 || len(cfg.pairs)%2 != 0 {
		return cfg, &usageError{fmt.Sprintf("expected SRC DEST pairs, got %d argument(s)", len(cfg.pairs))}
	}
	var err error
	if cfg.chunkSize, err = parseBytes(chunk); err != nil || cfg.chunkSize < 64<<10 {
		return cfg, &usageError{fmt.Sprintf("invalid --chunk-size %q: want a size of at least 64KiB, e.g. 16MiB", chunk)}
	}
	if cfg.maxExtractBytes, err = parseBytes(extractMax); err != nil {
		return cfg, &usageError{fmt.Sprintf("invalid --max-extract-bytes %q: want a size such as 500GiB", extractMax)}
	}
	if cacheMax != "0" {
		if cfg.cacheMaxBytes, err = parseBytes(cacheMax); err != nil {
			return cfg, &usageError{fmt.Sprintf("invalid --cache-max-bytes %q: want a size such as 200GiB, or 0", cacheMax)}
		}
	}
	switch v := engine.VerifyMode(verify); v {
	case engine.VerifyAuto, engine.VerifyStrict, engine.VerifySize:
		cfg.verify = v
	default:
		return cfg, &usageError{fmt.Sprintf("invalid --verify %q: want auto, strict or size", verify)}
	}
	if cfg.concurrency < 1 || cfg.concurrency > 1024 {
		return cfg, &usageError{fmt.Sprintf("invalid --concurrency %d: want 1..1024", cfg.concurrency)}
	}
	switch cfg.logFormat {
	case "":
		cfg.console = isTerminal(2)
	case "console":
		cfg.console = true
	case "json":
	default:
		return cfg, &usageError{fmt.Sprintf("invalid --log-format %q: want json or console", cfg.logFormat)}
	}
	switch cfg.pvcMode {
	case "symlink", "copy", "verify":
	default:
		return cfg, &usageError{fmt.Sprintf("invalid --pvc-mode %q: want symlink, copy or verify", cfg.pvcMode)}
	}
	if cfg.filter, err = filter.New(include, exclude); err != nil {
		return cfg, &usageError{err.Error()}
	}
	if cfg.signature, err = signatureConfig(sig); err != nil {
		return cfg, &usageError{err.Error()}
	}
	// A signature is checked on the bytes a pull reads: a local or pvc://
	// model is copied then (a link or an in-place check would leave files
	// the signature never covered, or that change after it), unless
	// --pvc-mode was given, which a policy then refuses with the reason.
	if cfg.signature.policy != nil && !fs.Changed("pvc-mode") {
		cfg.pvcMode = "copy"
	}
	if cfg.signature.uri != "" && len(cfg.pairs) > 2 {
		return cfg, &usageError{fmt.Sprintf("--signature names one bundle but %d SRC DEST pairs were given: run one pair per bundle, or put each model's model.sig at its root", len(cfg.pairs)/2)}
	}
	if cfg.signature.policy != nil {
		if digest != "" {
			return cfg, &usageError{"VERIFICATION_DIGEST and a signature policy both pin the model: give one of them"}
		}
		// The signed digests are the point of the run: --verify=size does
		// not turn them off.
		if cfg.verify == engine.VerifySize {
			cfg.verify = engine.VerifyAuto
		}
	}
	if digest != "" {
		v, err := parseVerificationDigest(digest)
		if err != nil {
			return cfg, &usageError{err.Error()}
		}
		if len(cfg.pairs) > 2 {
			return cfg, &usageError{fmt.Sprintf("VERIFICATION_DIGEST pins one file or archive, but %d SRC DEST pairs were given: "+
				"run one pair per digest", len(cfg.pairs)/2)}
		}
		cfg.verificationDigest = &v
		// A pinned digest is the point of the run: --verify=size (which
		// skips checksums) does not turn it off.
		if cfg.verify == engine.VerifySize {
			cfg.verify = engine.VerifyAuto
		}
	}
	return cfg, nil
}

// envListValue turns a JSON array (KServe's STORAGE_*_PATTERNS form) into
// the comma list pflag expects; other values pass through.
func envListValue(flag, v string) string {
	if flag != "include" && flag != "exclude" {
		return v
	}
	list, err := filter.ParseList(v)
	if err != nil {
		return v
	}
	return strings.Join(list, ",")
}

// parseBytes reads sizes like "16MiB", "8M", "1048576".
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid size")
	}
	return n * mult, nil
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
