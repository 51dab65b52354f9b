package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"cloud.google.com/go/storage"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// loader reads byte ranges of one object generation. The handle has the
// SDK's retries off: the engine retries each range itself, with backoff,
// resume and a global budget, and SDK retries underneath would multiply
// attempts and hide slow ranges.
type loader struct {
	c          *client
	obj        *storage.ObjectHandle // pinned to generation, RetryNever
	uri        string
	generation int64
	size       int64 // -1: read as one stream (Content-Encoding: gzip)
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
	r, err := l.obj.NewRangeReader(ctx, offset, length)
	if err != nil {
		return l.describe(err)
	}
	defer r.Close()
	if r.Attrs.Generation != 0 && r.Attrs.Generation != l.generation {
		return engine.Permanent(fmt.Errorf("object %s changed during download (generation %d was planned, the server sent %d): run again to fetch the new version",
			l.uri, l.generation, r.Attrs.Generation))
	}
	if length >= 0 && r.Remain() >= 0 && r.Remain() != length {
		// A proxy that ignored Range, or a truncated response: retryable,
		// and never handed to fn as if it were the range asked for.
		return fmt.Errorf("read %s bytes %d-%d: server sent %d bytes, want %d", l.uri, offset, offset+length-1, r.Remain(), length)
	}
	return fn(r)
}

// describe classifies a download error: a generation that is gone means
// the object was replaced or deleted since planning.
func (l *loader) describe(err error) error {
	switch status, _ := apiStatus(err); {
	case errors.Is(err, storage.ErrObjectNotExist):
		return engine.Permanent(fmt.Errorf("object %s changed during download (generation %d was planned and is gone from %s): run again to fetch the new version",
			l.uri, l.generation, l.c.where))
	case status == http.StatusPreconditionFailed:
		return engine.Permanent(fmt.Errorf("object %s changed during download (generation %d was planned): run again to fetch the new version", l.uri, l.generation))
	case status == http.StatusRequestedRangeNotSatisfiable:
		return engine.Permanent(fmt.Errorf("object %s is shorter than the %d bytes planned: it changed during download, run again", l.uri, l.size))
	}
	return l.c.describe(err, "read", l.uri, "")
}
