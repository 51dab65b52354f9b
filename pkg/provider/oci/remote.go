package oci

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
	"github.com/storage-initializer/storage-initializer/pkg/idletimeout"
)

// repoClient is an authenticated connection to one repository: every
// request (manifests, ranged blob reads) goes through the same token-aware
// transport and connection pool.
type repoClient struct {
	repo   name.Repository
	rt     http.RoundTripper
	client *http.Client
	base   *http.Transport
	from   string // where the credentials came from ("" = anonymous)
}

// connect opens a client for ref's repository; ns, when set, is the
// registry a mirror is asked on behalf of (see nsTransport).
func (p *Provider) connect(ctx context.Context, ref name.Reference, ns string) (*repoClient, error) {
	repo := ref.Context()
	reg := repo.RegistryStr()
	base, err := p.cfg.newTransport(p.set.Conns(), p.cfg.insecureFor(reg))
	if err != nil {
		return nil, err
	}
	// A manifest or token response that stalls mid-body must not hang the
	// pull: bound silence by --read-timeout like every layer range.
	// The limiter (when set) counts every request at the wire: tokens,
	// manifests and blob ranges, redirects to object storage included.
	var inner http.RoundTripper = idletimeout.RoundTripper{Next: p.cfg.limiter.Wrap(base), Timeout: p.set.ReadTimeout(), What: "--read-timeout"}
	// go-containerregistry builds its own clients (manifests, tokens): the
	// redirect policy holds in the transport too.
	inner = httpx.GuardRedirects(inner)
	if ns != "" {
		inner = &nsTransport{base: inner, host: reg, ns: ns}
	}
	auth, from, err := p.cfg.authFor(repo, p.log)
	if err != nil {
		return nil, err
	}
	if from != "" {
		p.log.Info("using registry credentials", zap.String("registry", reg), zap.String("from", from))
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, inner, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("connect to registry %s: %w%s", reg, err, authHint(err, from))
	}
	// Blob reads follow redirects (to object storage, a CDN) under the
	// binary's redirect policy; the token transport only sends the
	// registry's token to the registry.
	hc := &http.Client{Transport: rt, CheckRedirect: httpx.CheckRedirect()}
	return &repoClient{repo: repo, rt: rt, client: hc, base: base, from: from}, nil
}

// close releases idle connections.
func (c *repoClient) close() { c.base.CloseIdleConnections() }

// authHint says what to check when the registry refused the request.
func authHint(err error, from string) string {
	var te *transport.Error
	if !errors.As(err, &te) {
		return ""
	}
	if te.StatusCode == http.StatusNotFound {
		return " (no such repository, tag or digest: check the URI)"
	}
	if te.StatusCode != http.StatusUnauthorized && te.StatusCode != http.StatusForbidden {
		return ""
	}
	if from == "" {
		return " (no credentials found for this registry: mount a pull secret and set KSERVE_OCI_DOCKER_CONFIG to its config.json)"
	}
	return " (the registry refused the credentials from " + from + ")"
}

// manifest fetches a manifest or index by tag or digest. A manifest fetched
// by digest is checked against it by go-containerregistry.
func (c *repoClient) manifest(ctx context.Context, ref name.Reference) (*remote.Descriptor, error) {
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		d, err := remote.Get(ref, remote.WithTransport(c.rt), remote.WithContext(ctx))
		if err == nil {
			return d, nil
		}
		last = err
		// Retry 5xx and 429 too: registries answer 503 without the JSON error
		// codes go-containerregistry needs to call an error temporary.
		var te *transport.Error
		if ctx.Err() != nil || errors.As(err, &te) && !te.Temporary() && te.StatusCode < 500 && te.StatusCode != http.StatusTooManyRequests {
			break
		}
		if _, refused := errors.AsType[*httpx.RedirectError](err); refused {
			break
		}
	}
	return nil, fmt.Errorf("fetch manifest %s: %w%s", ref, last, authHint(last, c.from))
}

// blobURL is the registry API address of a blob; the transport rewrites the
// scheme to whatever the registry answered on.
func (c *repoClient) blobURL(digest string) string {
	u := url.URL{Scheme: c.repo.Scheme(), Host: c.repo.RegistryStr(),
		Path: "/v2/" + c.repo.RepositoryStr() + "/blobs/" + digest}
	return u.String()
}
