package oci

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// go-containerregistry's errors keep the status but not the headers, so
// the Retry-After of a throttled manifest or token request is recorded on
// the way back, into a box the request's context carries (set by the
// manifest request; other requests carry none).
type retryAfterKey struct{}

type retryAfterBox struct{ d atomic.Int64 }

func (b *retryAfterBox) get() time.Duration { return time.Duration(b.d.Load()) }

// retryAfterRecorder notes the server's Retry-After on 429 and 503 answers.
type retryAfterRecorder struct{ next http.RoundTripper }

func (r retryAfterRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return resp, err
	}
	if box, ok := req.Context().Value(retryAfterKey{}).(*retryAfterBox); ok {
		if d, ok := engine.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			box.d.Store(int64(d))
		}
	}
	return resp, err
}
