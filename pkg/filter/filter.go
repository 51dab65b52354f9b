// Package filter implements KServe's STORAGE_ALLOW_PATTERNS and
// STORAGE_IGNORE_PATTERNS: fnmatch-style globs on the path relative to the
// source, where "*" also matches "/" (as Python's fnmatch does).
package filter

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// New returns a predicate keeping paths that match any include pattern (all
// paths when there is none) and no exclude pattern; nil when both are empty.
func New(include, exclude []string) (func(string) bool, error) {
	inc, err := compileAll(include)
	if err != nil {
		return nil, err
	}
	exc, err := compileAll(exclude)
	if err != nil {
		return nil, err
	}
	if len(inc) == 0 && len(exc) == 0 {
		return nil, nil
	}
	return func(rel string) bool {
		if len(inc) > 0 && !matchAny(inc, rel) {
			return false
		}
		return !matchAny(exc, rel)
	}, nil
}

// ParseList reads a JSON array of strings or a comma-separated list.
func ParseList(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if strings.HasPrefix(s, "[") {
		var out []string
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return nil, fmt.Errorf("invalid JSON array of patterns %q: %w", s, err)
		}
		return out, nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

func compileAll(pats []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, p := range pats {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		re, err := Compile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, re)
	}
	return out, nil
}

// Compile translates one fnmatch glob (*, ?, [seq], [!seq]) into a regexp.
func Compile(glob string) (*regexp.Regexp, error) {
	var b strings.Builder
	// (?s): like fnmatch, * and ? match any character, newlines included,
	// so a key with a newline cannot slip past an exclude pattern.
	b.WriteString("(?s)^")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := strings.IndexByte(glob[i+1:], ']')
			if j < 0 {
				b.WriteString(`\[`)
				continue
			}
			class := glob[i+1 : i+1+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += j + 1
		default:
			// One byte at a time: string(c) would turn each byte of a
			// multi-byte UTF-8 letter into a different rune.
			b.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("invalid pattern %q: %w", glob, err)
	}
	return re, nil
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
