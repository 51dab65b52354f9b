package engine

import (
	"time"

	"go.uber.org/zap"
)

// Defaults, tuned on a 2-core machine against MinIO on loopback; see README.
const (
	DefaultConcurrency = 16
	DefaultChunkSize   = 16 << 20
	DefaultMaxAttempts = 5
	DefaultReadTimeout = 60 * time.Second
)

// Engine fetches plans. It holds no per-run state and is safe for concurrent use.
type Engine struct {
	concurrency int
	chunkSize   int64
	verify      VerifyMode
	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
	readTimeout time.Duration
	log         *zap.Logger
	observer    Observer
	filter      func(rel string) bool
	cache       *Cache
	dryRun      bool
}

// Option configures an Engine.
type Option func(*Engine)

// New returns an engine with defaults overridden by opts.
func New(opts ...Option) *Engine {
	e := &Engine{
		concurrency: DefaultConcurrency,
		chunkSize:   DefaultChunkSize,
		verify:      VerifyAuto,
		maxAttempts: DefaultMaxAttempts,
		baseDelay:   200 * time.Millisecond,
		maxDelay:    10 * time.Second,
		readTimeout: DefaultReadTimeout,
		log:         zap.NewNop(),
		observer:    nopObserver{},
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

// WithConcurrency bounds the requests in flight across all files.
func WithConcurrency(n int) Option {
	return func(e *Engine) {
		if n > 0 {
			e.concurrency = n
		}
	}
}

// WithChunkSize sets the size of each ranged read.
func WithChunkSize(n int64) Option {
	return func(e *Engine) {
		if n > 0 {
			e.chunkSize = n
		}
	}
}

// WithVerify sets the verification mode.
func WithVerify(m VerifyMode) Option { return func(e *Engine) { e.verify = m } }

// WithRetry sets the attempts per range and the backoff bounds.
func WithRetry(maxAttempts int, base, max time.Duration) Option {
	return func(e *Engine) {
		if maxAttempts > 0 {
			e.maxAttempts = maxAttempts
		}
		if base > 0 {
			e.baseDelay = base
		}
		if max > 0 {
			e.maxDelay = max
		}
	}
}

// WithReadTimeout aborts (and retries) a request that delivers no bytes for d.
func WithReadTimeout(d time.Duration) Option {
	return func(e *Engine) {
		if d > 0 {
			e.readTimeout = d
		}
	}
}

// WithLogger sets the logger.
func WithLogger(l *zap.Logger) Option {
	return func(e *Engine) {
		if l != nil {
			e.log = l
		}
	}
}

// WithObserver receives progress events.
func WithObserver(o Observer) Option {
	return func(e *Engine) {
		if o != nil {
			e.observer = o
		}
	}
}

// WithFilter keeps only files whose relative path the function accepts
// (STORAGE_ALLOW_PATTERNS / STORAGE_IGNORE_PATTERNS).
func WithFilter(keep func(rel string) bool) Option { return func(e *Engine) { e.filter = keep } }

// WithDryRun makes Fetch report what it would do without fetching or
// writing anything.
func WithDryRun(on bool) Option { return func(e *Engine) { e.dryRun = on } }

// DryRun reports whether the engine only plans; providers that stage files
// themselves check it before downloading.
func (e *Engine) DryRun() bool { return e.dryRun }

// Concurrency is the bound on requests in flight; providers size their HTTP
// connection pools from it.
func (e *Engine) Concurrency() int { return e.concurrency }

// ChunkSize is the size of each ranged read.
func (e *Engine) ChunkSize() int64 { return e.chunkSize }

// Caching reports whether a node cache is in use. Cache entries are
// re-verified on every hit, so providers then plan every file's checksums up
// front rather than rely on File.ChecksumsInBody.
func (e *Engine) Caching() bool { return e.cache != nil }

// Verify is the verification mode.
func (e *Engine) Verify() VerifyMode { return e.verify }

// Logger is the engine's logger, for providers to share.
func (e *Engine) Logger() *zap.Logger { return e.log }

// Observer is the engine's progress observer, for providers that stage
// through Stage and report bytes themselves.
func (e *Engine) Observer() Observer { return e.observer }

// Keep reports whether the filter keeps rel (always true without a filter).
func (e *Engine) Keep(rel string) bool { return e.filter == nil || e.filter(rel) }

type nopObserver struct{}

func (nopObserver) Planned(int, int64)  {}
func (nopObserver) Transferred(int64)   {}
func (nopObserver) FileDone(FileResult) {}
