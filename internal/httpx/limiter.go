package httpx

import (
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Limiter bounds the requests in flight across every transport it wraps:
// one run-wide bound (--concurrency) however many clients, providers and
// sources take part. A request holds a token from RoundTrip until its
// response body is closed or read to the end, i.e. for as long as the
// server is working on it.
type Limiter struct {
	tokens chan struct{}
}

// NewLimiter returns a limiter of n requests in flight (at least 1).
func NewLimiter(n int) *Limiter {
	return &Limiter{tokens: make(chan struct{}, max(n, 1))}
}

// Wrap returns rt bounded by l; a nil l returns rt itself.
//
// A caller must not hold one response body open while it waits for another
// request through the same limiter, or with n such callers it waits
// forever; net/http closes a redirect's body before following it.
func (l *Limiter) Wrap(rt http.RoundTripper) http.RoundTripper {
	if l == nil {
		return rt
	}
	return &limited{l: l, next: rt}
}

type limited struct {
	l    *Limiter
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *limited) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeBody(req)
		return nil, fmt.Errorf("waiting for a request slot: %w", err)
	}
	select {
	case t.l.tokens <- struct{}{}:
	case <-ctx.Done():
		closeBody(req)
		return nil, fmt.Errorf("waiting for a request slot: %w", ctx.Err())
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.l.release()
		return resp, err
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		t.l.release() // a HEAD, a 204: the exchange is over
		return resp, nil
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: t.l.release}
	return resp, nil
}

func (l *Limiter) release() { <-l.tokens }

// closeBody honours RoundTrip's contract to close the request body even
// when the request is never sent.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// releasingBody gives the token back exactly once: at EOF or Close.
type releasingBody struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (b *releasingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.release)
	}
	return n, err
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
