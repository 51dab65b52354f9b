// Package gcs plans gs:// sources (Google Cloud Storage, or an emulator
// such as fake-gcs-server) for the engine, with credentials found the way
// KServe's initializer finds them.
//
// The provider only plans: it lists the objects and hands the engine one
// File per object, carrying the object's CRC32C (and MD5 when it has one)
// and a Loader that reads byte ranges pinned to the object's generation.
// Scheduling, retries, resume and verification are the engine's.
package gcs

import (
	"context"
	"net/http"
	"os"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// Provider handles gs:// sources.
type Provider struct {
	set        provider.Settings
	getenv     func(string) string
	httpClient *http.Client
	limiter    *httpx.Limiter
	endpoint   string
}

var _ provider.Planner = (*Provider)(nil)

// Option configures a Provider.
type Option func(*Provider)

// WithGetenv replaces os.Getenv as the source of GOOGLE_APPLICATION_CREDENTIALS
// and STORAGE_EMULATOR_HOST (tests stay independent of the machine).
func WithGetenv(getenv func(string) string) Option {
	return func(p *Provider) {
		if getenv != nil {
			p.getenv = getenv
		}
	}
}

// WithHTTPClient sets the HTTP client every request goes through
// (credentials are added on top of its transport). Default: an HTTP/1.1
// client whose connection pool matches the settings' concurrency.
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

// WithEndpoint overrides the JSON API endpoint (e.g.
// "http://127.0.0.1:4443/storage/v1/") while keeping authentication, unlike
// STORAGE_EMULATOR_HOST, which turns it off.
func WithEndpoint(url string) Option { return func(p *Provider) { p.endpoint = url } }

// New returns a gs:// provider planning with set: its logger, its
// connection pool size and its retry policy for metadata and listing
// requests.
func New(set provider.Settings, opts ...Option) *Provider {
	p := &Provider{set: set, getenv: os.Getenv}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Schemes implements provider.Planner.
func (p *Provider) Schemes() []string { return []string{"gs"} }

// Plan implements provider.Planner: it resolves src into the objects it
// names, with sizes, checksums and generation-pinned loaders. Nothing is
// downloaded.
func (p *Provider) Plan(ctx context.Context, src string) (*engine.Plan, error) {
	loc, err := parseURI(src)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	c, err := p.newClient(ctx)
	if err != nil {
		return nil, err
	}
	files, err := c.plan(ctx, loc)
	if err != nil {
		return nil, err
	}
	p.logPlan(c, loc, files)
	return &engine.Plan{Source: loc.String(), Files: files}, nil
}

func (p *Provider) logPlan(c *client, loc location, files []engine.File) {
	var total int64
	for _, f := range files {
		total += f.Size
	}
	p.set.Logger().Info("gcs plan",
		zap.String("source", loc.String()),
		zap.String("endpoint", c.where),
		zap.String("credentials", c.credSource),
		zap.Int("files", len(files)),
		zap.Int64("bytes", total))
}
