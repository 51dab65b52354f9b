package hubclient

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// rateLimitRe reads the IETF RateLimit header the Hub sends on 429
// ("api";r=0;t=55: no request left, window resets in 55 s), as
// huggingface_hub's parse_ratelimit_headers (utils/_http.py) does.
var rateLimitRe = regexp.MustCompile(`"(\w+)"\s*;\s*r\s*=\s*(\d+)\s*;\s*t\s*=\s*(\d+)`)

// RetryAfter returns the delay a throttling response asks for: Retry-After
// in seconds or as an HTTP-date (huggingface_hub reads only seconds), else
// the RateLimit reset when no request is left.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && n >= 0 {
			return time.Duration(n) * time.Second, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	if m := rateLimitRe.FindStringSubmatch(h.Get("RateLimit")); m != nil && m[2] == "0" {
		if n, err := strconv.ParseInt(m[3], 10, 32); err == nil {
			return time.Duration(n) * time.Second, true
		}
	}
	return 0, false
}
