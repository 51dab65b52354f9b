package engine

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// PlanSettings are the run's choices that shape a plan, as the engine holds
// them: providers plan with this snapshot (provider.Settings) and the
// engine enforces the same values, so there is one source of each.
type PlanSettings struct {
	// Concurrency is the bound on requests in flight: planners size their
	// connection pools and their parallel metadata requests with it.
	Concurrency int
	// ChunkSize is the ranged-read size: a file that fits in one may be
	// planned without a metadata request (checksums in the body).
	ChunkSize int64
	// Caching: a node cache is in use, so every file's checksum must be
	// known at planning.
	Caching bool
	// DryRun: the plan is only listed, so show every checksum.
	DryRun bool
	// Keep is the include/exclude filter. The engine applies it; planners
	// use it only to skip work for files it drops (HEADs) and to shape
	// symlinks. Nil keeps everything.
	Keep func(rel string) bool
	// Verify is the verification mode (planners may refuse early what the
	// engine would refuse).
	Verify VerifyMode
	// Log is the logger (nil: none).
	Log *zap.Logger

	policy      retryPolicy
	readTimeout time.Duration
}

// PlanSettings returns the settings providers plan with.
func (e *Engine) PlanSettings() PlanSettings {
	return PlanSettings{Concurrency: e.concurrency, ChunkSize: e.chunkSize, Caching: e.cache != nil,
		DryRun: e.dryRun, Keep: e.filter, Verify: e.verify, Log: e.log, policy: e.policy(), readTimeout: e.readTimeout}
}

// Retry runs a planning request (a probe, a manifest, a listing page) with
// the engine's retry policy: --max-attempts, backoff with jitter,
// Retry-After (RetryAfter errors), Permanent errors ending at once. Each
// attempt must answer within --read-timeout.
func (s PlanSettings) Retry(ctx context.Context, what string, attempt func(context.Context) error) error {
	p := s.policy
	if p.maxAttempts == 0 {
		p = retryPolicy{maxAttempts: DefaultMaxAttempts, baseDelay: 200 * time.Millisecond, maxDelay: 10 * time.Second}
	}
	timeout := s.ReadTimeout()
	return p.do(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return attempt(ctx)
	}, func(n int, delay time.Duration, err error) {
		s.Logger().Warn("retrying", zap.String("request", what), zap.Int("attempt", n),
			zap.Duration("delay", delay), zap.String("error", err.Error()))
	}, what)
}

// ReadTimeout bounds one request that delivers nothing (--read-timeout).
func (s PlanSettings) ReadTimeout() time.Duration {
	if s.readTimeout <= 0 {
		return DefaultReadTimeout
	}
	return s.readTimeout
}

// Kept reports whether the filter keeps rel.
func (s PlanSettings) Kept(rel string) bool { return s.Keep == nil || s.Keep(rel) }

// Logger returns the logger, never nil.
func (s PlanSettings) Logger() *zap.Logger {
	if s.Log == nil {
		return zap.NewNop()
	}
	return s.Log
}

// Conns is the connection pool size for the request bound.
func (s PlanSettings) Conns() int { return max(s.Concurrency, 1) }

// Chunk is the ranged-read size (DefaultChunkSize when unset).
func (s PlanSettings) Chunk() int64 {
	if s.ChunkSize <= 0 {
		return DefaultChunkSize
	}
	return s.ChunkSize
}
