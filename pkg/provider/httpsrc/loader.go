package httpsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/storage-initializer/storage-initializer/internal/exact"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// errRangesUnsafe is wrapped when a part of a file is asked for whose
// ranges could come from different versions.
var errRangesUnsafe = errors.New("byte ranges refused")

// loader reads byte ranges of one URL for the engine, pinned to the version
// seen by the probe.
type loader struct {
	r *request
	m remote
}

// Load implements engine.Loader: one GET per call; the whole file (length
// -1, or offset 0 and the full size) is asked for without a Range header.
// A part of a file whose ranges are not safe (no validator, no #sha256:
// see rangesSafe) is refused rather than risk splicing two versions.
func (l *loader) Load(ctx context.Context, length, offset int64, fn func(io.Reader) error) error {
	if length == 0 {
		return fn(strings.NewReader("")) // a zero-length Range is invalid HTTP
	}
	whole := length < 0 || (offset == 0 && length == l.m.size)
	if !whole && !l.m.ranges {
		why := l.m.singleWhy
		if why == "" {
			why = "the server does not serve byte ranges"
		}
		return engine.Permanent(fmt.Errorf("GET %s bytes %d-%d: %w: %s", l.r.t.display, offset, offset+length-1, errRangesUnsafe, why))
	}
	h := http.Header{}
	if !whole {
		h.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	}
	l.m.pin(h)
	resp, err := l.r.do(ctx, http.MethodGet, h)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, end, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if ok && total >= 0 && total != l.m.size {
			return l.r.changed(fmt.Sprintf("size %d first, now %d", l.m.size, total))
		}
		if !ok || start != offset || end != offset+length-1 {
			return fmt.Errorf("GET %s bytes %d-%d: server sent Content-Range %q", l.r.t.display, offset, offset+length-1,
				resp.Header.Get("Content-Range"))
		}
	case http.StatusOK:
		if !whole {
			return engine.Permanent(fmt.Errorf("GET %s: %w: it advertised byte ranges (Accept-Ranges: bytes) but sent the whole file; "+
				"a proxy in between may strip Range: fix the server or proxy", l.r.t.display, errRangeIgnored))
		}
	case http.StatusPreconditionFailed:
		return l.r.changed("the server's If-Match/If-Unmodified-Since check failed")
	case http.StatusRequestedRangeNotSatisfiable:
		return l.r.changed(fmt.Sprintf("it is now shorter than %d bytes", l.m.size))
	default:
		return l.r.statusError(http.MethodGet, resp)
	}
	if err := l.m.check(l.r, resp); err != nil {
		return err
	}
	if length < 0 {
		length = l.m.size // -1 too when unknown: the body's length is taken
	}
	if resp.ContentLength >= 0 && length >= 0 && resp.ContentLength != length {
		// Never hand fn a body that is not the range asked for; retryable.
		return fmt.Errorf("GET %s bytes %d-%d: server sent %d bytes, want %d", l.r.t.display, offset, offset+length-1,
			resp.ContentLength, length)
	}
	if length < 0 {
		return fn(resp.Body) // size unknown: the engine takes what the body delivers
	}
	// A chunked body has no Content-Length to check: count what arrives.
	return fn(exact.Reader(resp.Body, length))
}

// head reads up to n bytes from the start of the file (a Range request when
// the server serves ranges, else the first bytes of a GET).
func (r *request) head(ctx context.Context, m remote, n int64) ([]byte, error) {
	h := http.Header{}
	if m.ranges {
		h.Set("Range", fmt.Sprintf("bytes=0-%d", n-1))
	}
	m.pin(h)
	resp, err := r.do(ctx, http.MethodGet, h)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		return nil, r.statusError(http.MethodGet, resp)
	}
	return io.ReadAll(io.LimitReader(resp.Body, n))
}
