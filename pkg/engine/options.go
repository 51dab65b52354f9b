package engine

import (
	"os"
	"time"

	"go.uber.org/zap"
)

// Defaults, tuned on a 2-core machine against MinIO on loopback; see README.
const (
	DefaultConcurrency = 16
	DefaultChunkSize   = 16 << 20
	DefaultMaxAttempts = 5
	DefaultReadTimeout = 60 * time.Second
	// DefaultBlobJobs bounds the blobs of a unit (tar layers) fetched and
	// unpacked at once: each streams through its own decompressor, so on
	// small nodes two already keep both cores busy.
	DefaultBlobJobs = 2
	// DefaultMaxUnpackBytes and DefaultMaxUnpackEntries cap one unit.
	DefaultMaxUnpackBytes   = 1 << 40
	DefaultMaxUnpackEntries = 1_000_000
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
	cacheWait   time.Duration // see WithCacheWait
	dryRun      bool
	bound       requestBound
	alloc       func(f *os.File, size int64) error // preallocate; a test seam
	blobJobs    int                                // blobs of one unit unpacked at once
	maxBytes    int64                              // what one unit may unpack (--max-extract-bytes)
	maxEntries  int64
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
		blobJobs:    DefaultBlobJobs,
		maxBytes:    DefaultMaxUnpackBytes,
		maxEntries:  DefaultMaxUnpackEntries,
	}
	for _, o := range opts {
		o(e)
	}
	e.bound = newRequestBound(e.concurrency)
	e.alloc = preallocate
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

// WithUnpackLimits caps what one unit (an image's tar layers, an archive)
// may unpack: bytes and entries (tar bombs). Zero keeps the default.
func WithUnpackLimits(maxBytes, maxEntries int64) Option {
	return func(e *Engine) {
		if maxBytes > 0 {
			e.maxBytes = maxBytes
		}
		if maxEntries > 0 {
			e.maxEntries = maxEntries
		}
	}
}

// WithBlobJobs bounds the blobs of one unit unpacked at once.
func WithBlobJobs(n int) Option {
	return func(e *Engine) {
		if n > 0 {
			e.blobJobs = n
		}
	}
}

// keep reports whether the filter keeps rel (always true without a filter).
func (e *Engine) keep(rel string) bool { return e.filter == nil || e.filter(rel) }

type nopObserver struct{}

func (nopObserver) Planned(int, int64)  {}
func (nopObserver) Transferred(int64)   {}
func (nopObserver) FileDone(FileResult) {}
