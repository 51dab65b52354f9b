package httpsrc

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// httpError is a response status the provider could not use.
type httpError struct {
	msg        string
	status     int
	retryAfter time.Duration // from Retry-After, 0 when absent
}

func (e *httpError) Error() string { return e.msg }

// errRangeIgnored marks a server that advertised byte ranges and then sent
// the whole file for a Range request.
var errRangeIgnored = errors.New("the server ignored a Range request")

// statusError turns a response status into a one-line message saying what
// failed, where, and what to do; it never includes header values or the
// query string. 4xx are permanent; 408, 429 and 5xx are retried, honouring
// Retry-After.
func (r *request) statusError(method string, resp *http.Response) error {
	s := resp.StatusCode
	what := fmt.Sprintf("%s %s: HTTP %d %s", method, r.t.display, s, http.StatusText(s))
	e := &httpError{status: s}
	creds := fmt.Sprintf("set them as a JSON object in env %s%s (e.g. {\"Authorization\": \"Bearer …\"})", r.t.host, headersSuffix)
	if r.hdrVar != "" {
		creds = "check the headers in env " + r.hdrVar
	}
	switch {
	case s == http.StatusUnauthorized:
		e.msg = what + ": the server wants credentials: " + creds
	case s == http.StatusForbidden:
		e.msg = what + ": access denied: " + creds + ", or for a presigned URL check that it has not expired"
	case s == http.StatusNotFound || s == http.StatusGone:
		e.msg = what + ": no file at this URL: check it"
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		e.msg = what + ": the server is busy"
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After")); ok {
			e.retryAfter = d
			return engine.RetryAfter(e, d)
		}
		return e
	case s == http.StatusRequestTimeout || s >= 500:
		e.msg = what
		return e
	default:
		e.msg = what + ": the request was rejected"
	}
	return engine.Permanent(e)
}

// changed reports a file that is not the version first seen; retrying would
// mix versions.
func (r *request) changed(how string) error {
	return engine.Permanent(fmt.Errorf("%s changed during download (%s): run again to fetch the new version", r.t.display, how))
}

// parseRetryAfter reads seconds or an HTTP date.
func parseRetryAfter(v string) (time.Duration, bool) { return engine.ParseRetryAfter(v, time.Now()) }
