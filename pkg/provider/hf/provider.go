// Package hf serves hf://OWNER/MODEL[/SUBFOLDER][:REVISION] from the
// Hugging Face Hub (or a mirror at HF_ENDPOINT) as an engine plan, pinned
// to one commit, every file verified: SHA-256 for LFS/Xet files, the git
// blob SHA-1 for the rest.
//
// The protocol is the one huggingface_hub speaks (read at ee0a4510):
// snapshot_download resolves the revision once (HfApi.repo_info:
// GET /api/models/{repo}/revision/{rev} → "sha"), lists the tree at that
// commit (HfApi.list_repo_tree: GET /api/models/{repo}/tree/{commit}
// ?recursive=true&expand=false, paginated by the Link header, entries
// {type, path, size, oid, lfs: {oid, size, pointerSize}, xetHash}) and
// downloads /{repo}/resolve/{commit}/{path} (hf_hub_url), whose large files
// redirect to a CDN.
package hf

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider/hf/hubclient"
)

// DefaultEndpoint is huggingface_hub's _HF_DEFAULT_ENDPOINT.
const DefaultEndpoint = "https://huggingface.co"

// defaultRevision is constants.DEFAULT_REVISION.
const defaultRevision = "main"

// defaultEtagTimeout is constants.DEFAULT_ETAG_TIMEOUT (seconds): the
// bound of the metadata HEAD unless HF_HUB_ETAG_TIMEOUT says otherwise.
const defaultEtagTimeout = 10 * time.Second

var commitRe = regexp.MustCompile(`^[0-9a-f]{40}$`) // file_download.REGEX_COMMIT_HASH

// Provider plans hf:// sources.
type Provider struct {
	getenv func(string) string
	log    *zap.Logger
	conns  int
}

// Option configures a Provider.
type Option func(*Provider)

// WithGetenv sets where HF_* variables are read (tests).
func WithGetenv(f func(string) string) Option { return func(p *Provider) { p.getenv = f } }

// WithLogger sets the logger (the resolved commit is logged at info).
func WithLogger(l *zap.Logger) Option { return func(p *Provider) { p.log = l } }

// WithConns sizes the connection pool (the engine's request bound).
func WithConns(n int) Option { return func(p *Provider) { p.conns = n } }

