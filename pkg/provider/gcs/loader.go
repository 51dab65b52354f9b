package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// loader reads byte ranges of one object generation. One Load is one
// request: the engine retries each range itself, with backoff, resume and a
// global budget.
type loader struct {
	c            *client
	bucket, name string
	uri          string
	generation   int64
	size         int64 // -1: read as one stream (Content-Encoding: gzip)
}

// Load implements engine.Loader: one GET per call
// (…/o/NAME?alt=media&generation=G with a Range), so every range comes from
// the generation planned; a replaced or deleted object fails permanently
// instead of mixing versions.
func (l *loader) Load(ctx context.Context, length, offset int64, fn func(io.Reader) error) error {
	if length == 0 {
		return fn(strings.NewReader(""))
	}
	if l.size >= 0 && (offset < 0 || length < 0 || offset+length > l.size) {
		return engine.Permanent(fmt.Errorf("%s: range %d+%d is outside the %d-byte object", l.uri, offset, length, l.size))
	}
	if l.size < 0 {
		offset, length = 0, -1
	}
	resp, err := l.c.media(ctx, l.bucket, l.name, l.generation, offset, length)
	if err != nil {
		return l.describe(err)
	}
	defer resp.Body.Close()
	if g := resp.Header.Get("X-Goog-Generation"); g != "" && g != strconv.FormatInt(l.generation, 10) {
		return engine.Permanent(fmt.Errorf("object %s changed during download (generation %d was planned, the server sent %s): run again to fetch the new version",
			l.uri, l.generation, g))
	}
	if length >= 0 && resp.ContentLength != length {
		// A server or proxy that ignored Range, or a truncated response:
		// retryable, and never handed to fn as if it were the range asked for.
		return fmt.Errorf("read %s bytes %d-%d: server sent %d bytes, want %d", l.uri, offset, offset+length-1, resp.ContentLength, length)
	}
	return fn(resp.Body)
}

// describe classifies a download error: a generation that is gone means
// the object was replaced or deleted since planning.
func (l *loader) describe(err error) error {
	switch statusOf(err) {
	case http.StatusNotFound:
		return engine.Permanent(fmt.Errorf("object %s changed during download (generation %d was planned and is gone from %s): run again to fetch the new version",
			l.uri, l.generation, l.c.where))
	case http.StatusPreconditionFailed:
		return engine.Permanent(fmt.Errorf("object %s changed during download (generation %d was planned): run again to fetch the new version", l.uri, l.generation))
	case http.StatusRequestedRangeNotSatisfiable:
		return engine.Permanent(fmt.Errorf("object %s is shorter than the %d bytes planned: it changed during download, run again", l.uri, l.size))
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return l.c.describe(err, "read", l.uri, "")
}
