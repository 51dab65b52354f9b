package httpsrc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// WithLimiter bounds this provider's requests in flight together with
// every other client sharing l (the run-wide --concurrency bound). The
// default is no bound beyond the engine's. Ignored with WithHTTPClient.
func WithLimiter(l *httpx.Limiter) Option { return func(p *Provider) { p.limiter = l } }

// newClient returns the binary's HTTP client (internal/httpx: proxies from
// HTTP_PROXY, HTTPS_PROXY and NO_PROXY, HTTP/1.1, bytes as served, the
// redirect policy) with a pool that keeps a connection per request the
// engine runs at once, so ranges do not pay a new handshake each. There is
// no overall timeout: bodies can be hundreds of GiB; stalls are caught by
// the engine's read timeout.
func newClient(conns int, l *httpx.Limiter) (*http.Client, error) {
	return httpx.NewClient(httpx.Options{Conns: conns, ResponseHeaderTimeout: time.Minute, Limiter: l})
}

// request holds what every request of one source carries.
type request struct {
	c   *http.Client
	t   target
	hdr http.Header // from <host>-headers
	// hdrVar names that variable when set, for 401/403 messages.
	hdrVar string
}

// do sends one request; extra sets per-request headers (Range, If-Match…).
func (r *request) do(ctx context.Context, method string, extra http.Header) (*http.Response, error) {
	// The <host>-headers usually carry tokens: none follows a redirect to
	// another host.
	ctx = httpx.WithSensitiveHeaders(ctx, slices.Collect(maps.Keys(r.hdr))...)
	req, err := http.NewRequestWithContext(ctx, method, r.t.url.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, r.t.display, err)
	}
	for k, v := range r.hdr {
		req.Header[k] = v
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := r.c.Do(req)
	if err != nil {
		// *url.Error repeats the URL with its query string (a presigned
		// URL's signature): keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			// Retrying cannot fix trust.
			return nil, engine.Permanent(fmt.Errorf("%s %s: %w: add the server's CA to SSL_CERT_FILE (a PEM bundle) or SSL_CERT_DIR",
				method, r.t.display, err))
		}
		var re *httpx.RedirectError
		if errors.As(err, &re) {
			return nil, engine.Permanent(fmt.Errorf("%s %s: %w", method, r.t.display, err))
		}
		return nil, fmt.Errorf("%s %s: %w", method, r.t.display, err)
	}
	return resp, nil
}

// discard closes a response body we do not read, draining a little so the
// connection can be reused.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
}
