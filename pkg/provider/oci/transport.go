package oci

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// newTransport builds the HTTP transport for one registry: a connection
// pool as large as the engine's bound on requests in flight, HTTP/1.1 only
// (parallel ranged GETs want parallel TCP connections, not streams sharing
// one), no transparent gzip (it would break byte ranges), the system's CAs
// plus SSL_CERT_FILE and the CA bundle option, and unverified TLS only for
// registries explicitly marked insecure.
func (c *config) newTransport(conns int, insecure bool) (*http.Transport, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, f := range []struct{ path, what string }{
		{c.getenv("SSL_CERT_FILE"), "SSL_CERT_FILE"},
		{c.caBundle, "the CA bundle option"},
	} {
		if f.path == "" {
			continue
		}
		pem, err := os.ReadFile(f.path)
		if err != nil {
			return nil, fmt.Errorf("read CA certificates %s (from %s): %w", f.path, f.what, err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read CA certificates %s (from %s): no PEM certificate found", f.path, f.what)
		}
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		MaxIdleConnsPerHost:   conns + 4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
		TLSClientConfig: &tls.Config{
			RootCAs:            pool,
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: insecure, //nolint:gosec // only for registries the user marked insecure
		},
	}, nil
}
