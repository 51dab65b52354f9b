package httpx

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/storage-initializer/storage-initializer/internal/redact"
)

// MaxRedirects is how many redirects one request may follow.
const MaxRedirects = 10

// alwaysSensitive are dropped on every redirect that leaves the first
// request's origin. net/http drops the first two itself, but keeps them for
// a subdomain and on a change of scheme or port.
var alwaysSensitive = []string{"Authorization", "Cookie", "Proxy-Authorization"}

// RedirectError is a redirect the policy refused. Retrying cannot help.
type RedirectError struct {
	From, To string // redacted
	Reason   string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("redirect from %s to %s refused: %s", e.From, e.To, e.Reason)
}

// RetryableError tells the AWS SDK's retryer not to try again.
func (e *RedirectError) RetryableError() bool { return false }

// Temporary tells go-containerregistry and others the same.
func (e *RedirectError) Temporary() bool { return false }

type sensitiveKey struct{}

// WithSensitiveHeaders returns a context whose requests also drop the named
// headers on a redirect that leaves their origin: headers a caller sets per
// request (tokens from the environment) that the client cannot know of.
func WithSensitiveHeaders(ctx context.Context, names ...string) context.Context {
	if len(names) == 0 {
		return ctx
	}
	prev, _ := ctx.Value(sensitiveKey{}).([]string)
	return context.WithValue(ctx, sensitiveKey{}, append(append([]string(nil), prev...), names...))
}

// CheckRedirect is the redirect policy of every client (http.Client's
// CheckRedirect): at most MaxRedirects redirects; never from https to plain
// http; once a redirect has left the origin (scheme, host, port) of the
// first request, Authorization, Cookie, Proxy-Authorization, the named
// headers and those of WithSensitiveHeaders are not sent again (net/http
// copies the first request's headers onto every hop). Referer is never
// sent: it would carry the previous URL's query, a presigned signature.
func CheckRedirect(sensitive ...string) func(req *http.Request, via []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		req.Header.Del("Referer")
		if len(via) == 0 {
			return nil
		}
		prev := via[len(via)-1]
		if len(via) > MaxRedirects {
			return &RedirectError{From: redact.URI(prev.URL.String()), To: redact.URI(req.URL.String()),
				Reason: fmt.Sprintf("more than %d redirects: point the source at the final address", MaxRedirects)}
		}
		for _, r := range via {
			if strings.EqualFold(r.URL.Scheme, "https") && !strings.EqualFold(req.URL.Scheme, "https") {
				return &RedirectError{From: redact.URI(prev.URL.String()), To: redact.URI(req.URL.String()),
					Reason: "it downgrades https to plain http: fix the server, or point the source at an https address"}
			}
		}
		if leftOrigin(req, via) {
			ctxNames, _ := req.Context().Value(sensitiveKey{}).([]string)
			for _, names := range [][]string{alwaysSensitive, sensitive, ctxNames} {
				dropHeaders(req.Header, names)
			}
		}
		return nil
	}
}

// dropHeaders deletes names from h whatever their case, keys set without
// canonicalisation (h["x-api-key"]) included.
func dropHeaders(h http.Header, names []string) {
	for k := range h {
		for _, n := range names {
			if strings.EqualFold(k, n) {
				delete(h, k)
				break
			}
		}
	}
}

// leftOrigin reports whether req or any earlier hop is on another origin
// than the first request: a chain that comes back does not get the
// headers back.
func leftOrigin(req *http.Request, via []*http.Request) bool {
	first := origin(via[0].URL)
	if origin(req.URL) != first {
		return true
	}
	for _, r := range via[1:] {
		if origin(r.URL) != first {
			return true
		}
	}
	return false
}

// origin is scheme://host:port, lower case, with the scheme's default port.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return scheme + "://" + strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")) + ":" + port
}
