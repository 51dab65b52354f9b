package hubclient

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

var linkRe = regexp.MustCompile(`<([^>]*)>([^,]*)`)

// NextPage returns the rel="next" target of a Link header (GitHub style,
// as huggingface_hub's paginate follows it), resolved against base; nil on
// the last page.
func NextPage(h http.Header, base *url.URL) (*url.URL, error) {
	for _, v := range h.Values("Link") {
		for _, m := range linkRe.FindAllStringSubmatch(v, -1) {
			for _, p := range strings.Split(m[2], ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return base.Parse(m[1])
					}
				}
			}
		}
	}
	return nil, nil
}
