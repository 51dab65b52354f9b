package azblob

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

func statusOf(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// describe turns an error on uri into a one-line, actionable message and
// marks it permanent when retrying cannot help; transient errors (5xx,
// 408, 429, resets, timeouts) stay retryable, with the service's
// Retry-After. The SDK's own messages span many lines and quote the
// request, so only status and code are kept; credentials are named by
// where they came from, never by content.
func (c *client) describe(err error, op, uri string) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) || (c.auth.token != nil && !errors.As(err, new(*azcore.ResponseError))) && strings.Contains(err.Error(), "Credential") {
		return engine.Permanent(fmt.Errorf("%s %s: cannot get a Microsoft Entra ID token with %s: %s", op, uri, c.auth.source, firstLine(err.Error())))
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s %s at %s: %s", op, uri, c.where, firstLine(err.Error()))
	}
	status, code := re.StatusCode, bloberror.Code(re.ErrorCode)
	perm := func(format string, args ...any) error {
		return engine.Permanent(fmt.Errorf(format+" [HTTP %d %s]", append(args, status, code)...))
	}
	transient := func(e error) error {
		if d, ok := retryAfter(re.RawResponse); ok {
			return engine.RetryAfter(e, d)
		}
		return e
	}
	switch {
	case code == bloberror.ContainerNotFound:
		return perm("container %s does not exist", c.where)
	case code == bloberror.AuthenticationFailed || code == bloberror.InvalidAuthenticationInfo:
		return perm("%s %s: the credentials were rejected by %s: check them (credentials from %s)", op, uri, c.where, c.auth.source)
	case code == bloberror.NoAuthenticationInformation || (status == http.StatusForbidden || status == http.StatusNotFound) && c.auth.anonymous():
		// Azure hides private containers from anonymous callers behind 404.
		return perm("%s %s: not found, or not readable anonymously, at %s: set AZURE_STORAGE_ACCESS_KEY, a SAS, or AZURE_CLIENT_ID (credentials: %s)",
			op, uri, c.where, c.auth.source)
	case status == http.StatusForbidden:
		// Azurite and some Azure paths say AuthorizationFailure for a bad
		// signature as well as for missing permissions.
		return perm("%s %s: access denied at %s: the credentials were rejected or may not read this container (credentials from %s)",
			op, uri, c.where, c.auth.source)
	case status == http.StatusNotFound:
		return perm("%s %s: not found at %s", op, uri, c.where)
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || code == bloberror.ServerBusy:
		return transient(fmt.Errorf("%s %s at %s: throttled [HTTP %d %s]", op, uri, c.where, status, code))
	case status == http.StatusRequestTimeout || status >= 500:
		return transient(fmt.Errorf("%s %s at %s: server error [HTTP %d %s]", op, uri, c.where, status, code))
	case status >= 400:
		return perm("%s %s: request rejected by %s", op, uri, c.where)
	}
	return fmt.Errorf("%s %s at %s: [HTTP %d %s]", op, uri, c.where, status, code)
}

// retryAfter reads a response's Retry-After (seconds or an HTTP-date).
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp == nil {
		return 0, false
	}
	return engine.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
}
