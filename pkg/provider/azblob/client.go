package azblob

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// planningRetries bounds the SDK's own retries of listing and property
// requests. Downloads are retried by the engine, never by the SDK.
const planningRetries = 3

// client holds two container clients over one HTTP client: one for
// planning (with the SDK's bounded retries) and one for ranged reads (no
// SDK retries: one Load is one attempt).
type client struct {
	planner, reader *container.Client
	where           string // the container's URL without SAS, for messages and identities
	auth            auth
}

func (p *Provider) newClient(loc location) (*client, error) {
	hc, err := p.client()
	if err != nil {
		return nil, fmt.Errorf("azure http client: %w", err)
	}
	base := policy.ClientOptions{Transport: hc}
	s, err := resolveSettings(p.getenv, loc, base)
	if err != nil {
		return nil, fmt.Errorf("azure configuration for %s: %w", loc, err)
	}
	containerURL := s.endpoint + "/" + url.PathEscape(loc.Container)
	c := &client{where: containerURL, auth: s.auth}
	if s.auth.sas != "" {
		containerURL += "?" + s.auth.sas
	}
	planOpts := base
	planOpts.Retry = policy.RetryOptions{MaxRetries: planningRetries}
	readOpts := base
	readOpts.Retry = policy.RetryOptions{MaxRetries: -1}
	if c.planner, err = newContainerClient(containerURL, s.auth, planOpts); err != nil {
		return nil, fmt.Errorf("azure client for %s: %s", c.where, firstLine(err.Error()))
	}
	if c.reader, err = newContainerClient(containerURL, s.auth, readOpts); err != nil {
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
