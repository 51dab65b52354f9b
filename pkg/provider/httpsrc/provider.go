// Package httpsrc fetches one file from an http:// or https:// URL, like
// KServe's initializer, but in parallel ranges when the server allows it,
// with retries, resume, verification and an atomic commit. A downloaded
// tar or zip archive is extracted into DEST and removed.
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
	eng    *engine.Engine
	getenv func(string) string
	log    *zap.Logger
	client *http.Client
	// clientErr is why the client could not be built, reported by Fetch.
	clientErr error
	limiter   *httpx.Limiter
}

var _ provider.Provider = (*Provider)(nil)

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

// WithLogger sets the logger (default: the engine's).
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

// New returns a provider for http(s) sources that downloads through eng.
func New(eng *engine.Engine, opts ...Option) *Provider {
	p := &Provider{eng: eng, getenv: os.Getenv, log: eng.Logger()}
	for _, o := range opts {
		o(p)
	}
	if p.client == nil {
		p.client, p.clientErr = newClient(eng.Concurrency(), p.limiter)
	}
	return p
}

// Schemes implements provider.Provider.
func (p *Provider) Schemes() []string { return []string{"http", "https"} }

// Fetch implements provider.Provider: the file at src becomes DEST/NAME (NAME
// being the URL path's last segment), or, for an archive, its contents.
func (p *Provider) Fetch(ctx context.Context, src, dest string) (*engine.Report, error) {
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
	if p.eng.Verify() == engine.VerifyStrict && len(t.expect) == 0 {
		return nil, engine.Permanent(fmt.Errorf("%s: a web server offers no checksum and --verify=strict is set: "+
			"append #sha256=HEX to the URL or use --verify=auto", t.display))
	}
	kind := kindByName(t.name)
	if kind == kindNone && !p.eng.Keep(t.name) {
		p.log.Info("the include/exclude patterns drop this file", zap.String("url", t.display))
		return &engine.Report{}, nil
	}
	r := &request{c: p.client, t: t, hdr: hdr, hdrVar: hdrVar}
	var m remote
	if err := retry(ctx, p.log, "HEAD "+t.display, func() (err error) { m, err = r.probe(ctx); return err }); err != nil {
		return nil, err
	}
	p.log.Info("probed", zap.String("url", t.display), zap.Int64("size", m.size), zap.Bool("ranges", m.ranges),
		zap.String("archive", kind))
	if p.eng.DryRun() {
		return dryRunReport(t, m, kind), nil
	}
	// The engine runs ranged (or, for a file of one chunk, whole) reads. An
	// archive the include/exclude patterns would drop by name bypasses it:
	// the patterns apply to its contents.
	if m.size >= 0 && (m.ranges || m.size <= p.eng.ChunkSize()) && (kind == kindNone || p.eng.Keep(t.name)) {
		return p.viaEngine(ctx, r, m, dest, kind)
	}
	return p.viaStream(ctx, r, m, dest, kind)
}

// viaEngine downloads into DEST/NAME through the engine, then unpacks it
// when it is an archive.
func (p *Provider) viaEngine(ctx context.Context, r *request, m remote, dest, kind string) (*engine.Report, error) {
	f := engine.File{Path: r.t.name, Size: m.size, ModTime: m.modTime, Expect: r.t.expect,
		Identity: m.identity(r.t), Source: &loader{r: r, m: m}}
	rep, err := p.eng.Fetch(ctx, dest, []engine.File{f})
	if err != nil || len(rep.Files) == 0 {
		return rep, err // an error, or a file the patterns drop
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", dest, err)
	}
	defer root.Close()
	fh, err := root.Open(r.t.name)
	if err != nil {
		return nil, fmt.Errorf("open downloaded %s: %w", r.t.name, err)
	}
	defer fh.Close()
	if kind == kindNone && sniffable(r.t.name) {
		kind = sniff(fh)
	}
	if kind == kindNone {
		return rep, nil
	}
	u, err := p.unpack(ctx, dest, r.t.name, kind, fh, m.size)
	if err != nil {
		return nil, err
	}
	// Removed before the commit: the archive may hold a file of its own name.
	if err := root.Remove(r.t.name); err != nil {
		u.stage.Discard()
		return nil, fmt.Errorf("remove archive %s after extraction: %w", r.t.name, err)
	}
	return u.commit(ctx, dest, r.t.name, rep.Files[0])
}

// viaStream downloads with one GET into a staging folder, then commits the
// file or unpacks it.
func (p *Provider) viaStream(ctx context.Context, r *request, m remote, dest, kind string) (*engine.Report, error) {
	st, err := engine.NewStage(dest, "http-"+r.t.name)
	if err != nil {
		return nil, err
	}
	if err := st.Reset(); err != nil {
		st.Discard()
		return nil, err
	}
	p.eng.Observer().Planned(1, max(m.size, 0))
	res, err := p.stream(ctx, r, m, st.Root(), r.t.name)
	if err != nil {
		st.Discard()
		return nil, err
	}
	fh, err := st.Root().Open(r.t.name)
	if err != nil {
		st.Discard()
		return nil, fmt.Errorf("open downloaded %s: %w", r.t.name, err)
	}
	defer fh.Close()
	if kind == kindNone && sniffable(r.t.name) {
		kind = sniff(fh)
	}
	if kind == kindNone {
		if _, err := st.Commit(ctx); err != nil {
			return nil, err
		}
		p.eng.Observer().FileDone(res)
		return &engine.Report{Files: []engine.FileResult{res}, Bytes: res.Size, Fetched: res.Fetched}, nil
	}
	u, err := p.unpack(ctx, dest, r.t.name, kind, fh, res.Size)
	fh.Close()
	st.Discard()
	if err != nil {
		return nil, err
	}
	p.eng.Observer().FileDone(res)
	return u.commit(ctx, dest, r.t.name, res)
}

// dryRunReport says what Fetch would download (--dry-run).
func dryRunReport(t target, m remote, kind string) *engine.Report {
	verified := "size only"
	if len(t.expect) > 0 {
		verified = string(t.expect[0].Algorithm) + " (URL fragment)"
	}
	if kind != kindNone {
		verified += ", extracted as " + kind
	}
	return &engine.Report{Bytes: max(m.size, 0), Files: []engine.FileResult{{Path: t.name, Size: m.size,
		Status: engine.StatusPlanned, Verified: verified}}}
}
