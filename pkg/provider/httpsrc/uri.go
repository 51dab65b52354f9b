package httpsrc

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// target is one parsed http(s) source.
type target struct {
	url *url.URL // what requests go to: fragment dropped, query kept (presigned URLs)
	// display names the source in logs and errors: scheme, host and path
	// only, since user info and query strings can hold credentials.
	display string
	host    string // lower-case host name, for the <host>-headers variable
	name    string // file name under DEST
	expect  []checksum.Value
}

// parseTarget reads http(s)://host/path/file[#sha256=HEX].
func parseTarget(src string) (target, error) {
	u, err := url.Parse(src)
	if err != nil {
		// url's error repeats the URL, query included: say only what is wrong.
		return target{}, fmt.Errorf("invalid URL %s: cannot parse it", redact(src))
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" {
		return target{}, fmt.Errorf("invalid URL %s: want http(s)://host/path/file", redact(src))
	}
	t := target{host: strings.ToLower(u.Hostname())}
	t.display = (&url.URL{Scheme: scheme, Host: u.Host, Path: u.Path}).String()
	if u.Fragment != "" {
		v, err := parseFragment(u.Fragment)
		if err != nil {
			return target{}, fmt.Errorf("URL %s: %w", t.display, err)
		}
		t.expect = []checksum.Value{v}
	}
	u.Fragment, u.RawFragment = "", ""
	t.url = u
	base := path.Base(u.Path) // u.Path is unescaped
	if u.Path == "" || strings.HasSuffix(u.Path, "/") || base == "/" {
		return target{}, fmt.Errorf("URL %s names no file: point it at one file, e.g. https://host/models/model.tar.gz", t.display)
	}
	if t.name, err = engine.CleanRel(base); err != nil {
		return target{}, fmt.Errorf("URL %s: file name %q cannot be saved in DEST: %w", t.display, base, err)
	}
	return t, nil
}

// parseFragment reads the expected digest, "sha256=HEX".
func parseFragment(frag string) (checksum.Value, error) {
	alg, hexSum, ok := strings.Cut(frag, "=")
	if !ok || !strings.EqualFold(alg, "sha256") {
		return checksum.Value{}, fmt.Errorf("unsupported fragment #%s: only #sha256=HEX (the file's expected SHA-256) is understood", frag)
	}
	v, err := checksum.ParseHex(checksum.SHA256, strings.ToLower(hexSum))
	if err != nil {
		return checksum.Value{}, fmt.Errorf("fragment #%s: want 64 hex digits: %w", frag, err)
	}
	return v, nil
}

// redact keeps scheme, host and path of a URL that may not parse.
func redact(src string) string {
	if i := strings.IndexAny(src, "?#"); i >= 0 {
		src = src[:i]
	}
	if scheme, rest, ok := strings.Cut(src, "://"); ok {
		if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
			rest = rest[at+1:]
		}
		return scheme + "://" + rest
	}
	return src
}
