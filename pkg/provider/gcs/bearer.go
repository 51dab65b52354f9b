package gcs

import (
	"fmt"
	"net/http"

	"cloud.google.com/go/auth"
)

// bearer adds an OAuth2 access token to every request for the API's host
// (never to another host a redirect leads to); the credentials cache and
// refresh the token.
type bearer struct {
	base   http.RoundTripper
	creds  *auth.Credentials
	source string
	host   string
}

// tokenError says the credentials could not produce a token (a revoked
// key, a wrong audience, an unreachable token endpoint): retrying the
// request cannot help, and the message names where the credentials came
// from, never their content.
type tokenError struct {
	source string
	err    error
}

func (e *tokenError) Error() string {
	return fmt.Sprintf("cannot get a Google access token with the credentials from %s: %s", e.source, firstLine(e.err.Error()))
}
func (e *tokenError) Unwrap() error { return e.err }

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != b.host {
		return b.base.RoundTrip(req)
	}
	tok, err := b.creds.Token(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, &tokenError{source: b.source, err: err}
	}
	typ := tok.Type
	if typ == "" {
		typ = "Bearer"
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", typ+" "+tok.Value)
	return b.base.RoundTrip(r)
}
