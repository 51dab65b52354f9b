package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/internal/exact"
	"github.com/storage-initializer/storage-initializer/internal/httpx"
	"github.com/storage-initializer/storage-initializer/internal/redact"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// blobLoader reads byte ranges of one blob (GET /v2/<repo>/blobs/<digest>
// with a Range header). Registries serve ranges, directly or after a
// redirect to object storage; Go's client keeps the Range header across the
// redirect and drops the registry's Authorization header when the host
// changes.
type blobLoader struct {
	c      *repoClient
	digest string
	url    string
	log    *zap.Logger
	warned atomic.Bool
}

func (c *repoClient) loader(digest string, log *zap.Logger) *blobLoader {
	return &blobLoader{c: c, digest: digest, url: c.blobURL(digest), log: log}
}

// Load implements engine.Loader: one attempt, errors classified for the
// engine's retry policy.
func (b *blobLoader) Load(ctx context.Context, length, offset int64, fn func(io.Reader) error) error {
	if length == 0 {
		return fn(bytes.NewReader(nil))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url, nil)
	if err != nil {
		return engine.Permanent(err)
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	resp, err := b.c.client.Do(req)
	if err != nil {
		// After a redirect the URL is object storage's, presigned.
		err = fmt.Errorf("blob %s: %w", b.digest, redact.Error(err))
		if _, refused := errors.AsType[*httpx.RedirectError](err); refused {
			return engine.Permanent(err)
		}
		return err
	}
	defer resp.Body.Close()
	body := io.Reader(resp.Body)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); !ok || start != offset {
			return fmt.Errorf("blob %s: asked for bytes from %d, got Content-Range %q", b.digest, offset, resp.Header.Get("Content-Range"))
		}
	case http.StatusOK:
		// The server ignored Range: skip to the offset (correct, but
		// every range re-reads the blob's head).
		if offset > 0 {
			if b.warned.CompareAndSwap(false, true) {
				b.log.Warn("registry ignores Range requests; ranged reads will be slow", zap.String("blob", b.digest))
			}
			if _, err := io.CopyN(io.Discard, body, offset); err != nil {
				return fmt.Errorf("blob %s: skip to offset %d: %w", b.digest, offset, err)
			}
		}
	default:
		return classify(b.digest, resp)
	}
	return fn(exact.Reader(body, length))
}

// classify maps a failed response to a retryable or permanent error.
func classify(digest string, resp *http.Response) error {
	err := fmt.Errorf("blob %s: %w", digest, transport.CheckError(resp))
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || s >= 500:
		if after, ok := engine.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok && after > 0 {
			return engine.RetryAfter(err, after)
		}
		return err
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return engine.Permanent(fmt.Errorf("%w (access denied: check the registry credentials)", err))
	default:
		return engine.Permanent(err)
	}
}

// contentRangeStart parses "bytes START-END/TOTAL".
func contentRangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}
