// Package redact makes URIs and errors safe to log. It is the one place
// the binary decides what of a source URI may be shown: scheme, host and
// path. User info ("user:password@"), the query (a presigned URL's
// signature) and the fragment are cut by hand, so a string that does not
// parse as a URL is redacted exactly like one that does.
package redact

import (
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// Marker replaces what was cut: "https://REDACTED@host/p?REDACTED".
const Marker = "REDACTED"

// URI returns s with user info, query and fragment replaced by Marker, and
// control and format characters dropped (a presigned URL read from a
// secret file usually ends in a newline; a log line must stay one line).
//
// User info is everything between "://" (or a leading "//", or the start
// of a string without scheme) and the last '@' before the first '/'. The
// query or fragment starts at the first '?' or '#'. When that '?' or '#'
// comes before the '@' the string is ambiguous (url.Parse reads a query,
// a person may have meant a password holding '?'): both readings are cut,
// which leaves no host: "https://REDACTED?REDACTED".
func URI(s string) string {
	s = printable(s)
	prefix, rest := splitScheme(s)
	authEnd := strings.IndexByte(rest, '/')
	if authEnd < 0 {
		authEnd = len(rest)
	}
	at := strings.LastIndexByte(rest[:authEnd], '@')
	query := strings.IndexAny(rest, "?#")
	if query < 0 {
		query = len(rest)
	}
	var b strings.Builder
	b.Grow(len(s) + 2*len(Marker))
	b.WriteString(prefix)
	switch {
	case at < 0:
		b.WriteString(rest[:query])
	case at < query:
		b.WriteString(Marker + "@")
		b.WriteString(rest[at+1 : query])
	default: // ambiguous: no host is safe to show
		b.WriteString(Marker)
	}
	if query < len(rest) {
		b.WriteByte(rest[query])
		b.WriteString(Marker)
	}
	return b.String()
}

// splitScheme splits "scheme://" (or a scheme-relative "//") off s. A
// "scheme" holding '/', '?', '#' or '@' is not one: "://" then appears in
// a path or query, and the string is read as having no scheme.
func splitScheme(s string) (prefix, rest string) {
	if i := strings.Index(s, "://"); i > 0 && !strings.ContainsAny(s[:i], "/?#@") {
		return s[:i+3], s[i+3:]
	}
	if strings.HasPrefix(s, "//") {
		return "//", s[2:]
	}
	return "", s
}

// printable drops control characters (C0, DEL, C1: newlines, escapes) and
// format characters (bidirectional overrides, zero-width marks). Invalid
// UTF-8 becomes U+FFFD.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
}

// Error returns err with the URL of every *url.Error in its chain
// redacted, in the message and in the url.Error itself; errors.Is and
// errors.As see the same chain. net/http names a failed request by its full
// URL, query included: after a redirect to object storage that is a
// presigned URL whose signature would otherwise reach the log.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	eachURLError(err, func(ue *url.Error) {
		r := URI(ue.URL)
		if r == ue.URL {
			return
		}
		// url.Error quotes its URL; wrapping errors may not.
		msg = strings.ReplaceAll(msg, strconv.Quote(ue.URL), strconv.Quote(r))
		msg = strings.ReplaceAll(msg, ue.URL, r)
		ue.URL = r
		changed = true
	})
	if !changed {
		return err
	}
	return &redacted{msg: msg, err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// eachURLError calls fn on every *url.Error in err's chain, joined errors
// included.
func eachURLError(err error, fn func(*url.Error)) {
	for err != nil {
		if ue, ok := err.(*url.Error); ok {
			fn(ue)
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				eachURLError(e, fn)
			}
			return
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return
		}
	}
}
