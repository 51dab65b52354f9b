package hubclient

import (
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// rateLimitRe reads the IETF RateLimit header the Hub sends on 429
// ("api";r=0;t=55: no request left, window resets in 55 s), as
// huggingface_hub's parse_ratelimit_headers (utils/_http.py) does.
var rateLimitRe = regexp.MustCompile(`"(\w+)"\s*;\s*r\s*=\s*(\d+)\s*;\s*t\s*=\s*(\d+)`)

// RetryAfter returns the delay a throttling response asks for: Retry-After
// in seconds or as an HTTP-date (huggingface_hub reads only seconds), else
// the RateLimit reset when no request is left.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if d, ok := engine.ParseRetryAfter(h.Get("Retry-After"), now); ok {
		return d, true
	}
	if m := rateLimitRe.FindStringSubmatch(h.Get("RateLimit")); m != nil && m[2] == "0" {
		if n, err := strconv.ParseInt(m[3], 10, 32); err == nil {
			return time.Duration(n) * time.Second, true
		}
	}
	return 0, false
}
