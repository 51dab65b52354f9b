package httpsrc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// probeTimeout bounds each metadata request.
const probeTimeout = time.Minute

// remote is what the server says about the file before the download.
type remote struct {
	size int64 // -1 when unknown (chunked responses)
	// ranges: byte ranges are served and safe to use (see rangesSafe);
	// false means one whole-file GET, never resumed.
	ranges bool
	// singleWhy says why a server that serves ranges is still read in one
	// stream ("" when ranges are used or not served): for the log.
	singleWhy string
	etag      string
	lastMod   string
	modTime   time.Time
	// rangesSeen: the server answered a Range request with 206 already.
	rangesSeen bool
}

// rangesSafe reports whether ranges (parallel parts, or a resume of a
// partial download) are sure to come from one version of the file. That
// takes a validator the server enforces on every request (a strong ETag
// for If-Match, or Last-Modified for If-Unmodified-Since), or the #sha256
// fragment, which catches a spliced file before commit. Without either,
// two versions of the same size could be spliced unnoticed. why says
// what is missing.
func (m remote) rangesSafe(t target) (ok bool, why string) {
	switch {
	case m.strongETag() != "" || m.lastMod != "" || len(t.expect) > 0:
		return true, ""
	case m.etag != "":
		return false, "the server gives only a weak ETag (" + m.etag + ") and no Last-Modified, and the URL has no #sha256: " +
			"parts or a resume could mix two versions, so the file is read in one stream and never resumed; " +
			"append #sha256=HEX to the URL to allow parallel ranges"
	default:
		return false, "the server gives neither ETag nor Last-Modified and the URL has no #sha256: " +
			"parts or a resume could mix two versions, so the file is read in one stream and never resumed; " +
			"append #sha256=HEX to the URL to allow parallel ranges"
	}
}

// restrictRanges turns ranges off when they are not safe for t.
func (m *remote) restrictRanges(t target) {
	if !m.ranges {
		return
	}
	if ok, why := m.rangesSafe(t); !ok {
		m.ranges, m.singleWhy = false, why
	}
}

// resumable says whether a partial download of this version may be
// continued rather than started over.
func (m remote) resumable() bool { return m.ranges }

// logFields describe the probe result for the "probed" log line.
func (m remote) logFields() []zap.Field {
	f := []zap.Field{zap.Int64("size", m.size), zap.Bool("ranges", m.ranges), zap.Bool("resumable", m.resumable())}
	if m.singleWhy != "" {
		f = append(f, zap.String("single_stream", m.singleWhy))
	}
	return f
}

// strongETag is an ETag usable with If-Match (weak ones never match).
func (m remote) strongETag() string {
	if m.etag == "" || strings.HasPrefix(m.etag, "W/") {
		return ""
	}
	return m.etag
}

// identity names this version for the engine's resume journal, the stamp
// on the committed file and the node cache's key: the URL (its query only
// as a hash: it may hold a signature, and the stamp is stored on disk) and
// the validator. Without a validator there is no identity, so such a file
// never comes from the cache.
func (m remote) identity(t target) string {
	v := ""
	switch {
	case m.etag != "":
		v = "etag " + m.etag
	case m.lastMod != "":
		v = "last-modified " + m.lastMod
	default:
		return ""
	}
	id := "url " + t.key
	if q := t.url.RawQuery; q != "" {
		sum := sha256.Sum256([]byte(q))
		id += "?sha256:" + hex.EncodeToString(sum[:8])
	}
	return id + " " + v
}

// pin asks the server to answer only for the version first seen: If-Match
// with a strong ETag, else If-Unmodified-Since.
func (m remote) pin(h http.Header) {
	if e := m.strongETag(); e != "" {
		h.Set("If-Match", e)
	} else if m.lastMod != "" {
		h.Set("If-Unmodified-Since", m.lastMod)
	}
}

