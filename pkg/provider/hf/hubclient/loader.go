package hubclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/storage-initializer/storage-initializer/internal/exact"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// File reads byte ranges of one hub file. The first read resolves the
// file's redirect (the Hub sends large files to a CDN or the Xet bridge with
// a signed URL) and later reads go straight to the final URL, without
// credentials unless it is on the hub itself. When the CDN refuses a cached
// URL (401/403: the signature expired) the file is resolved again.
type File struct {
	Client *Client
	// Origin is the download URL on the hub (…/resolve/COMMIT/PATH).
	Origin *url.URL
	Size   int64
	// Name is the file in messages ("hf://org/model@commit/path").
	Name     string
	Classify Classify

	mu    sync.Mutex
	final *url.URL // where Origin redirected to; nil until resolved
}

// Load implements engine.Loader: one ranged GET (plus the redirect hops of
// an unresolved file) per call.
func (f *File) Load(ctx context.Context, length, offset int64, fn func(io.Reader) error) error {
	if length == 0 {
		return fn(strings.NewReader("")) // a zero-length Range is invalid HTTP
	}
	u, cached := f.target()
	for {
		resp, at, err := f.get(ctx, u, length, offset)
		if err != nil {
			return err
		}
		if (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized) && !f.Client.OnEndpoint(at) {
			drain(resp)
			f.forget(at)
			if cached {
				// An expired signature: resolve once more, within this attempt.
				u, cached = f.Origin, false
				continue
			}
			// A fresh signature refused: retryable, the engine resolves again.
			return fmt.Errorf("%s: %s refused a freshly signed download URL (HTTP %d)", f.Name, at.Host, resp.StatusCode)
		}
		defer resp.Body.Close()
		return f.read(resp, at, length, offset, fn)
	}
}

func (f *File) target() (*url.URL, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.final != nil {
		return f.final, true
	}
	return f.Origin, false
}

func (f *File) forget(u *url.URL) {
	f.mu.Lock()
	if f.final != nil && f.final.String() == u.String() {
		f.final = nil
	}
	f.mu.Unlock()
}

// get sends the ranged GET to u and follows redirects itself, remembering
// where they end; it returns the response and the URL that answered.
func (f *File) get(ctx context.Context, u *url.URL, length, offset int64) (*http.Response, *url.URL, error) {
	hdr := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)}}
	for hop := 0; ; hop++ {
		resp, err := f.Client.Do(ctx, http.MethodGet, u, hdr)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		loc := resp.Header.Get("Location")
		if !isRedirect(resp.StatusCode) || loc == "" {
			if hop > 0 {
				f.mu.Lock()
				f.final = u
				f.mu.Unlock()
			}
			return resp, u, nil
		}
		drain(resp)
		next, err := u.Parse(loc)
		if err != nil || (next.Scheme != "https" && next.Scheme != "http") {
			return nil, nil, engine.Permanent(fmt.Errorf("%s: unusable redirect from %s", f.Name, u.Host))
		}
		if hop >= maxRedirects {
			return nil, nil, engine.Permanent(fmt.Errorf("%s: more than %d redirects", f.Name, maxRedirects))
		}
		u = next
	}
}

func (f *File) read(resp *http.Response, at *url.URL, length, offset int64, fn func(io.Reader) error) error {
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, end, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if ok && total >= 0 && total != f.Size {
			return engine.Permanent(fmt.Errorf("%s: %s serves %d bytes, the listing at this commit says %d", f.Name, at.Host, total, f.Size))
		}
		if !ok || start != offset || end != offset+length-1 {
			return fmt.Errorf("%s: asked %s for bytes %d-%d, got Content-Range %q", f.Name, at.Host, offset, offset+length-1,
				resp.Header.Get("Content-Range"))
		}
	case http.StatusOK:
		if offset != 0 || length != f.Size {
			return engine.Permanent(fmt.Errorf("%s: %s ignored the Range header and sent the whole file; a proxy in between may strip it", f.Name, at.Host))
		}
	case http.StatusRequestedRangeNotSatisfiable:
		return engine.Permanent(fmt.Errorf("%s: %s has fewer than %d bytes, the listing's size", f.Name, at.Host, f.Size))
	default:
		if !f.Client.OnEndpoint(at) {
			return StatusError(resp, func(r *http.Response) error {
				return fmt.Errorf("%s: download host %s answered HTTP %d", f.Name, at.Host, r.StatusCode)
			})
		}
		return StatusError(resp, f.Classify)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != length {
		return fmt.Errorf("%s: %s sent %d bytes for a %d-byte range", f.Name, at.Host, resp.ContentLength, length)
	}
	// A chunked body has no Content-Length to check: count what arrives.
	return fn(exact.Reader(resp.Body, length))
}

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be "*": -1).
func parseContentRange(s string) (start, end, total int64, ok bool) {
	s, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	var totalS string
	if _, err := fmt.Sscanf(strings.Replace(s, "/", " ", 1), "%d-%d %s", &start, &end, &totalS); err != nil {
		return 0, 0, 0, false
	}
	total = -1
	if totalS != "*" {
		if _, err := fmt.Sscanf(totalS, "%d", &total); err != nil {
			return 0, 0, 0, false
		}
	}
	return start, end, total, true
}
