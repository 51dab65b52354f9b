// Package httpsrc plans one file from an http:// or https:// URL, like
// KServe's initializer, but read in parallel ranges when the server allows
// it (else as one stream), with the engine's retries, resume, verification
// and atomic commit. A tar or zip archive becomes a unit the engine unpacks
// into DEST; the archive itself is not kept.
//
// (The package is not called "http" so it does not shadow net/http.)
package httpsrc

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// Provider handles http:// and https:// sources.
type Provider struct {
	set    provider.Settings
	getenv func(string) string
	log    *zap.Logger
	client *http.Client
	// clientErr is why the client could not be built, reported by Fetch.
	clientErr error
	limiter   *httpx.Limiter
}

var _ provider.Planner = (*Provider)(nil)

// Option configures a Provider.
type Option func(*Provider)

// WithGetenv replaces os.Getenv as the source of the "<host>-headers"
// variables. Proxy variables are always read from the process environment.
func WithGetenv(getenv func(string) string) Option {
	return func(p *Provider) {
		if getenv != nil {
			p.getenv = getenv
		}
	}
}

// WithLogger sets the logger (default: the settings').
func WithLogger(l *zap.Logger) Option {
	return func(p *Provider) {
		if l != nil {
			p.log = l
		}
	}
}

// WithHTTPClient replaces the client (tests with TLS servers).
func WithHTTPClient(c *http.Client) Option {
	return func(p *Provider) {
		if c != nil {
			p.client = c
		}
	}
}

// New returns a provider for http(s) sources.
func New(set provider.Settings, opts ...Option) *Provider {
	p := &Provider{set: set, getenv: os.Getenv, log: set.Logger()}
	for _, o := range opts {
		o(p)
	}
	if p.client == nil {
		p.client, p.clientErr = newClient(set.Conns(), p.limiter)
	}
	return p
}

// Schemes implements provider.Planner.
func (p *Provider) Schemes() []string { return []string{"http", "https"} }

// Plan implements provider.Planner: the file at src becomes DEST/NAME (NAME
// being the URL path's last segment), or, for an archive, its contents.
func (p *Provider) Plan(ctx context.Context, src string) (*engine.Plan, error) {
	if p.clientErr != nil {
		return nil, engine.Permanent(p.clientErr)
	}
	t, err := parseTarget(src)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	hdr, hdrVar, err := headersFor(p.getenv, t.host)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	if p.set.Verify == engine.VerifyStrict && len(t.expect) == 0 {
		return nil, engine.Permanent(fmt.Errorf("%s: a web server offers no checksum and --verify=strict is set: "+
			"append #sha256=HEX to the URL or use --verify=auto", t.display))
	}
	r := &request{c: p.client, t: t, hdr: hdr, hdrVar: hdrVar}
	var m remote
	if err := p.set.Retry(ctx, "HEAD "+t.display, func(ctx context.Context) (err error) { m, err = r.probe(ctx); return err }); err != nil {
		return nil, err
	}
	if m.ranges && !m.rangesSeen && m.size > p.set.Chunk() {
		// Trust, but check: a server (or a proxy) that advertises ranges
		// and ignores them is read in one stream rather than failed.
		if err := p.set.Retry(ctx, "GET "+t.display+" (range check)", func(ctx context.Context) error { return r.confirmRanges(ctx, &m) }); err != nil {
			return nil, err
		}
	}
	kind := kindByName(t.name)
	if kind == kindNone && sniffable(t.name) && m.size != 0 {
		if kind, err = p.sniffRemote(ctx, r, m); err != nil {
			return nil, err
		}
	}
	p.log.Info("probed", append([]zap.Field{zap.String("url", t.display), zap.Int64("size", m.size),
		zap.String("archive", kind)}, m.logFields()...)...)
	f := engine.File{Path: t.name, Size: m.size, ModTime: m.modTime, Expect: t.expect,
		Identity: m.identity(t), Source: &loader{r: r, m: m},
		// Without ranges (or a size) the engine reads one stream, restarted
		// on failure; a file of one chunk is one request either way.
		Stream: m.size < 0 || !m.ranges && m.size > p.set.Chunk()}
	plan := &engine.Plan{Source: t.display}
	if kind == kindNone {
		plan.Files = []engine.File{f}
		return plan, nil
	}
	plan.Units = []engine.Unit{archiveUnit(t, f, kind)}
	return plan, nil
}
