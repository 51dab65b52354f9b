package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.uber.org/zap"
)

// mirror sends the pulls from one registry ("" = every registry) to host.
type mirror struct {
	registry string // as name.Registry.RegistryStr() spells it ("index.docker.io")
	host     string
}

// WithRegistryMirrors pulls through registry mirrors: pull-through caches
// such as Dragonfly's registry mirror, Harbor's proxy cache or a CNCF
// distribution registry with proxy.remoteurl. Each spec is MIRROR (for every
// registry) or REGISTRY=MIRROR, both host[:port]; a mirror for the named
// registry wins over one for every registry. The mirror serves the same
// repository and tag or digest; when it is unreachable, answers 5xx or does
// not have the image, the pull falls back to the registry itself. Digests
// are verified as for any registry, so a mirror is a cache, not a trusted
// party (but a tag is resolved by the mirror: pin a digest for end-to-end
// trust). A mirror on a loopback or private address is plain http; any other
// follows WithInsecure. An invalid spec fails Plan and Fetch.
func WithRegistryMirrors(specs ...string) Option {
	return func(c *config) {
		ms, err := parseMirrors(specs)
		if err != nil {
			c.mirrorErr = err
			return
		}
		c.mirrors = append(c.mirrors, ms...)
	}
}

// parseMirrors reads MIRROR and REGISTRY=MIRROR specs; empty ones (a
// trailing comma in the environment variable) are ignored.
func parseMirrors(specs []string) ([]mirror, error) {
	var out []mirror
	seen := map[string]string{}
	for _, s := range specs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var m mirror
		host := s
		if reg, mh, ok := strings.Cut(s, "="); ok {
			r, err := mirrorHost(s, reg)
			if err != nil {
				return nil, err
			}
			m.registry, host = r, mh
		}
		h, err := mirrorHost(s, host)
		if err != nil {
			return nil, err
		}
		m.host = h
		// Two mirrors for one registry would leave the second unused.
		if prev, dup := seen[m.registry]; dup {
			return nil, fmt.Errorf("registry mirror %q: %s already has the mirror %s (give one mirror per registry)", s, orEvery(m.registry), prev)
		}
		seen[m.registry] = m.host
		out = append(out, m)
	}
	return out, nil
}

// mirrorHost checks one host[:port] of a spec and returns it as
// go-containerregistry names it (docker.io becomes index.docker.io, so the
// spec matches the references that name Docker Hub either way).
func mirrorHost(spec, host string) (string, error) {
	host = strings.TrimSpace(host)
	if host == "" || strings.Contains(host, "://") || strings.ContainsAny(host, "/= ") {
		return "", fmt.Errorf("invalid registry mirror %q: want MIRROR or REGISTRY=MIRROR, each host[:port] without scheme or path (plain http is used for loopback and private addresses and for --insecure-registry hosts)", spec)
	}
	r, err := name.NewRegistry(host)
	if err != nil {
		return "", fmt.Errorf("invalid registry mirror %q: %w", spec, err)
	}
	return r.RegistryStr(), nil
}

func orEvery(registry string) string {
	if registry == "" {
		return "every registry"
	}
	return "registry " + registry
}

// mirrorFor returns ref with its registry replaced by the mirror configured
// for it (same repository, same tag or digest), or false when none applies.
func (c *config) mirrorFor(ref name.Reference) (name.Reference, bool) {
	reg := ref.Context().RegistryStr()
	host := ""
	for _, m := range c.mirrors {
		if strings.EqualFold(m.registry, reg) {
			host = m.host
			break
		}
		if m.registry == "" && host == "" {
			host = m.host
		}
	}
	if host == "" || strings.EqualFold(host, reg) {
		return nil, false
	}
	var opts []name.Option
	if c.insecureFor(host) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRegistry(host, opts...)
	if err != nil { // checked by parseMirrors
		return nil, false
	}
	repo := r.Repo(ref.Context().RepositoryStr())
	if d, ok := ref.(name.Digest); ok {
		return repo.Digest(d.DigestStr()), true
	}
	return repo.Tag(ref.Identifier()), true
}

// open connects to the registry of ref and resolves src, through its mirror
// first when one is configured. Like containerd, a mirror that cannot be
// reached, fails (5xx) or does not have the image (404) is skipped for the
// registry itself; any other failure (refused credentials, a manifest that
// does not match its digest) is reported, since the registry would not be
// asked for the same thing with a different answer in mind.
func (p *Provider) open(ctx context.Context, src string, ref name.Reference) (*repoClient, *Plan, error) {
	if p.cfg.mirrorErr != nil {
		return nil, nil, p.cfg.mirrorErr
	}
	if mref, ok := p.cfg.mirrorFor(ref); ok {
		host := mref.Context().RegistryStr()
		c, plan, err := p.openAt(ctx, src, mref, namespace(ref))
		if err == nil {
			p.log.Info("pulling through registry mirror", zap.String("mirror", host), zap.String("registry", ref.Context().RegistryStr()))
			return c, plan, nil
		}
		if !mirrorMissed(ctx, err) {
			return nil, nil, fmt.Errorf("registry mirror %s: %w", host, err)
		}
		p.log.Warn("registry mirror failed, pulling from the registry itself", zap.String("mirror", host),
			zap.String("registry", ref.Context().RegistryStr()), zap.Error(err))
	}
	return p.openAt(ctx, src, ref, "")
}

// openAt connects to ref's registry (adding ?ns=ns to its requests when ns
// is set) and resolves src there.
func (p *Provider) openAt(ctx context.Context, src string, ref name.Reference, ns string) (*repoClient, *Plan, error) {
	c, err := p.connect(ctx, ref, ns)
	if err != nil {
		return nil, nil, err
	}
	plan, err := p.resolve(ctx, src, ref, c)
	if err != nil {
		c.close()
		return nil, nil, err
	}
	return c, plan, nil
}

// mirrorMissed reports whether err means the mirror could not serve the
// image at all: no HTTP answer (refused, DNS, TLS, timeout), a 5xx or a 404.
func mirrorMissed(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusNotFound || te.StatusCode >= 500
	}
	var ue *url.Error
	return errors.As(err, &ue)
}

// namespace is the ns query parameter for ref's registry, spelled as
// containerd does (docker.io for Docker Hub).
func namespace(ref name.Reference) string {
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		return "docker.io"
	}
	return reg
}

// nsTransport adds ?ns=<registry> to the registry API requests sent to a
// mirror: containerd's convention, by which Dragonfly and Harbor know which
// upstream a pull-through request is for. Requests elsewhere (a token
// service, a redirect to object storage) are left alone.
type nsTransport struct {
	base     http.RoundTripper
	host, ns string
}

func (t *nsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Host, t.host) || !strings.HasPrefix(req.URL.Path, "/v2/") {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	q := r.URL.Query()
	q.Set("ns", t.ns)
	r.URL.RawQuery = q.Encode()
	return t.base.RoundTrip(r)
}
