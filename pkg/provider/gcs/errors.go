package gcs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// describe turns an error on uri into a one-line, actionable message and
// marks it permanent when retrying cannot help; transient errors (5xx, 408,
// 429, resets, timeouts) stay retryable, with the server's Retry-After.
// The apiError stays reachable (statusOf), so callers can still tell a
// 404. Credentials are named by where they came from, never by content.
func (c *client) describe(err error, op, uri, bucket string) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var te *tokenError
	if errors.As(err, &te) {
		return engine.Permanent(fmt.Errorf("%s %s: %w", op, uri, te))
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		return fmt.Errorf("%s %s at %s: %w", op, uri, c.where, err)
	}
	status, msg := ae.Status, ae.Message
	perm := func(format string, args ...any) error {
		return engine.Permanent(&described{fmt.Sprintf(format+" [HTTP %d]", append(args, status)...), ae})
	}
	transient := func(format string, args ...any) error {
		e := &described{fmt.Sprintf(format, args...), ae}
		if d, ok := retryAfter(ae.Header); ok {
			return engine.RetryAfter(e, d)
		}
		return e
	}
	switch {
	case status == http.StatusNotFound && bucket != "" && strings.Contains(strings.ToLower(msg), "bucket"):
		return perm("bucket %s does not exist at %s", bucket, c.where)
	case status == http.StatusNotFound:
		return perm("%s %s: not found at %s", op, uri, c.where)
	case status == http.StatusUnauthorized && c.anonymous:
		return perm("%s %s: %s requires credentials (credentials: %s): set GOOGLE_APPLICATION_CREDENTIALS to a service-account or external-account key file",
			op, uri, c.where, c.credSource)
	case status == http.StatusUnauthorized:
		return perm("%s %s: the credentials were rejected by %s: check GOOGLE_APPLICATION_CREDENTIALS (credentials from %s)",
			op, uri, c.where, c.credSource)
	case status == http.StatusForbidden && c.anonymous:
		return perm("%s %s: access denied at %s: the bucket does not allow anonymous reads (credentials: %s); set GOOGLE_APPLICATION_CREDENTIALS",
			op, uri, c.where, c.credSource)
	case status == http.StatusForbidden:
		return perm("%s %s: access denied at %s: give the account storage.objects.get and storage.objects.list on the bucket (credentials from %s)",
			op, uri, c.where, c.credSource)
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return transient("%s %s at %s: throttled [HTTP %d]", op, uri, c.where, status)
	case status == http.StatusRequestTimeout || status >= 500:
		return transient("%s %s at %s: server error [HTTP %d]: %s", op, uri, c.where, status, msg)
	case status >= 400:
		return perm("%s %s: request rejected by %s: %s", op, uri, c.where, msg)
	}
	return fmt.Errorf("%s %s at %s: %w", op, uri, c.where, err)
}

// described is an error's one-line message for users over the error
// itself.
type described struct {
	msg   string
	cause error
}

func (e *described) Error() string { return e.msg }
func (e *described) Unwrap() error { return e.cause }

// retryAfter reads a response's Retry-After (seconds or an HTTP-date).
func retryAfter(h http.Header) (time.Duration, bool) {
	return engine.ParseRetryAfter(h.Get("Retry-After"), time.Now())
}
