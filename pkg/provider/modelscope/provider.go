// Package modelscope serves modelscope://OWNER/MODEL[/SUBFOLDER][:REVISION]
// from ModelScope as an engine plan, pinned to one commit where the hub
// names it, every file verified against the SHA-256 the listing carries.
//
// The protocol is the one the modelscope SDK speaks (modelscope/hub/api.py
// and snapshot_download.py, read at 1804ac6b): the endpoint is
// "https://" + MODELSCOPE_DOMAIN (default www.modelscope.cn; get_endpoint),
// the token MODELSCOPE_API_TOKEN goes as the m_session_id cookie
// (HubApi.get_cookies) and as Authorization: Bearer (_build_bearer_headers);
// revisions are checked against GET /api/v1/models/{repo}/revisions
// (get_valid_revision_detail: Data.RevisionMap.Branches/Tags[].Revision);
// files are listed with GET /api/v1/models/{repo}/repo/files?Revision=R
// &Recursive=True (get_model_files: Data.Files[] {Name, Path, Type
// blob|tree, Size, Sha256, Revision}, .gitignore/.gitattributes dropped) and
// read from /api/v1/models/{repo}/repo?Revision=R&FilePath=P
// (get_file_download_url), with Range for large files (parallel_download).
//
// Pinning: the SDK itself downloads by branch or tag name. This provider
// resolves the name to its head commit with the commit history endpoint
// (list_repo_commits: GET /api/v1/models/{repo}/commits?Ref=R&PageSize=1 →
// Data.Commit[0].Id) and lists and downloads with Revision=<commit>. If the
// hub does not answer that endpoint, the name itself is used (logged): each
// file is still checked against the listing's SHA-256, so a push during the
// download fails the changed file instead of mixing versions.
package modelscope

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider/hf/hubclient"
)

// DefaultDomain is the SDK's DEFAULT_MODELSCOPE_DOMAIN; the international
// site (MODELSCOPE_PREFER_AI_SITE=true) is DEFAULT_MODELSCOPE_INTL_DOMAIN.
const (
	DefaultDomain     = "www.modelscope.cn"
	DefaultIntlDomain = "www.modelscope.ai"
	defaultRevision   = "master" // DEFAULT_MODEL_REVISION
)

// Provider plans modelscope:// sources.
type Provider struct {
	getenv func(string) string
	log    *zap.Logger
	conns  int
}

// Option configures a Provider.
type Option func(*Provider)

// WithGetenv sets where MODELSCOPE_* variables are read (tests).
func WithGetenv(f func(string) string) Option { return func(p *Provider) { p.getenv = f } }

// WithLogger sets the logger.
func WithLogger(l *zap.Logger) Option { return func(p *Provider) { p.log = l } }

// WithConns sizes the connection pool.
func WithConns(n int) Option { return func(p *Provider) { p.conns = n } }

