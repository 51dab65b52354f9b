// Package httpx builds the HTTP clients of every provider (S3, OCI,
// http(s)) under one set of rules, rclone's fshttp idea: proxies from the
// environment, extra CA bundles, optional unverified TLS, HTTP/1.1 only, the
// bytes as served, a connection pool as large as the requests in flight,
// bounded dial/handshake/header waits, one redirect policy (redirect.go)
// and an optional run-wide bound on requests in flight (limiter.go).
package httpx

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// Default waits, used when Options leaves them zero.
const (
	DefaultDialTimeout           = 30 * time.Second
	DefaultTLSHandshakeTimeout   = 15 * time.Second
	DefaultResponseHeaderTimeout = time.Minute
)

// Options says how to build a transport or client. The zero value is
// usable: system CAs, verified TLS, default waits.
type Options struct {
	// Conns is the number of requests the caller keeps in flight at once;
	// the pool keeps that many idle connections per host (plus a few for
	// planning requests and stragglers), or every range pays a handshake.
	Conns int
	// CAFiles are PEM bundles trusted in addition to the system's CAs
	// (added to them, so a bundle holding only a private CA does not break
	// public endpoints).
	CAFiles []CAFile
	// InsecureSkipVerify accepts any server certificate. Only for what the
	// user marked insecure.
	InsecureSkipVerify bool
	// Waits; zero means the Default* value.
	DialTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	// ReadBufferSize of each connection; zero keeps net/http's 4 KiB.
	ReadBufferSize int
	// SensitiveHeaders are dropped, like Authorization, when a redirect
	// leaves the origin of the first request (see CheckRedirect).
	SensitiveHeaders []string
	// Limiter, when set, bounds the requests in flight of every client
	// sharing it (NewClient only).
	Limiter *Limiter
}

// CAFile is a PEM bundle and where its name came from (an environment
// variable, a flag), so an error can say what to fix.
type CAFile struct {
	Path string
	From string // e.g. "SSL_CERT_FILE", "--ca-bundle"
}

// NewTransport returns a transport configured by o (Limiter and
// SensitiveHeaders do not apply to a bare transport).
func NewTransport(o Options) (*http.Transport, error) {
	tr := &http.Transport{}
	if err := Configure(tr, o); err != nil {
		return nil, err
	}
	return tr, nil
}

// Configure sets every field of tr that o decides. It exists for SDKs that
// build the transport themselves (the AWS SDK's BuildableClient hands one
// to a callback); NewTransport is the usual way.
func Configure(tr *http.Transport, o Options) error {
	tlsCfg, err := tlsConfig(o)
	if err != nil {
		return err
	}
	dialer := &net.Dialer{Timeout: orDefault(o.DialTimeout, DefaultDialTimeout), KeepAlive: 30 * time.Second}
	perHost := max(o.Conns+4, 16)
	tr.Proxy = http.ProxyFromEnvironment // HTTP_PROXY, HTTPS_PROXY, NO_PROXY
	tr.DialContext = dialer.DialContext
	tr.TLSClientConfig = tlsCfg
	tr.TLSHandshakeTimeout = orDefault(o.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	tr.ResponseHeaderTimeout = orDefault(o.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	tr.ExpectContinueTimeout = time.Second
	tr.MaxIdleConnsPerHost = perHost
	tr.MaxIdleConns = max(2*perHost, 100)
	tr.IdleConnTimeout = 90 * time.Second
	// HTTP/1.1 only: parallel ranged GETs want parallel TCP connections,
	// not streams of one HTTP/2 connection whose flow-control window caps
	// them all.
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	// Never ask for gzip and decompress transparently: a body must arrive
	// as the stored bytes, or sizes, ranges and checksums would not match.
	tr.DisableCompression = true
	if o.ReadBufferSize > 0 {
		tr.ReadBufferSize = o.ReadBufferSize
	}
	return nil
}

// NewClient returns a client with o's transport, the redirect policy and,
// when o.Limiter is set, the bound on requests in flight. There is no
// overall timeout: bodies can be hundreds of GiB; callers bound silence
// (idle timeouts) instead.
func NewClient(o Options) (*http.Client, error) {
	tr, err := NewTransport(o)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: o.Limiter.Wrap(tr), CheckRedirect: CheckRedirect(o.SensitiveHeaders...)}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
