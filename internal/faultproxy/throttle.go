package faultproxy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Throttle answers the first Times requests Match picks with Status (503
// or 429) and a Retry-After header, in seconds or as an HTTP-date, then
// lets every request through. It records when it answered and when the
// client tried that same request again, so a test can check it waited.
type Throttle struct {
	Status int // http.StatusServiceUnavailable or http.StatusTooManyRequests
	Times  int // 0 means 1
	Match  func(*http.Request) bool
	// After is what Retry-After asks for; with Date it is sent as an
	// HTTP-date that far ahead (rounded up to the next whole second, as
	// an HTTP-date has no fraction), else as whole seconds.
	After time.Duration
	Date  bool
	// Key names a request for Waited: the wait ends when a request with
	// the throttled one's key comes. Default: method, path, query, Range.
	Key func(*http.Request) string

	mu       sync.Mutex
	answered []time.Time
	key      string    // the last throttled request: method, path, query, Range
	next     time.Time // when that same request came again
}

func (t *Throttle) keyOf(r *http.Request) string {
	if t.Key != nil {
		return t.Key(r)
	}
	return r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery + " " + r.Header.Get("Range")
}

// RetryAfterValue is the header value for a throttled answer at now.
func (t *Throttle) RetryAfterValue(now time.Time) string {
	if t.Date {
		at := now.Add(t.After).Truncate(time.Second).Add(time.Second)
		return at.UTC().Format(http.TimeFormat)
	}
	return strconv.Itoa(int((t.After + time.Second - 1) / time.Second))
}

// Wrap returns h behind the throttle.
func (t *Throttle) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t.Match == nil || !t.Match(r) {
			h.ServeHTTP(w, r)
			return
		}
		now := time.Now()
		t.mu.Lock()
		times := max(t.Times, 1)
		throttle := len(t.answered) < times
		if throttle {
			t.answered = append(t.answered, now)
			t.key, t.next = t.keyOf(r), time.Time{}
		} else if t.next.IsZero() && t.keyOf(r) == t.key {
			t.next = now
		}
		t.mu.Unlock()
		if !throttle {
			h.ServeHTTP(w, r)
			return
		}
		status := t.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Retry-After", t.RetryAfterValue(now))
		writeThrottled(w, r, status)
	})
}

// Waited is the time from the last throttled answer to the same request
// (method, path, query and Range) made again (0 when it was not yet), and
// how many requests were throttled.
func (t *Throttle) Waited() (time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.answered) == 0 || t.next.IsZero() {
		return 0, len(t.answered)
	}
	return t.next.Sub(t.answered[len(t.answered)-1]), len(t.answered)
}

// writeThrottled answers like the backend would when it sheds load: a
// registry JSON error under /v2/, else an S3 XML error.
func writeThrottled(w http.ResponseWriter, r *http.Request, status int) {
	code, msg := "SlowDown", "Please reduce your request rate."
	if status == http.StatusTooManyRequests {
		code, msg = "TooManyRequests", "Too many requests."
	}
	w.Header().Set("X-Amz-Request-Id", "faultproxy")
	if strings.HasPrefix(r.URL.Path, "/v2/") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, strings.ToUpper(code), msg)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>faultproxy</RequestId></Error>`,
		code, msg, r.URL.Path)
}
