// Package hubclient is the HTTP plumbing the model-hub providers (hf://,
// modelscope://) share: one client (internal/httpx) that sends credentials
// only to the hub's own host (never to a CDN a file redirects to),
// metadata requests under the run's retry policy (provider.Settings.Retry)
// with the hubs' Retry-After and RateLimit hints, and a ranged loader that
// resolves a file's redirect once and re-resolves it when a signed URL
// expires.
package hubclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// Config describes one hub.
type Config struct {
	// Endpoint is the hub's base URL (HF_ENDPOINT, MODELSCOPE_DOMAIN).
	Endpoint *url.URL
	// Auth sets credentials on a request to Endpoint's host; nil: anonymous.
	Auth func(http.Header)
	// MetaTimeout, when set, bounds each attempt of a metadata request,
	// body included (HF_HUB_DOWNLOAD_TIMEOUT). Every attempt is bounded by
	// --read-timeout anyway; attempts and backoff are the run's policy.
	MetaTimeout time.Duration
	// HeaderTimeout bounds the wait for response headers of any request
	// (downloads included); zero is httpx's default. Bodies are bounded by
	// the engine's stall timeout.
	HeaderTimeout time.Duration
	// Limiter, when set, is the run-wide bound on requests in flight.
	Limiter *httpx.Limiter
}

// Client talks to one hub.
type Client struct {
	http *http.Client
	cfg  Config
	set  provider.Settings
}

// New returns a client for cfg; set gives the pool size and the retry
// policy of metadata requests.
func New(set provider.Settings, cfg Config) (*Client, error) {
	hc, err := httpx.NewClient(httpx.Options{Conns: set.Conns(), ResponseHeaderTimeout: cfg.HeaderTimeout, Limiter: cfg.Limiter})
	if err != nil {
		return nil, fmt.Errorf("hub client for %s: %w", Display(cfg.Endpoint), err)
	}
	// Redirects are never followed by net/http: a hop to the CDN must not
	// carry the hub's credentials, and a file's final URL is remembered
	// (File). follow resolves them under httpx's redirect policy.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{http: hc, cfg: cfg, set: set}, nil
}

// Endpoint is the hub's base URL.
func (c *Client) Endpoint() *url.URL { return c.cfg.Endpoint }

// URL joins escaped path segments (already escaped) and a query onto the endpoint.
func (c *Client) URL(escapedPath string, query url.Values) *url.URL {
	u := *c.cfg.Endpoint
	base := strings.TrimRight(u.EscapedPath(), "/")
	if err := setEscapedPath(&u, base+escapedPath); err != nil {
		u.Path = base + escapedPath // unreachable for segments escaped with url.PathEscape
	}
	u.RawQuery = query.Encode()
	return &u
}

func setEscapedPath(u *url.URL, p string) error {
	dec, err := url.PathUnescape(p)
	if err != nil {
		return err
	}
	u.Path, u.RawPath = dec, p
	return nil
}

// OnEndpoint reports whether u is on the hub's own origin (scheme and host),
// the only place credentials go.
func (c *Client) OnEndpoint(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, c.cfg.Endpoint.Scheme) && strings.EqualFold(u.Host, c.cfg.Endpoint.Host)
}

// Do sends one request without following redirects. Credentials are added
// only when u is on the endpoint. Errors never repeat the URL (a signed CDN
// URL carries its signature in the query).
func (c *Client) Do(ctx context.Context, method string, u *url.URL, hdr http.Header) (*http.Response, error) {
	req, err := c.newRequest(ctx, method, u, hdr)
	if err != nil {
		return nil, err
	}
	return c.send(req)
}

func (c *Client) newRequest(ctx context.Context, method string, u *url.URL, hdr http.Header) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, Display(u), err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "storage-initializer")
	if c.cfg.Auth != nil && c.OnEndpoint(u) {
		c.cfg.Auth(req.Header)
	}
	return req, nil
}

func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return nil, engine.Permanent(fmt.Errorf("%s %s: %w: add the hub's CA to SSL_CERT_FILE", req.Method, Display(req.URL), err))
		}
		return nil, fmt.Errorf("%s %s: %w", req.Method, Display(req.URL), err)
	}
	return resp, nil
}

