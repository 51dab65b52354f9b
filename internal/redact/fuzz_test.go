package redact

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
)

// FuzzURI checks, on arbitrary strings, that what url.Parse reads as user
// info, password, query (whole, and each value) or fragment never reaches
// the output, and that the output holds no control character. The secrets
// come from url.Parse (an oracle independent of URI), located in the raw
// string by Go's own parsing rules and cross-checked against url.Parse's
// result.
func FuzzURI(f *testing.F) {
	for _, s := range []string{
		"https://user:PASSWORD@host/m%zz.bin?X-Amz-Signature=SIG",
		"gs://u:pw@b/%zz",
		"https://host/m.bin?X-Amz-Signature=SIG&X-Amz-Credential=CRED\n",
		"s3://bucket/model@v1/w.bin",
		"oci://reg/repo@sha256:abc",
		"u:p@host/path?a=b#c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := URI(in)
		for _, r := range out {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("URI(%q) = %q holds control character %U", in, out, r)
			}
		}
		if again := URI(out); again != out {
			t.Fatalf("URI is not idempotent: URI(%q) = %q, URI of that = %q", in, out, again)
		}
		// The output is computed from the printable string; so is the oracle.
		clean := printable(in)
		secrets, outside, ok := parsedSecrets(t, clean)
		if !ok {
			return
		}
		// Markers become NUL, which no secret here holds: "REDACTED@host"
		// must not match a password "D@h".
		shown := strings.ReplaceAll(out, Marker, "\x00")
		for _, s := range secrets {
			// A secret that also appears where nothing is cut (a password
			// "s" and the scheme "https") proves nothing.
			if s == "" || strings.Contains(outside, s) {
				continue
			}
			if strings.Contains(shown, s) {
				t.Fatalf("URI(%q) = %q shows the secret %q", in, out, s)
			}
		}
	})
}

// parsedSecrets returns the raw user info, password, query, query values
// and fragment that url.Parse finds in s, and s with those parts replaced by
// NUL. ok is false when s does not parse.
func parsedSecrets(t *testing.T, s string) (secrets []string, outside string, ok bool) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, "", false
	}
	type span struct{ from, to int }
	var cut []span
	end := len(s)
	if i := strings.IndexByte(s, '#'); i >= 0 {
		secrets = append(secrets, s[i+1:])
		cut = append(cut, span{i + 1, len(s)})
		end = i
	}
	// The scheme, as url.getScheme reads it.
	restAt := 0
scheme:
	for i := 0; i < end; i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.':
			if i == 0 {
				break scheme
			}
		case c == ':':
			restAt = i + 1
			break scheme
		default:
			break scheme
		}
	}
	hasScheme := restAt > 0
	rest := s[restAt:end]
	query := ""
	if strings.HasSuffix(rest, "?") && strings.Count(rest, "?") == 1 {
		end--
	} else if i := strings.IndexByte(rest, '?'); i >= 0 {
		query = rest[i+1:]
		cut = append(cut, span{restAt + i + 1, end})
		end = restAt + i
	}
	if query != u.RawQuery {
		t.Fatalf("oracle: query of %q is %q, url.Parse says %q", s, query, u.RawQuery)
	}
	if query != "" {
		secrets = append(secrets, query)
		for kv := range strings.SplitSeq(query, "&") {
			_, v, _ := strings.Cut(kv, "=")
			secrets = append(secrets, v)
		}
	}
	rest = s[restAt:end]
	user := ""
	hasUser := false
	if (hasScheme || !strings.HasPrefix(rest, "///")) && strings.HasPrefix(rest, "//") {
		auth := rest[2:]
		if i := strings.IndexByte(auth, '/'); i >= 0 {
			auth = auth[:i]
		}
		if i := strings.LastIndexByte(auth, '@'); i >= 0 {
			user, hasUser = auth[:i], true
			cut = append(cut, span{restAt + 2, restAt + 2 + i})
		}
	}
	if hasUser != (u.User != nil) {
		t.Fatalf("oracle: user info of %q found=%v, url.Parse says %v", s, hasUser, u.User)
	}
	if hasUser {
		secrets = append(secrets, user)
		name, pass, hasPass := strings.Cut(user, ":")
		gotPass, gotHasPass := u.User.Password()
		uname, err1 := url.PathUnescape(name)
		upass, err2 := url.PathUnescape(pass)
		if err1 != nil || err2 != nil || uname != u.User.Username() || hasPass != gotHasPass || upass != gotPass {
			t.Fatalf("oracle: user info of %q is %q, url.Parse says %v", s, user, u.User)
		}
		secrets = append(secrets, pass)
	}
	b := []byte(s)
	for _, c := range cut {
		for i := c.from; i < c.to; i++ {
			b[i] = 0
		}
	}
	return secrets, string(b), true
}
