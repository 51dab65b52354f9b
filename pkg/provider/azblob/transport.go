package azblob

import (
	"net/http"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
)

// httpClient is the client every request goes through: the one
// WithHTTPClient gave, else httpx's (HTTP/1.1, a pool as large as the
// concurrency, bodies as stored, bounded waits, the shared limiter).
func (p *Provider) client() (*http.Client, error) {
	if p.httpClient != nil {
		return p.httpClient, nil
	}
	return httpx.NewClient(httpx.Options{Conns: p.set.Conns(), Limiter: p.limiter})
}
