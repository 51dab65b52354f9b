// Package azblob plans Azure Blob Storage sources
// (https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH and the
// …zNN.blob.storage.azure.net form, or Azurite) for the engine, with
// credentials found the way KServe's initializer finds them.
//
// The provider only plans: it lists the blobs and hands the engine one File
// per blob, carrying the blob's Content-MD5 when it has one and a Loader
// that reads byte ranges pinned with If-Match to the blob's ETag and checks
// a transactional MD5 on every sub-range of at most 4 MiB, so corruption in
// transit is caught even for blobs without a stored MD5.
package azblob

import (
	"context"
	"net/http"
	"os"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// Provider handles Azure Blob URIs.
type Provider struct {
	set        provider.Settings
	getenv     func(string) string
	httpClient *http.Client
	limiter    *httpx.Limiter
	pageSize   int32 // blobs per listing page; 0: the service's default (tests page through small folders)
}

var _ provider.Planner = (*Provider)(nil)

// Option configures a Provider.
type Option func(*Provider)

// WithGetenv replaces os.Getenv as the source of AZURE_* and AZ_* variables
// (tests stay independent of the machine).
func WithGetenv(getenv func(string) string) Option {
	return func(p *Provider) {
		if getenv != nil {
			p.getenv = getenv
		}
	}
}

// WithHTTPClient sets the HTTP client every request goes through. Default:
// an HTTP/1.1 client whose connection pool matches the settings'
// concurrency.
func WithHTTPClient(c *http.Client) Option {
	return func(p *Provider) {
		if c != nil {
			p.httpClient = c
		}
	}
}

// WithLimiter shares a run-wide bound on requests in flight with the other
// providers' transports (default client only).
func WithLimiter(l *httpx.Limiter) Option { return func(p *Provider) { p.limiter = l } }

// New returns an Azure Blob provider planning with set: its logger, its
// connection pool size and its retry policy for listing and property
// requests.
func New(set provider.Settings, opts ...Option) *Provider {
	p := &Provider{set: set, getenv: os.Getenv}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Schemes implements provider.Planner. Azure Blob URIs are https:// URIs
// of particular hosts: the CLI must ask Matches before giving an https://
// URI to the generic web provider.
func (p *Provider) Schemes() []string { return []string{"https"} }

// Plan implements provider.Planner: it resolves src into the blobs it
// names, with sizes, checksums and ETag-pinned loaders. Nothing is
// downloaded.
func (p *Provider) Plan(ctx context.Context, src string) (*engine.Plan, error) {
	loc, err := parseURI(src)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	c, err := p.newClient(loc)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	files, err := c.plan(ctx, loc)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	p.set.Logger().Info("azure blob plan",
		zap.String("source", loc.String()),
		zap.String("endpoint", c.where),
		zap.String("credentials", c.auth.source),
		zap.String("verification", "transactional md5 per range (≤4 MiB), plus Content-MD5 where the blob has one"),
		zap.Int("files", len(files)),
		zap.Int64("bytes", total))
	return &engine.Plan{Source: loc.String(), Files: files}, nil
}
