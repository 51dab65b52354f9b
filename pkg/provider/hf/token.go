package hf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// token is the Hub credential and where it came from (for messages: the
// value is never printed).
type token struct {
	value, source string
}

// readToken finds the token as huggingface_hub's get_token does
// (utils/_auth.py): HF_TOKEN, then the legacy HUGGING_FACE_HUB_TOKEN, then
// the token file HF_TOKEN_PATH (default $HF_HOME/token, HF_HOME defaulting
// to $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface, constants.py);
// whitespace and newlines are stripped (_clean_token). With
// HF_HUB_DISABLE_IMPLICIT_TOKEN set no token is sent at all
// (get_token_to_send in utils/_headers.py).
func readToken(getenv func(string) string) (token, error) {
	if isTrue(getenv("HF_HUB_DISABLE_IMPLICIT_TOKEN")) {
		return token{}, nil
	}
	for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if v := cleanToken(getenv(k)); v != "" {
			return token{v, k}, nil
		}
	}
	path := tokenPath(getenv)
	if path == "" {
		return token{}, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return token{}, nil
	}
	if err != nil {
		return token{}, fmt.Errorf("read Hugging Face token file %s: %w (set HF_TOKEN or HF_TOKEN_PATH)", path, err)
	}
	if v := cleanToken(string(b)); v != "" {
		return token{v, "token file " + path}, nil
	}
	return token{}, nil
}

func tokenPath(getenv func(string) string) string {
	if p := getenv("HF_TOKEN_PATH"); p != "" {
		return expandHome(p, getenv)
	}
	home := getenv("HF_HOME")
	if home == "" {
		cache := getenv("XDG_CACHE_HOME")
		if cache == "" {
			h := getenv("HOME")
			if h == "" {
				return ""
			}
			cache = filepath.Join(h, ".cache")
		}
		home = filepath.Join(cache, "huggingface")
	}
	return filepath.Join(expandHome(home, getenv), "token")
}

func expandHome(p string, getenv func(string) string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(getenv("HOME"), rest)
	}
	return p
}

func cleanToken(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r", "", "\n", "").Replace(s))
}

// isTrue is huggingface_hub's _is_true (constants.py).
func isTrue(s string) bool {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}
