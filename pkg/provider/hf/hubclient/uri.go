package hubclient

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Ref is a parsed SCHEME://OWNER/MODEL[/SUBFOLDER][:REVISION].
type Ref struct {
	Scheme, Owner, Model string
	// Sub is a folder inside the repository ("" for the whole repository):
	// only files under it are fetched, with paths relative to it.
	Sub string
	// Revision is what the URI names ("" means the hub's default branch).
	Revision string
}

// Repo is "OWNER/MODEL".
func (r Ref) Repo() string { return r.Owner + "/" + r.Model }

// String renders the reference as a URI (nothing secret in it).
func (r Ref) String() string {
	s := r.Scheme + "://" + r.Repo()
	if r.Sub != "" {
		s += "/" + r.Sub
	}
	if r.Revision != "" {
		s += ":" + r.Revision
	}
	return s
}

// nameRe is what both hubs accept as an owner or model name.
var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ParseRef parses src. The revision follows the first ':' after the
// scheme (KServe's hf://OWNER/MODEL:REVISION), so it may contain '/'
// (refs/pr/1); a sub-folder goes before it.
func ParseRef(scheme, src string) (Ref, error) {
	rest, ok := strings.CutPrefix(src, scheme+"://")
	if !ok {
		return Ref{}, fmt.Errorf("%s is not a %s:// URI", src, scheme)
	}
	path, rev, hasRev := strings.Cut(rest, ":")
	if hasRev && rev == "" {
		return Ref{}, fmt.Errorf("%s: empty revision after ':' (write %s://OWNER/MODEL:REVISION)", src, scheme)
	}
	if strings.ContainsAny(rest, "?#\x00\n") {
		return Ref{}, fmt.Errorf("%s: '?', '#' and control characters are not allowed (write %s://OWNER/MODEL[:REVISION])", src, scheme)
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) < 2 || !nameRe.MatchString(parts[0]) || !nameRe.MatchString(parts[1]) ||
		strings.Contains(parts[0]+parts[1], "..") {
		return Ref{}, fmt.Errorf("%s: want %s://OWNER/MODEL[/SUBFOLDER][:REVISION]", src, scheme)
	}
	for _, p := range parts[2:] {
		if p == "" || p == "." || p == ".." {
			return Ref{}, fmt.Errorf("%s: sub-folder %q has an empty, '.' or '..' segment", src, strings.Join(parts[2:], "/"))
		}
	}
	return Ref{Scheme: scheme, Owner: parts[0], Model: parts[1], Sub: strings.Join(parts[2:], "/"), Revision: rev}, nil
}

// EscapePath escapes each segment of a slash-separated path, keeping the
// slashes (Python's quote(path), as the hubs' clients build file URLs).
func EscapePath(p string) string {
	seg := strings.Split(p, "/")
	for i, s := range seg {
		seg[i] = url.PathEscape(s)
	}
	return strings.Join(seg, "/")
}

// Under returns rel relative to sub when it is inside it ("" sub: rel).
func Under(rel, sub string) (string, bool) {
	if sub == "" {
		return rel, true
	}
	r, ok := strings.CutPrefix(rel, sub+"/")
	return r, ok && r != ""
}
