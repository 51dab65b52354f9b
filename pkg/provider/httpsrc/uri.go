package httpsrc

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/storage-initializer/storage-initializer/internal/redact"
	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// target is one parsed http(s) source.
type target struct {
	url *url.URL // what requests go to: fragment dropped, query kept (presigned URLs)
	// display names the source in logs and errors, redacted: user info and
	// query strings can hold credentials.
	display string
	// key is scheme://host/path, the source's name in its identity (stored
	// on disk, so it must not change with how messages spell a URL).
	key    string
	host   string // lower-case host name, for the <host>-headers variable
	name   string // file name under DEST
	expect []checksum.Value
}

// parseTarget reads http(s)://host/path/file[#sha256=HEX].
func parseTarget(src string) (target, error) {
	u, err := url.Parse(src)
	if err != nil {
		// url's error repeats the URL, query included: say only what is wrong.
		return target{}, fmt.Errorf("invalid URL %s: cannot parse it", redact.URI(src))
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" {
		return target{}, fmt.Errorf("invalid URL %s: want http(s)://host/path/file", redact.URI(src))
	}
	// The fragment (#sha256=HEX, parsed below) is not part of the address:
	// messages name the file without it.
	addr, _, _ := strings.Cut(src, "#")
	t := target{host: strings.ToLower(u.Hostname()), display: redact.URI(addr)}
	t.key = (&url.URL{Scheme: scheme, Host: u.Host, Path: u.Path}).String()
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
	if strings.HasSuffix(strings.ToLower(strings.TrimSuffix(u.Path, "/")), ".git") {
		// KServe clones these (since 0.17); downloading one as a file would
		// hand the model server an HTML page or a pack file.
		return target{}, fmt.Errorf("URL %s is a git repository: cloning is not supported; KServe's storage-initializer image clones it (the shipped ClusterStorageContainer leaves git URIs to it)", t.display)
	}
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