// New returns the hf:// provider.
func New(opts ...Option) *Provider {
	p := &Provider{getenv: func(string) string { return "" }, log: zap.NewNop(), conns: 16}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Schemes implements provider.Planner.
func (p *Provider) Schemes() []string { return []string{"hf"} }

// treeEntry is one element of the tree listing (hf_api.RepoFile's fields).
type treeEntry struct {
	Type string `json:"type"`
	Path string `json:"path"`
	Size int64  `json:"size"`
	OID  string `json:"oid"`
	LFS  *struct {
		OID    string `json:"oid"`
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"lfs"`
	XetHash string `json:"xetHash"`
}

// Plan implements provider.Planner: resolve, list, probe, describe.
func (p *Provider) Plan(ctx context.Context, src string) (*engine.Plan, error) {
	ref, err := hubclient.ParseRef("hf", src)
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
	ep := strings.TrimRight(c.Endpoint().String(), "/")

	commit, err := p.resolve(ctx, c, cls, ref, rev)
	if err != nil {
		return nil, err
	}
	p.log.Info("resolved Hugging Face revision", zap.String("source", ref.String()), zap.String("revision", rev),
		zap.String("commit", commit))
	entries, err := p.list(ctx, c, cls, ref, commit)
	if err != nil {
		return nil, err
	}

	plan := &engine.Plan{Source: ref.String(), Resolved: "commit " + commit}
	for _, e := range entries {
		rel, ok := hubclient.Under(e.Path, ref.Sub)
		if e.Type != "file" || !ok {
			continue
		}
		f := engine.File{Path: rel, Size: e.Size}
		name := fmt.Sprintf("hf://%s@%s/%s", ref.Repo(), commit[:12], e.Path)
		f.Expect, err = expected(e)
		if err != nil {
			return nil, engine.Permanent(fmt.Errorf("%s: %w", name, err))
		}
		digest := "size " + strconv.FormatInt(e.Size, 10)
		if len(f.Expect) > 0 {
			digest = string(f.Expect[0].Algorithm) + ":" + f.Expect[0].String()
		}
		f.Identity = fmt.Sprintf("hf %s/%s@%s/%s %s", ep, ref.Repo(), commit, e.Path, digest)
		f.Source = &hubclient.File{
			Client:   c,
			Origin:   resolveURL(c, ref.Repo(), commit, e.Path),
			Size:     e.Size,
			Name:     name,
			Classify: cls.classify(e.Path),
		}
		plan.Files = append(plan.Files, f)
	}
	if len(plan.Files) == 0 {
		where := "the repository"
		if ref.Sub != "" {
			where = "folder " + ref.Sub
		}
		return nil, engine.Permanent(fmt.Errorf("%s: no files in %s at commit %s", ref, where, commit))
	}
	slices.SortFunc(plan.Files, func(a, b engine.File) int { return strings.Compare(a.Path, b.Path) })
	if err := p.probe(ctx, c, cls, ref, commit, plan.Files[0]); err != nil {
		return nil, err
	}
	return plan, nil
}

// expected is what the listing vouches for: LFS (and Xet, which keeps an
// LFS pointer in git) files have the content's SHA-256 in lfs.oid; for the
// rest oid is the git blob SHA-1 of the content. For an LFS file oid hashes
// the pointer, not the content, so it is never used.
func expected(e treeEntry) ([]checksum.Value, error) {
	if e.LFS != nil {
		sum := e.LFS.OID
		if sum == "" {
			sum = e.LFS.SHA256
		}
		sum = strings.TrimPrefix(sum, "sha256:")
		if sum == "" {
			return nil, nil
		}
		v, err := checksum.ParseHex(checksum.SHA256, sum)
		if err != nil {
			return nil, fmt.Errorf("listing's lfs.oid: %w", err)
		}
		return []checksum.Value{v}, nil
	}
	if e.XetHash != "" || e.OID == "" {
		return nil, nil // no content hash the engine can compute
	}
	v, err := checksum.ParseHex(checksum.GitSHA1, e.OID)
	if err != nil {
		return nil, fmt.Errorf("listing's oid: %w", err)
	}
	return []checksum.Value{v}, nil
}

// client builds the Hub client from the environment.
func (p *Provider) client() (*hubclient.Client, classifier, error) {
	raw := strings.TrimRight(p.getenv("HF_ENDPOINT"), "/") // constants.ENDPOINT
	if raw == "" {
		raw = DefaultEndpoint
	}
	ep, err := url.Parse(raw)
	if err != nil || (ep.Scheme != "https" && ep.Scheme != "http") || ep.Host == "" || ep.User != nil {
		return nil, classifier{}, engine.Permanent(fmt.Errorf("HF_ENDPOINT %q is not an http(s) URL such as %s", hubclient.Display(ep), DefaultEndpoint))
	}
	tok, err := readToken(p.getenv)
	if err != nil {
		return nil, classifier{}, engine.Permanent(err)
	}
	cfg := hubclient.Config{Endpoint: ep, Conns: p.conns, Logger: p.log, HeaderTimeout: time.Minute}
	// HF_HUB_DOWNLOAD_TIMEOUT is huggingface_hub's timeout of GET requests
	// and the default of the others: it bounds each metadata request and
	// the wait for any response's headers. Stalled bodies are the engine's
	// --read-timeout.
	if d, ok := seconds(p.getenv("HF_HUB_DOWNLOAD_TIMEOUT")); ok {
		cfg.MetaTimeout, cfg.HeaderTimeout = d, d
	}
	if tok.value != "" {
		bearer := "Bearer " + tok.value
		cfg.Auth = func(h http.Header) { h.Set("Authorization", bearer) }
	}
	return hubclient.New(cfg), classifier{endpoint: strings.TrimRight(ep.String(), "/"), tok: tok}, nil
}

// seconds reads an integer number of seconds (constants._as_int: anything
// else means unset).
func seconds(s string) (time.Duration, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

func repoPath(repo string) string {
	o, m, _ := strings.Cut(repo, "/")
	return "/" + url.PathEscape(o) + "/" + url.PathEscape(m)
}

// resolveURL is hf_hub_url: {endpoint}/{repo}/resolve/{revision}/{quote(path)}.
func resolveURL(c *hubclient.Client, repo, commit, path string) *url.URL {
	return c.URL(repoPath(repo)+"/resolve/"+commit+"/"+hubclient.EscapePath(path), nil)
}

// resolve pins the revision to a commit (model_info with a revision:
// /api/models/{repo}/revision/{quote(rev, safe="")}).
func (p *Provider) resolve(ctx context.Context, c *hubclient.Client, cls classifier, ref hubclient.Ref, rev string) (string, error) {
	var info struct {
		SHA string `json:"sha"`
	}
	u := c.URL("/api/models"+repoPath(ref.Repo())+"/revision/"+url.PathEscape(rev), nil)
	if _, err := c.GetJSON(ctx, u, cls.classify("revision "+rev), &info); err != nil {
		return "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	if !commitRe.MatchString(info.SHA) {
		return "", engine.Permanent(fmt.Errorf("resolve %s: the Hub answered commit %q, not a 40-hex sha", ref, info.SHA))
	}
	return info.SHA, nil
}

// list reads the whole tree at commit, following Link pagination. Every
// page is of the same commit, so a push while listing cannot mix trees.
func (p *Provider) list(ctx context.Context, c *hubclient.Client, cls classifier, ref hubclient.Ref, commit string) ([]treeEntry, error) {
	u := c.URL("/api/models"+repoPath(ref.Repo())+"/tree/"+commit, url.Values{"recursive": {"true"}, "expand": {"false"}})
	var all []treeEntry
	for page := 1; u != nil; page++ {
		if page > 100000 {
			return nil, engine.Permanent(fmt.Errorf("list %s: more than 100000 pages", ref))
		}
		var entries []treeEntry
		hdr, err := c.GetJSON(ctx, u, cls.classify("tree"), &entries)
		if err != nil {
			return nil, fmt.Errorf("list %s at commit %s: %w", ref, commit, err)
		}
		all = append(all, entries...)
		if u, err = hubclient.NextPage(hdr, u); err != nil {
			return nil, engine.Permanent(fmt.Errorf("list %s: bad Link header: %w", ref, err))
		}
	}
	return all, nil
}

// probe sends the metadata HEAD huggingface_hub sends before a download
// (get_hf_file_metadata: no redirect followed, X-Repo-Commit) for one file,
// so a gated or private model fails before anything is fetched, with the
// Hub's reason.
func (p *Provider) probe(ctx context.Context, c *hubclient.Client, cls classifier, ref hubclient.Ref, commit string, f engine.File) error {
	timeout := defaultEtagTimeout
	if d, ok := seconds(p.getenv("HF_HUB_ETAG_TIMEOUT")); ok {
		timeout = d
	}
	src := f.Source.(*hubclient.File)
	return c.Retry(ctx, "HEAD "+src.Name, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		resp, err := c.Do(ctx, http.MethodHead, src.Origin, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", src.Name, err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			return hubclient.StatusError(resp, src.Classify)
		}
		if got := resp.Header.Get("X-Repo-Commit"); got != "" && got != commit {
			return engine.Permanent(fmt.Errorf("%s: the Hub serves commit %s for a request of commit %s", ref, got, commit))
		}
		return nil
	})
}
