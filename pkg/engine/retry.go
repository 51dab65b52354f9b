package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// errStalled is the cause recorded when a request delivers no bytes for the
// read timeout; the request is cancelled and retried.
var errStalled = errors.New("stalled")

// load runs one ranged read with the engine's retry policy: transient errors
// (resets, short bodies, 5xx, throttling, stalls) are retried with
// exponential backoff and full jitter; Permanent errors and cancellation end
// at once. fn is called once per attempt.
func (e *Engine) load(ctx context.Context, src Loader, what string, length, offset int64, fn func(io.Reader) error) error {
	return e.policy().do(ctx, func(ctx context.Context) error {
		return e.attempt(ctx, src, length, offset, fn)
	}, func(attempt int, delay time.Duration, err error) {
		e.log.Sugar().Warnw("retrying range", "file", what, "offset", offset, "length", length,
			"attempt", attempt, "delay", delay.String(), "error", err.Error())
	}, what)
}

// retryPolicy is the one retry policy: data requests (every Loader attempt)
// and planning requests (PlanSettings.Retry) use it.
type retryPolicy struct {
	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
}

func (e *Engine) policy() retryPolicy {
	return retryPolicy{maxAttempts: e.maxAttempts, baseDelay: e.baseDelay, maxDelay: e.maxDelay}
}

// do runs attempt until it succeeds, fails permanently, the context ends or
// the attempts run out; onRetry is told before each wait.
func (p retryPolicy) do(ctx context.Context, attempt func(context.Context) error, onRetry func(int, time.Duration, error), what string) error {
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if IsPermanent(err) {
			return err
		}
		if n >= p.maxAttempts {
			return fmt.Errorf("%s: gave up after %d attempts: %w", what, n, err)
		}
		delay := p.backoff(n)
		var ra *retryAfterError
		if errors.As(err, &ra) && ra.after > delay {
			delay = min(ra.after, 3*p.maxDelay)
		}
		onRetry(n, delay, err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// attempt is one Load, holding one of the engine's request tokens, with a
// watchdog that cancels it when no byte arrives for the read timeout.
func (e *Engine) attempt(ctx context.Context, src Loader, length, offset int64, fn func(io.Reader) error) error {
	if err := e.bound.acquire(ctx); err != nil {
		return err
	}
	defer e.bound.release()
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timeout := e.readTimeout
	watchdog := time.AfterFunc(timeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	err := src.Load(actx, length, offset, func(r io.Reader) error {
		watchdog.Reset(timeout)
		return fn(&watchdogReader{r: r, reset: func() { watchdog.Reset(timeout) }})
	})
	if err != nil && errors.Is(context.Cause(actx), errStalled) && ctx.Err() == nil {
		return fmt.Errorf("no data for %s (read timeout): %w", timeout, err)
	}
	return err
}

// backoff is exponential with full jitter, capped at maxDelay.
func (p retryPolicy) backoff(attempt int) time.Duration {
	d := p.baseDelay << min(attempt-1, 20)
	if d <= 0 || d > p.maxDelay {
		d = p.maxDelay
	}
	return d/2 + rand.N(d/2+1)
}

// watchdogReader re-arms the stall timer whenever bytes arrive.
type watchdogReader struct {
	r     io.Reader
	reset func()
}

// Checksums forwards the response's checksums (BodyChecksums) through the wrapper.
func (w *watchdogReader) Checksums() []checksum.Value {
	if bc, ok := w.r.(BodyChecksums); ok {
		return bc.Checksums()
	}
	return nil
}

func (w *watchdogReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		w.reset()
	}
	return n, err
}
