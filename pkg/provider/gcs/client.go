package gcs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"
	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// readOnlyScope is the OAuth scope for reading objects.
const readOnlyScope = "https://www.googleapis.com/auth/devstorage.read_only"

// client talks to one JSON API endpoint with one set of credentials.
type client struct {
	set        provider.Settings // the retry policy of metadata and listing requests
	hc         *http.Client      // adds the credentials, when there are any
	where      string            // endpoint, e.g. https://storage.googleapis.com/storage/v1/, for requests, messages and identities
	credSource string            // where the credentials came from, for messages
	anonymous  bool
}

// newClient builds a client the way KServe's initializer does:
// STORAGE_EMULATOR_HOST means an emulator and no credentials; otherwise
// Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS with a
// service-account or external-account JSON, gcloud's ADC file, the GKE or
// GCE metadata server), falling back to anonymous access for public
// buckets when there are none.
func (p *Provider) newClient(_ context.Context) (*client, error) {
	hc, err := p.client()
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("gcs http client: %w", err))
	}
	c := &client{set: p.set, hc: hc, where: "https://storage.googleapis.com/storage/v1/"}
	if host := p.getenv("STORAGE_EMULATOR_HOST"); host != "" {
		c.where = emulatorEndpoint(host)
		c.credSource, c.anonymous = "none (STORAGE_EMULATOR_HOST)", true
		return c, nil
	}
	if p.endpoint != "" {
		c.where = strings.TrimRight(p.endpoint, "/") + "/"
	}
	creds, source, err := p.detectCredentials(hc)
	c.credSource = source
	if err != nil {
		p.set.Logger().Warn("no usable Google credentials; trying anonymous access", zap.String("reason", source))
	}
	if creds == nil {
		c.anonymous = true
		return c, nil
	}
	c.hc = &http.Client{
		Transport:     &bearer{base: transportOf(hc), creds: creds, source: source, host: hostOf(c.where)},
		CheckRedirect: hc.CheckRedirect, Jar: hc.Jar, Timeout: hc.Timeout,
	}
	return c, nil
}

// detectCredentials finds Application Default Credentials. No credentials,
// or an unusable GOOGLE_APPLICATION_CREDENTIALS file, means anonymous
// access (as KServe falls back to an anonymous client); source then says
// why, so an access-denied error can tell the user what to fix.
func (p *Provider) detectCredentials(hc *http.Client) (*auth.Credentials, string, error) {
	opts := &credentials.DetectOptions{Scopes: []string{readOnlyScope}, Client: hc}
	file := p.getenv("GOOGLE_APPLICATION_CREDENTIALS")
	if file == "" {
		creds, err := credentials.DetectDefault(opts)
		if err != nil {
			return nil, "anonymous (no Application Default Credentials found)", nil
		}
		return creds, "Application Default Credentials", nil
	}
	creds, err := credentialsFile(file, opts)
	if err != nil {
		return nil, fmt.Sprintf("anonymous: GOOGLE_APPLICATION_CREDENTIALS (%s) is unusable: %s", file, firstLine(err.Error())), err
	}
	return creds, "GOOGLE_APPLICATION_CREDENTIALS (" + file + ")", nil
}

// keyFileTypes are the credential files GOOGLE_APPLICATION_CREDENTIALS may
// name, as google-auth accepts them for KServe.
var keyFileTypes = map[string]credentials.CredType{
	string(credentials.ServiceAccount):                credentials.ServiceAccount,
	string(credentials.ExternalAccount):               credentials.ExternalAccount,
	string(credentials.ImpersonatedServiceAccount):    credentials.ImpersonatedServiceAccount,
	string(credentials.AuthorizedUser):                credentials.AuthorizedUser,
	string(credentials.ExternalAccountAuthorizedUser): credentials.ExternalAccountAuthorizedUser,
}

// credentialsFile reads a key file after checking its type is one of
// keyFileTypes (the auth library asks callers to say which they accept).
// Errors never quote the file's content.
func credentialsFile(file string, opts *credentials.DetectOptions) (*auth.Credentials, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("not a JSON key file")
	}
	typ, ok := keyFileTypes[head.Type]
	if !ok {
		return nil, fmt.Errorf("unsupported credential type %q (want service_account or external_account)", head.Type)
	}
	return credentials.NewCredentialsFromJSON(typ, b, opts)
}

// emulatorEndpoint turns STORAGE_EMULATOR_HOST (host:port or a URL) into
// the JSON API endpoint, as the SDK does.
func emulatorEndpoint(host string) string {
	if !strings.Contains(host, "://") {
		host = "http://" + host
	}
	return strings.TrimRight(host, "/") + "/storage/v1/"
}

func hostOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return u.Host
}

func transportOf(hc *http.Client) http.RoundTripper {
	if hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}

// firstLine keeps an error to one line (token endpoints answer with
// multi-line bodies).
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}
