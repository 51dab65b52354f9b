package hf

import (
	"fmt"
	"net/http"
)

// classifier turns a Hub error response into a message a user can act on.
// The Hub names the cause in X-Error-Code (RepoNotFound, RevisionNotFound,
// EntryNotFound, GatedRepo) and details in X-Error-Message; a 401 without
// a code also means "not found or private" (huggingface_hub's
// hf_raise_for_status, utils/_http.py).
type classifier struct {
	repo, revision string
	endpoint       string
	tok            token
}

func (c classifier) tokenHint() string {
	if c.tok.value == "" {
		return "no token was sent: set HF_TOKEN to a token of an account with access"
	}
	return "the token from " + c.tok.source + " was sent"
}

func (c classifier) classify(what string) func(*http.Response) error {
	return func(resp *http.Response) error {
		code, msg := resp.Header.Get("X-Error-Code"), resp.Header.Get("X-Error-Message")
		detail := ""
		if msg != "" {
			detail = " (" + truncate(msg, 200) + ")"
		}
		page := c.endpoint + "/" + c.repo
		switch {
		case code == "RevisionNotFound":
			return fmt.Errorf("hf://%s: revision %q not found: name a branch, tag or commit of the repository (see %s/tree)", c.repo, c.revision, page)
		case code == "EntryNotFound":
			return fmt.Errorf("hf://%s: %s not found at this commit (HTTP %d)%s", c.repo, what, resp.StatusCode, detail)
		case code == "GatedRepo":
			return fmt.Errorf("hf://%s is gated: accept the model's terms on %s with the account whose token is in HF_TOKEN (%s; HTTP %d)",
				c.repo, page, c.tokenHint(), resp.StatusCode)
		case msg == "Access to this resource is disabled.":
			return fmt.Errorf("hf://%s: access to this repository is disabled by the Hub (HTTP %d)", c.repo, resp.StatusCode)
		case resp.StatusCode == http.StatusUnauthorized && msg == "Invalid credentials in Authorization header":
			return fmt.Errorf("hf://%s: the Hub rejected the token from %s as invalid or expired: create a new one at %s/settings/tokens",
				c.repo, c.tok.source, c.endpoint)
		case code == "RepoNotFound" || resp.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("hf://%s: repository not found on %s, or it is private: check OWNER/MODEL, and for a private model set HF_TOKEN (%s; HTTP %d)",
				c.repo, c.endpoint, c.tokenHint(), resp.StatusCode)
		case resp.StatusCode == http.StatusForbidden:
			return fmt.Errorf("hf://%s: forbidden (HTTP 403)%s: a token with read access to this repository is needed (%s)", c.repo, detail, c.tokenHint())
		case resp.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("hf://%s: rate-limited by %s (HTTP 429): retry later, or set HF_TOKEN (authenticated requests get higher limits)", c.repo, c.endpoint)
		}
		return fmt.Errorf("hf://%s: %s: HTTP %d%s", c.repo, what, resp.StatusCode, detail)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
