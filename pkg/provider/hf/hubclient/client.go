// Package hubclient is the HTTP plumbing the model-hub providers (hf://,
// modelscope://) share: one client that sends credentials only to the hub's
// own host (never to a CDN a file redirects to), bounded retries with
// Retry-After for metadata requests, and a ranged loader that resolves a
// file's redirect once and re-resolves it when a signed URL expires.
package hubclient

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Config describes one hub.
type Config struct {
	// Endpoint is the hub's base URL (HF_ENDPOINT, MODELSCOPE_DOMAIN).
	Endpoint *url.URL
	// Auth sets credentials on a request to Endpoint's host; nil: anonymous.
	Auth func(http.Header)
	// MetaTimeout bounds one metadata request, body included.
	MetaTimeout time.Duration
	// HeaderTimeout bounds the wait for response headers of any request
	// (downloads included); bodies are bounded by the engine's stall timeout.
	HeaderTimeout time.Duration
	// Conns is how many requests may run at once (connection pool size).
	Conns  int
	Logger *zap.Logger
}

// Client talks to one hub.
type Client struct {
	http *http.Client
	cfg  Config
	log  *zap.Logger
}

// Metadata requests are retried here (the engine retries only ranges):
// transient failures and throttling, with backoff and Retry-After.
const (
	metaAttempts  = 4
	metaBaseDelay = 500 * time.Millisecond
	metaMaxDelay  = 30 * time.Second
	maxRedirects  = 10
)

// New returns a client for cfg.
func New(cfg Config) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	tr.MaxIdleConnsPerHost = max(cfg.Conns, 2)
	tr.MaxIdleConns = max(cfg.Conns*2, 100)
	// Bytes are stored as served: the Hub gzips text files for clients that
	// accept it (huggingface_hub asks for identity for the same reason).
	tr.DisableCompression = true
	tr.ResponseHeaderTimeout = cfg.HeaderTimeout
	if cfg.MetaTimeout <= 0 {
		cfg.MetaTimeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Client{
		// Redirects are never followed by net/http: it would forward
		// Authorization to a subdomain (cdn-lfs.huggingface.co). Callers
		// follow them and decide per host.
		http: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		cfg: cfg,
		log: log,
	}
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
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return nil, engine.Permanent(fmt.Errorf("%s %s: %w: add the hub's CA to SSL_CERT_FILE", method, Display(u), err))
		}
		return nil, fmt.Errorf("%s %s: %w", method, Display(u), err)
	}
	return resp, nil
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
// retry semantics: 429 and 503 are retried after Retry-After, other 5xx and
// 408 are retried, everything else is Permanent.
func StatusError(resp *http.Response, classify Classify) error {
	err := classify(resp)
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		d, _ := RetryAfter(resp.Header, time.Now())
		return engine.RetryAfter(&throttled{err: err, after: d}, d)
	case code >= 500 || code == http.StatusRequestTimeout:
		return err
	default:
		return engine.Permanent(err)
	}
}

// throttled keeps the server's delay readable here (the engine's own
// wrapper is private to it).
type throttled struct {
	err   error
	after time.Duration
}

func (t *throttled) Error() string { return t.err.Error() }
func (t *throttled) Unwrap() error { return t.err }

// Retry runs fn up to metaAttempts times: Permanent errors and cancellation
// end at once; a throttled error waits at least what the server asked.
func (c *Client) Retry(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, c.cfg.MetaTimeout)
		err := fn(actx)
		timedOut := actx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			return nil
		}
		if timedOut {
			err = fmt.Errorf("%s: no complete answer within %s: %w", what, c.cfg.MetaTimeout, err)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if engine.IsPermanent(err) || attempt >= metaAttempts {
			return err
		}
		d := metaBaseDelay << (attempt - 1)
		d = d/2 + rand.N(d/2+1)
		var th *throttled
		if errors.As(err, &th) && th.after > d {
			d = min(th.after, metaMaxDelay)
		}
		c.log.Warn("retrying hub request", zap.String("request", what), zap.Int("attempt", attempt),
			zap.Duration("delay", d), zap.String("error", err.Error()))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// GetJSON fetches u (retried), decodes the body into v and returns the
// response headers (for Link pagination). Same-origin redirects are
// followed (a renamed repository, as huggingface_hub does for HEAD).
func (c *Client) GetJSON(ctx context.Context, u *url.URL, classify Classify, v any) (http.Header, error) {
	var hdr http.Header
	err := c.Retry(ctx, "GET "+Display(u), func(ctx context.Context) error {
		target := u
		for hop := 0; ; hop++ {
			resp, err := c.Do(ctx, http.MethodGet, target, http.Header{"Accept": {"application/json"}})
			if err != nil {
				return err
			}
			if loc := resp.Header.Get("Location"); isRedirect(resp.StatusCode) && loc != "" && hop < maxRedirects {
				drain(resp)
				next, err := target.Parse(loc)
				if err != nil || !c.OnEndpoint(next) {
					return engine.Permanent(fmt.Errorf("GET %s: redirected off the hub to %q", Display(u), loc))
				}
				target = next
				continue
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
		}
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
