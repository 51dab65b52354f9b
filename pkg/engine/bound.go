package engine

import "context"

// requestBound is the one bound on requests in flight for the whole engine
// (--concurrency): every attempt of every Loader — file chunks, layer
// stream ranges, blob and cache fills, single streams — holds a token for
// as long as its request runs. Workers and stream fetchers may outnumber
// the tokens; requests never do. A token is taken after any buffer it
// needs, and released before its bytes are handed on, so a holder never
// waits for anything but its own server.
type requestBound chan struct{}

func newRequestBound(n int) requestBound { return make(requestBound, max(n, 1)) }

// acquire waits for a token or the context's end.
func (b requestBound) acquire(ctx context.Context) error {
	select {
	case b <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (b requestBound) release() { <-b }