// follow sends method to u and follows redirects itself, under the
// binary's one redirect policy (httpx.CheckRedirect: at most
// httpx.MaxRedirects hops, never from https to http, no credentials again
// once the chain has left the hub); allow, when set, vets each target. It
// returns the final response and the URL that answered it (u itself when
// nothing redirected).
func (c *Client) follow(ctx context.Context, method string, u *url.URL, hdr http.Header, allow func(*url.URL) error) (*http.Response, *url.URL, error) {
	policy := httpx.CheckRedirect()
	var via []*http.Request
	for {
		req, err := c.newRequest(ctx, method, u, hdr)
		if err != nil {
			return nil, nil, err
		}
		if len(via) > 0 {
			if err := policy(req, via); err != nil {
				return nil, nil, engine.Permanent(fmt.Errorf("%s %s: %w", method, Display(via[0].URL), err))
			}
		}
		resp, err := c.send(req)
		if err != nil {
			return nil, nil, err
		}
		loc := resp.Header.Get("Location")
		if !isRedirect(resp.StatusCode) || loc == "" {
			return resp, u, nil
		}
		drain(resp)
		next, err := u.Parse(loc)
		if err != nil || (next.Scheme != "https" && next.Scheme != "http") {
			return nil, nil, engine.Permanent(fmt.Errorf("%s %s: unusable redirect from %s", method, Display(u), u.Host))
		}
		if allow != nil {
			if err := allow(next); err != nil {
				return nil, nil, err
			}
		}
		via = append(via, req)
		u = next
	}
}

// Display renders u for messages: scheme, host and path, never the query.
func Display(u *url.URL) string {
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return v.String()
}

// Classify turns a failed response into the provider's message (repository
// not found, gated…); it must not read credentials into the text.
type Classify func(resp *http.Response) error

// StatusError maps a non-success response to an error with the engine's
// retry semantics: 429 and 503 are retried, after the delay the hub asks
// for (RetryAfter) when it names one; other 5xx and 408 are retried;
// everything else is Permanent.
func StatusError(resp *http.Response, classify Classify) error {
	err := classify(resp)
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if d, ok := RetryAfter(resp.Header, time.Now()); ok {
			return engine.RetryAfter(err, d)
		}
		return err
	case code >= 500 || code == http.StatusRequestTimeout:
		return err
	default:
		return engine.Permanent(err)
	}
}

// Retry runs one metadata request with the run's retry policy
// (provider.Settings.Retry: --max-attempts, backoff, Retry-After,
// Permanent errors ending at once, each attempt within --read-timeout).
// bound, when set, limits each attempt further (the hubs' own timeout
// variables).
func (c *Client) Retry(ctx context.Context, what string, bound time.Duration, attempt func(ctx context.Context) error) error {
	return c.set.Retry(ctx, what, func(ctx context.Context) error {
		if bound <= 0 {
			return attempt(ctx)
		}
		actx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		err := attempt(actx)
		if err != nil && actx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%s: no complete answer within %s: %w", what, bound, err)
		}
		return err
	})
}

// GetJSON fetches u (retried), decodes the body into v and returns the
// response headers (for Link pagination). Same-origin redirects are
// followed (a renamed repository, as huggingface_hub does for HEAD).
func (c *Client) GetJSON(ctx context.Context, u *url.URL, classify Classify, v any) (http.Header, error) {
	onHub := func(next *url.URL) error {
		if !c.OnEndpoint(next) {
			return engine.Permanent(fmt.Errorf("GET %s: redirected off the hub to %s", Display(u), Display(next)))
		}
		return nil
	}
	var hdr http.Header
	err := c.Retry(ctx, "GET "+Display(u), c.cfg.MetaTimeout, func(ctx context.Context) error {
		resp, _, err := c.follow(ctx, http.MethodGet, u, http.Header{"Accept": {"application/json"}}, onHub)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return StatusError(resp, classify)
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(v); err != nil {
			return fmt.Errorf("GET %s: decode answer: %w", Display(u), err)
		}
		hdr = resp.Header
		return nil
	})
	return hdr, err
}

func isRedirect(code int) bool {
	return code == http.StatusMovedPermanently || code == http.StatusFound || code == http.StatusSeeOther ||
		code == http.StatusTemporaryRedirect || code == http.StatusPermanentRedirect
}

// drain closes a body we do not read, keeping the connection reusable.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
}
