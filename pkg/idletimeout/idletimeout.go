// Package idletimeout bounds how long an HTTP response may send nothing,
// headers and body alike, the way boto3's read timeout does. A transport's
// ResponseHeaderTimeout covers only the headers: without this a server or
// proxy that stalls in the middle of a listing, a HEAD or a manifest body
// would hang the binary forever (KServe users report exactly that).
package idletimeout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Error reports a response that sent nothing for Timeout.
type Error struct {
	Timeout time.Duration
	What    string // the setting that chose the timeout, for the message
}

func (e *Error) Error() string {
	return fmt.Sprintf("the server sent nothing for %s (%s)", e.Timeout, e.What)
}

// RetryableError tells retryers (the AWS SDK's) another attempt may succeed.
func (e *Error) RetryableError() bool { return true }

// Temporary marks the error as transient for go-containerregistry and others.
func (e *Error) Temporary() bool { return true }

// errIdle is the cause recorded when a body stalls.
var errIdle = errors.New("idle")

// Do sends req with send and wraps the response body so the request is
// cancelled when no byte arrives for d.
func Do(req *http.Request, d time.Duration, what string, send func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	if d <= 0 {
		return send(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	resp, err := send(req.WithContext(ctx))
	if err != nil {
		cancel(nil)
		return nil, err
	}
	b := &body{rc: resp.Body, ctx: ctx, cancel: cancel, timeout: d, what: what}
	b.timer = time.AfterFunc(d, func() { cancel(errIdle) })
	resp.Body = b
	return resp, nil
}

// RoundTripper applies the idle timeout to every response of Next.
type RoundTripper struct {
	Next    http.RoundTripper
	Timeout time.Duration
	What    string
}

// RoundTrip implements http.RoundTripper.
func (rt RoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	return Do(req, rt.Timeout, rt.What, rt.Next.RoundTrip)
}

// body cancels its request when no byte arrives for timeout.
type body struct {
	rc      io.ReadCloser
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timeout time.Duration
	what    string
	timer   *time.Timer
	once    sync.Once
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.timeout)
	}
	if err != nil && errors.Is(context.Cause(b.ctx), errIdle) {
		err = &Error{Timeout: b.timeout, What: b.what}
	}
	return n, err
}

func (b *body) Close() error {
	b.once.Do(func() { b.timer.Stop() })
	err := b.rc.Close()
	b.cancel(nil)
	return err
}
