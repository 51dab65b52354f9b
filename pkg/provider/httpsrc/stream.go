package httpsrc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// streamReadTimeout aborts (and retries) a download that delivers no bytes
// for this long.
const streamReadTimeout = engine.DefaultReadTimeout

// stream downloads the whole file with one GET into dir/name (a staging
// folder), for servers without byte ranges or without a known size. The
// expected SHA-256, else the announced size, is verified before it returns.
func (p *Provider) stream(ctx context.Context, r *request, m remote, dir *os.Root, name string) (engine.FileResult, error) {
	var res engine.FileResult
	err := retry(ctx, p.log, "GET "+r.t.display, func() error {
		var err error
		res, err = p.streamOnce(ctx, r, m, dir, name)
		return err
	})
	return res, err
}

func (p *Provider) streamOnce(ctx context.Context, r *request, m remote, dir *os.Root, name string) (engine.FileResult, error) {
	res := engine.FileResult{Path: name, Status: engine.StatusDownloaded}
	f, err := dir.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return res, engine.Permanent(fmt.Errorf("create staging file for %s: %w", name, err))
	}
	defer f.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h := http.Header{}
	m.pin(h)
	resp, err := r.do(ctx, http.MethodGet, h)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusPreconditionFailed:
		return res, r.changed("the server's If-Match/If-Unmodified-Since check failed")
	default:
		return res, r.statusError(http.MethodGet, resp)
	}
	if err := m.check(r, resp); err != nil {
		return res, err
	}
	var sum hash.Hash
	w := io.Writer(f)
	if len(r.t.expect) > 0 {
		sum = sha256.New()
		w = io.MultiWriter(f, sum)
	}
	obs := p.eng.Observer()
	watchdog := time.AfterFunc(streamReadTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	body := &countingReader{r: resp.Body, n: func(n int) {
		watchdog.Reset(streamReadTimeout)
		obs.Transferred(int64(n))
	}}
	n, err := io.CopyBuffer(w, body, make([]byte, 1<<20))
	res.Fetched, res.Size = n, n
	if err != nil {
		obs.Transferred(-n)
		if errors.Is(context.Cause(ctx), errStalled) {
			return res, fmt.Errorf("GET %s: no data for %s: %w", r.t.display, streamReadTimeout, errStalled)
		}
		return res, fmt.Errorf("GET %s after %d bytes: %w", r.t.display, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		obs.Transferred(-n)
		return res, fmt.Errorf("GET %s: got %d of %d bytes: %w", r.t.display, n, resp.ContentLength, io.ErrUnexpectedEOF)
	}
	if m.size >= 0 && n != m.size {
		return res, r.changed(fmt.Sprintf("size %d first, now %d", m.size, n))
	}
	switch {
	case sum != nil:
		got := checksum.Value{Algorithm: checksum.SHA256, Sum: sum.Sum(nil)}
		if want := r.t.expect[0]; !got.Equal(want) {
			return res, engine.Permanent(mismatch(r.t, want, got))
		}
		res.Verified, res.Digest = "sha256", got.String()
	case resp.ContentLength >= 0:
		res.Verified = "size only"
	default:
		res.Verified = "not verified (no size or checksum from the server)"
	}
	if err := f.Close(); err != nil {
		return res, fmt.Errorf("write %s: %w", name, err)
	}
	if !m.modTime.IsZero() {
		_ = dir.Chtimes(name, m.modTime, m.modTime)
	}
	return res, nil
}

func mismatch(t target, want, got checksum.Value) error {
	return fmt.Errorf("checksum mismatch for %s: sha256 expected %s (URL fragment), got %s: the file at the URL is not the one expected",
		t.display, want, got)
}

var errStalled = errors.New("stalled")

// countingReader reports every read's size.
type countingReader struct {
	r io.Reader
	n func(int)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n(n)
	}
	return n, err
}
