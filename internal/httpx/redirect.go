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
		drop, err := checkHop(req, via, sensitive)
		if err != nil {
			return err
		}
		dropHeaders(req.Header, drop)
		return nil
	}
}

// GuardRedirects applies the same policy inside a transport, for clients
// built by libraries that take only a RoundTripper (go-containerregistry's
// manifest requests): a redirected request carries the response that
// caused it (Request.Response), from which the chain is rebuilt. The
// request is cloned before headers are dropped, as a RoundTripper must not
// change it.
func GuardRedirects(next http.RoundTripper, sensitive ...string) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Response == nil {
			return next.RoundTrip(req)
		}
		var via []*http.Request
		for r := req.Response.Request; r != nil; {
			via = append([]*http.Request{r}, via...)
			if r.Response == nil || len(via) > MaxRedirects {
				break
			}
			r = r.Response.Request
		}
		drop, err := checkHop(req, via, sensitive)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		if hasAny(req.Header, drop) {
			req = req.Clone(req.Context())
			dropHeaders(req.Header, drop)
		}
		return next.RoundTrip(req)
	})
}

// checkHop decides on the redirect to req after via: an error refuses it,
// drop lists the headers it must not carry.
func checkHop(req *http.Request, via []*http.Request, sensitive []string) (drop []string, err error) {
	drop = []string{"Referer"}
	if len(via) == 0 {
		return drop, nil
	}
	prev := via[len(via)-1]
	if len(via) > MaxRedirects {
		return nil, &RedirectError{From: redact.URI(prev.URL.String()), To: redact.URI(req.URL.String()),
			Reason: fmt.Sprintf("more than %d redirects: point the source at the final address", MaxRedirects)}
	}
	for _, r := range via {
		if strings.EqualFold(r.URL.Scheme, "https") && !strings.EqualFold(req.URL.Scheme, "https") {
			return nil, &RedirectError{From: redact.URI(prev.URL.String()), To: redact.URI(req.URL.String()),
				Reason: "it downgrades https to plain http: fix the server, or point the source at an https address"}
		}
	}
	if leftOrigin(req, via) {
		ctxNames, _ := req.Context().Value(sensitiveKey{}).([]string)
		drop = append(append(append(drop, alwaysSensitive...), sensitive...), ctxNames...)
	}
	return drop, nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// hasAny reports whether h holds one of names, whatever the case.
func hasAny(h http.Header, names []string) bool {
	for k := range h {
		for _, n := range names {
			if strings.EqualFold(k, n) {
				return true
			}
		}
	}
	return false
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