// check compares a response's validators with the first ones seen.
func (m remote) check(r *request, resp *http.Response) error {
	if e := resp.Header.Get("ETag"); m.etag != "" && e != "" && e != m.etag {
		return r.changed(fmt.Sprintf("ETag %s first, now %s", m.etag, e))
	}
	if lm := resp.Header.Get("Last-Modified"); m.lastMod != "" && lm != "" && lm != m.lastMod {
		return r.changed(fmt.Sprintf("Last-Modified %s first, now %s", m.lastMod, lm))
	}
	return nil
}

// probe learns size, range support and validators: HEAD, or, when HEAD is
// refused (405, 501, or 403 from a URL presigned for GET only) or gives no
// size, a GET of the first byte.
//
// Ranges are reported only when safe (rangesSafe): a remote without a
// validator or #sha256 has ranges false and singleWhy set.
func (r *request) probe(ctx context.Context) (remote, error) {
	m, err := r.probeServer(ctx)
	if err != nil {
		return m, err
	}
	if m.size > maxFileSize {
		// The engine sizes its range bookkeeping by it: refuse nonsense.
		return remote{}, engine.Permanent(fmt.Errorf("%s: the server announces %d bytes, more than any file can be (%d): refusing it",
			r.t.display, m.size, maxFileSize))
	}
	m.restrictRanges(r.t)
	return m, nil
}

// maxFileSize (1 PiB) is beyond any disk a pod gets.
const maxFileSize = 1 << 50

func (r *request) probeServer(ctx context.Context) (remote, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	resp, err := r.do(ctx, http.MethodHead, nil)
	if err != nil {
		return remote{}, err
	}
	resp.Body.Close()
	// A HEAD without Content-Length says too little: ask for a byte instead.
	if resp.StatusCode/100 == 2 && resp.ContentLength >= 0 {
		m := validators(resp)
		m.size = resp.ContentLength
		m.ranges = strings.Contains(strings.ToLower(resp.Header.Get("Accept-Ranges")), "bytes")
		return m, nil
	}
	resp, err = r.do(ctx, http.MethodGet, http.Header{"Range": {"bytes=0-0"}})
	if err != nil {
		return remote{}, err
	}
	defer discard(resp)
	m := validators(resp)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		_, _, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || total < 0 {
			return remote{}, fmt.Errorf("GET %s: unusable Content-Range %q", r.t.display, resp.Header.Get("Content-Range"))
		}
		m.size, m.ranges, m.rangesSeen = total, true, true
	case http.StatusOK:
		m.size = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable:
		// The only file without a first byte is an empty one.
		if resp.Header.Get("Content-Range") != "bytes */0" {
			return remote{}, r.statusError(http.MethodGet, resp)
		}
		m.size = 0
	default:
		return remote{}, r.statusError(http.MethodGet, resp)
	}
	return m, nil
}

func validators(resp *http.Response) remote {
	m := remote{etag: resp.Header.Get("ETag"), lastMod: resp.Header.Get("Last-Modified")}
	if t, err := http.ParseTime(m.lastMod); err == nil {
		m.modTime = t
	}
	return m
}

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be "*": -1).
func parseContentRange(v string) (start, end, total int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	var err error
	if start, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, 0, false
	}
	if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
		return 0, 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, 0, false
		}
	}
	return start, end, total, true
}

// confirmRanges asks for the first byte: a server that answers with the
// whole file does not serve ranges, whatever it advertises.
func (r *request) confirmRanges(ctx context.Context, m *remote) error {
	h := http.Header{"Range": {"bytes=0-0"}}
	m.pin(h)
	resp, err := r.do(ctx, http.MethodGet, h)
	if err != nil {
		return err
	}
	defer discard(resp)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		m.rangesSeen = true
		return nil
	case http.StatusOK:
		m.ranges, m.singleWhy = false, "it advertised byte ranges (Accept-Ranges: bytes) but sent the whole file for one (a proxy may strip Range)"
		return nil
	case http.StatusPreconditionFailed:
		return r.changed("the server's If-Match/If-Unmodified-Since check failed")
	}
	return r.statusError(http.MethodGet, resp)
}
