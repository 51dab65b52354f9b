package httpsrc

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Requests the engine does not run (the probe, single-stream downloads) are
// retried here, with the same rules: Permanent errors and cancellation end
// at once, Retry-After is honoured.
const (
	attempts  = 4
	baseDelay = 500 * time.Millisecond
	maxDelay  = 10 * time.Second
)

func retry(ctx context.Context, log *zap.Logger, what string, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || engine.IsPermanent(err) || ctx.Err() != nil || attempt >= attempts {
			return err
		}
		d := baseDelay << (attempt - 1)
		d = min(d/2+rand.N(d/2+1), maxDelay)
		var he *httpError
		if errors.As(err, &he) && he.retryAfter > d {
			d = min(he.retryAfter, 3*maxDelay)
		}
		log.Warn("retrying", zap.String("request", what), zap.Int("attempt", attempt),
			zap.Duration("delay", d), zap.String("error", err.Error()))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
