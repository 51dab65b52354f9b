package modelscope

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// classifier turns ModelScope error answers into actionable messages. The
// SDK (hub/errors.py raise_for_http_status) reads 404 as "model does not
// exist" and 401/403 as a missing or invalid token; the envelope's Message
// says more.
type classifier struct {
	repo, revision, endpoint string
	token                    bool
}

func (c classifier) tokenHint() string {
	if c.token {
		return "the token in MODELSCOPE_API_TOKEN was sent"
	}
	return "no token was sent: set MODELSCOPE_API_TOKEN (https://modelscope.cn/my/myaccesstoken)"
}

func (c classifier) classify(what string) func(*http.Response) error {
	return func(resp *http.Response) error {
		var env struct {
			Message string `json:"Message"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&env)
		detail := ""
		if env.Message != "" {
			detail = ": " + truncate(env.Message, 200)
		}
		switch resp.StatusCode {
		case http.StatusNotFound:
			if what == "revisions" {
				return fmt.Errorf("modelscope://%s: model not found on %s, or it is private (%s)%s", c.repo, c.endpoint, c.tokenHint(), detail)
			}
			return fmt.Errorf("modelscope://%s: %s not found at revision %s (HTTP 404)%s", c.repo, what, c.revision, detail)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("modelscope://%s: access denied (HTTP %d): the model is private or gated; accept its terms on %s/models/%s and use that account's token (%s)%s",
				c.repo, resp.StatusCode, c.endpoint, c.repo, c.tokenHint(), detail)
		case http.StatusTooManyRequests:
			return fmt.Errorf("modelscope://%s: rate-limited by %s (HTTP 429): retry later", c.repo, c.endpoint)
		}
		return fmt.Errorf("modelscope://%s: %s: HTTP %d%s", c.repo, what, resp.StatusCode, detail)
	}
}

// envelope checks a 200 answer's own status (raise_on_error).
func (c classifier) envelope(code int, success bool, msg, what string) error {
	if code == http.StatusOK && success {
		return nil
	}
	return engine.Permanent(fmt.Errorf("modelscope://%s: %s: the hub answered code %d: %s", c.repo, what, code, truncate(msg, 200)))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
