package azblob

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// client is one container client with the SDK's retries turned off: one
// SDK call is one request. Planning calls run under the run's retry policy
// (set.Retry), ranged reads under the engine's; so --max-attempts, the
// backoff and Retry-After mean the same for Azure as for every source.
type client struct {
	set      provider.Settings
	blobs    *container.Client
	where    string // the container's URL without SAS, for messages and identities
	auth     auth
	pageSize int32
}

func (p *Provider) newClient(loc location) (*client, error) {
	hc, err := p.client()
	if err != nil {
		return nil, fmt.Errorf("azure http client: %w", err)
	}
	// Token requests (Microsoft Entra ID) keep azidentity's own retries: an
	// identity endpoint is not a planning request, and its failures end
	// the run.
	s, err := resolveSettings(p.getenv, loc, policy.ClientOptions{Transport: hc})
	if err != nil {
		return nil, fmt.Errorf("azure configuration for %s: %w", loc, err)
	}
	containerURL := s.endpoint + "/" + url.PathEscape(loc.Container)
	c := &client{set: p.set, where: containerURL, auth: s.auth, pageSize: p.pageSize}
	if s.auth.sas != "" {
		containerURL += "?" + s.auth.sas
	}
	noRetries := policy.ClientOptions{Transport: hc, Retry: policy.RetryOptions{MaxRetries: -1}}
	if c.blobs, err = newContainerClient(containerURL, s.auth, noRetries); err != nil {
		return nil, fmt.Errorf("azure client for %s: %s", c.where, firstLine(err.Error()))
	}
	return c, nil
}

func newContainerClient(u string, a auth, opts azcore.ClientOptions) (*container.Client, error) {
	o := &container.ClientOptions{ClientOptions: opts}
	switch {
	case a.token != nil:
		if !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("credentials from AZURE_CLIENT_ID (Microsoft Entra ID) need an https:// blob endpoint")
		}
		return container.NewClient(u, a.token, o)
	case a.sharedKey != nil:
		return container.NewClientWithSharedKeyCredential(u, a.sharedKey, o)
	}
	return container.NewClientWithNoCredential(u, o)
}
