package oci

import (
	"net/http"
	"time"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
)

// manifestHeaderTimeout bounds the wait for a registry's response headers:
// some registries compute large manifests or tokens slowly.
const manifestHeaderTimeout = 2 * time.Minute

// WithLimiter bounds this provider's requests in flight (token, manifest
// and blob requests alike) together with every other client sharing l:
// the run-wide --concurrency bound. The default is no bound beyond the
// engine's.
func WithLimiter(l *httpx.Limiter) Option { return func(c *config) { c.limiter = l } }

// newTransport builds the HTTP transport for one registry with the binary's
// rules (internal/httpx: a pool as large as the engine's bound on requests
// in flight, HTTP/1.1, bytes as served): the system's CAs plus
// SSL_CERT_FILE and the CA bundle option, and unverified TLS only for
// registries explicitly marked insecure.
func (c *config) newTransport(conns int, insecure bool) (*http.Transport, error) {
	return httpx.NewTransport(httpx.Options{
		Conns: conns,
		CAFiles: []httpx.CAFile{
			{Path: c.getenv("SSL_CERT_FILE"), From: "SSL_CERT_FILE"},
			{Path: c.caBundle, From: "the CA bundle option"},
		},
		InsecureSkipVerify:    insecure,
		ResponseHeaderTimeout: manifestHeaderTimeout,
	})
}
