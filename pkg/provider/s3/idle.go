package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// idleTimeoutClient applies S3_READ_TIMEOUT the way boto3 (KServe's
// initializer) does: as a limit on how long a response may send nothing,
// headers and body alike. The transport's ResponseHeaderTimeout covers the
// headers; without this a server or proxy that stalls in the middle of a
// listing or HEAD body would hang planning forever, since planning runs
// outside the engine's --read-timeout watchdog.
type idleTimeoutClient struct {
	next    aws.HTTPClient
	timeout time.Duration
}

func withIdleTimeout(next aws.HTTPClient, d time.Duration) aws.HTTPClient {
	if d <= 0 {
		return next
	}
	return idleTimeoutClient{next: next, timeout: d}
}

// errIdle is the cause recorded when a body stalls.
var errIdle = errors.New("idle")

// Do implements aws.HTTPClient.
func (c idleTimeoutClient) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	resp, err := c.next.Do(req.WithContext(ctx))
	if err != nil {
		cancel(nil)
		return nil, err
	}
	b := &idleBody{rc: resp.Body, ctx: ctx, cancel: cancel, timeout: c.timeout}
	b.timer = time.AfterFunc(c.timeout, func() { cancel(errIdle) })
	resp.Body = b
	return resp, nil
}

// idleBody cancels its request when no byte arrives for timeout.
type idleBody struct {
	rc      io.ReadCloser
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timeout time.Duration
	timer   *time.Timer
	once    sync.Once
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.timeout)
	}
	if err != nil && errors.Is(context.Cause(b.ctx), errIdle) {
		err = &idleError{b.timeout}
	}
	return n, err
}

// idleError reports a stalled response body.
type idleError struct{ timeout time.Duration }

func (e *idleError) Error() string {
	return fmt.Sprintf("the server sent nothing for %s (S3_READ_TIMEOUT)", e.timeout)
}

// RetryableError tells the SDK's retryer (planning requests) that another
// attempt may succeed; downloads are retried by the engine anyway.
func (e *idleError) RetryableError() bool { return true }

func (b *idleBody) Close() error {
	b.once.Do(func() { b.timer.Stop() })
	err := b.rc.Close()
	b.cancel(nil)
	return err
}