// New returns the modelscope:// provider.
func New(opts ...Option) *Provider {
	p := &Provider{getenv: func(string) string { return "" }, log: zap.NewNop(), conns: 16}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Schemes implements provider.Planner.
func (p *Provider) Schemes() []string { return []string{"modelscope"} }

// envelope is every answer's wrapper (hub/errors.py is_ok: Code 200 and Success).
type envelope[T any] struct {
	Code    int    `json:"Code"`
	Success bool   `json:"Success"`
	Message string `json:"Message"`
	Data    T      `json:"Data"`
}

type revision struct {
	Revision string `json:"Revision"`
}

type repoFile struct {
	Name   string `json:"Name"`
	Path   string `json:"Path"`
	Type   string `json:"Type"`
	Size   int64  `json:"Size"`
	Sha256 string `json:"Sha256"`
}

// Plan implements provider.Planner.
func (p *Provider) Plan(ctx context.Context, src string) (*engine.Plan, error) {
	ref, err := hubclient.ParseRef("modelscope", src)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	rev := ref.Revision
	if rev == "" {
		rev = defaultRevision
	}
	c, cls, err := p.client()
	if err != nil {
		return nil, err
	}
	cls.repo, cls.revision = ref.Repo(), rev
	base := "/api/v1/models/" + url.PathEscape(ref.Owner) + "/" + url.PathEscape(ref.Model)

	if err := p.checkRevision(ctx, c, cls, ref, base, rev); err != nil {
		return nil, err
	}
	pin, resolved := p.pin(ctx, c, cls, ref, base, rev)

	var listing envelope[struct {
		Files []repoFile `json:"Files"`
	}]
	u := c.URL(base+"/repo/files", url.Values{"Revision": {pin}, "Recursive": {"True"}})
	if _, err := c.GetJSON(ctx, u, cls.classify("file list"), &listing); err != nil {
		return nil, fmt.Errorf("list %s at %s: %w", ref, pin, err)
	}
	if err := cls.envelope(listing.Code, listing.Success, listing.Message, "file list"); err != nil {
		return nil, err
	}

	ep := strings.TrimRight(c.Endpoint().String(), "/")
	plan := &engine.Plan{Source: ref.String(), Resolved: resolved}
	for _, e := range listing.Data.Files {
		rel, ok := hubclient.Under(e.Path, ref.Sub)
		if e.Type == "tree" || !ok || e.Name == ".gitignore" || e.Name == ".gitattributes" {
			continue
		}
		name := fmt.Sprintf("modelscope://%s@%s/%s", ref.Repo(), short(pin), e.Path)
		f := engine.File{Path: rel, Size: e.Size}
		digest := fmt.Sprintf("size %d", e.Size)
		if e.Sha256 != "" {
			v, err := checksum.ParseHex(checksum.SHA256, e.Sha256)
			if err != nil {
				return nil, engine.Permanent(fmt.Errorf("%s: listing's Sha256: %w", name, err))
			}
			f.Expect = []checksum.Value{v}
			digest = "sha256:" + v.String()
		}
		f.Identity = fmt.Sprintf("modelscope %s/%s@%s/%s %s", ep, ref.Repo(), pin, e.Path, digest)
		f.Source = &hubclient.File{
			Client: c,
			// quote_plus on both values, as get_file_download_url does.
			Origin:   c.URL(base+"/repo", url.Values{"Revision": {pin}, "FilePath": {e.Path}}),
			Size:     e.Size,
			Name:     name,
			Classify: cls.classify(e.Path),
		}
		plan.Files = append(plan.Files, f)
	}
	if len(plan.Files) == 0 {
		where := "the model"
		if ref.Sub != "" {
			where = "folder " + ref.Sub
		}
		return nil, engine.Permanent(fmt.Errorf("%s: no files in %s at %s", ref, where, pin))
	}
	slices.SortFunc(plan.Files, func(a, b engine.File) int { return strings.Compare(a.Path, b.Path) })
	return plan, nil
}

func short(s string) string {
	if len(s) == 40 {
		return s[:12]
	}
	return s
}

// checkRevision is get_valid_revision_detail's check: the revision must be
// a branch or tag of the model.
func (p *Provider) checkRevision(ctx context.Context, c *hubclient.Client, cls classifier, ref hubclient.Ref, base, rev string) error {
	var revs envelope[struct {
		RevisionMap struct {
			Branches []revision `json:"Branches"`
			Tags     []revision `json:"Tags"`
		} `json:"RevisionMap"`
	}]
	if _, err := c.GetJSON(ctx, c.URL(base+"/revisions", nil), cls.classify("revisions"), &revs); err != nil {
		return fmt.Errorf("resolve %s: %w", ref, err)
	}
	if err := cls.envelope(revs.Code, revs.Success, revs.Message, "revisions"); err != nil {
		return err
	}
	var names []string
	for _, r := range append(revs.Data.RevisionMap.Branches, revs.Data.RevisionMap.Tags...) {
		if r.Revision == rev {
			return nil
		}
		names = append(names, r.Revision)
	}
	return engine.Permanent(fmt.Errorf("%s: revision %q not found: the model has %s", ref, rev, strings.Join(names, ", ")))
}

// pin returns the commit rev points at, or rev itself when the hub does
// not say.
func (p *Provider) pin(ctx context.Context, c *hubclient.Client, cls classifier, ref hubclient.Ref, base, rev string) (string, string) {
	var hist envelope[struct {
		Commit []struct {
			ID string `json:"Id"`
		} `json:"Commit"`
	}]
	u := c.URL(base+"/commits", url.Values{"Ref": {rev}, "PageNumber": {"1"}, "PageSize": {"1"}})
	_, err := c.GetJSON(ctx, u, cls.classify("commits"), &hist)
	if err == nil && hist.Code == http.StatusOK && len(hist.Data.Commit) > 0 && hist.Data.Commit[0].ID != "" {
		id := hist.Data.Commit[0].ID
		p.log.Info("resolved ModelScope revision", zap.String("source", ref.String()), zap.String("revision", rev), zap.String("commit", id))
		return id, "commit " + id
	}
	if ctx.Err() == nil {
		msg := "no commit in the answer"
		if err != nil {
			msg = err.Error()
		}
		p.log.Warn("ModelScope did not name the revision's commit; downloading by name, each file checked against its SHA-256",
			zap.String("source", ref.String()), zap.String("revision", rev), zap.String("error", msg))
	}
	return rev, "revision " + rev + " (commit not reported by the hub)"
}

// client builds the hub client from the environment.
func (p *Provider) client() (*hubclient.Client, classifier, error) {
	domain := strings.TrimSpace(p.getenv("MODELSCOPE_DOMAIN"))
	if domain == "" {
		domain = DefaultDomain
		if strings.EqualFold(strings.TrimSpace(p.getenv("MODELSCOPE_PREFER_AI_SITE")), "true") {
			domain = DefaultIntlDomain
		}
	}
	raw := domain
	if !strings.HasPrefix(raw, "http://") && !strings.HasPrefix(raw, "https://") {
		raw = "https://" + raw // MODELSCOPE_URL_SCHEME + domain; resolve_endpoint keeps an explicit scheme
	}
	ep, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || ep.Host == "" || ep.User != nil {
		return nil, classifier{}, engine.Permanent(fmt.Errorf("MODELSCOPE_DOMAIN %q is not a host name such as %s", domain, DefaultDomain))
	}
	cfg := hubclient.Config{Endpoint: ep, Conns: p.conns, Logger: p.log, HeaderTimeout: time.Minute}
	tok := strings.TrimSpace(p.getenv("MODELSCOPE_API_TOKEN"))
	if tok != "" {
		cookie := (&http.Cookie{Name: "m_session_id", Value: tok}).String()
		bearer := "Bearer " + tok
		cfg.Auth = func(h http.Header) {
			h.Set("Cookie", cookie)
			h.Set("Authorization", bearer)
		}
	}
	return hubclient.New(cfg), classifier{endpoint: strings.TrimRight(ep.String(), "/"), token: tok != ""}, nil
}
