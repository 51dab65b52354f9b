package oci

import (
	"context"
	"fmt"
	"net/http"

	"golang.org/x/sync/errgroup"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// checkBlobs asks the repository, with this pod's credentials, whether
// every blob the plan uses is there (HEAD, the distribution spec's
// existence check), when a node cache may serve them: a hit is then
// authorised by this pod's own access to the manifest and to each blob in
// that repository, never by metadata alone (docs/node-cache.md). Without a
// cache every blob is read from the registry anyway.
func (p *Provider) checkBlobs(ctx context.Context, c *repoClient, layers []Layer) error {
	// A redirect (to object storage) already says the registry serves the
	// blob; following it with HEAD would fail against a URL presigned for GET.
	hc := *c.client
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	seen := map[string]bool{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, min(p.set.Conns(), 8)))
	for _, l := range layers {
		if seen[l.Digest] || l.Action != ActionFile && l.Action != ActionExtract {
			continue
		}
		seen[l.Digest] = true
		g.Go(func() error {
			return p.set.Retry(gctx, "check blob "+l.Digest, func(ctx context.Context) error {
				return headBlob(ctx, &hc, c, l)
			})
		})
	}
	return g.Wait()
}

func headBlob(ctx context.Context, hc *http.Client, c *repoClient, l Layer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.blobURL(l.Digest), nil)
	if err != nil {
		return engine.Permanent(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("check blob %s: %w", l.Digest, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return engine.Permanent(fmt.Errorf("%s: layer %d (%s) is not available to these credentials (HTTP %d): check the image and the pull secret",
			c.repo.Name(), l.Index, l.Digest, resp.StatusCode))
	}
	return fmt.Errorf("check blob %s: HTTP %d", l.Digest, resp.StatusCode)
}
