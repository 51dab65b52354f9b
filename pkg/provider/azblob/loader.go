package azblob

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// maxCheckedRange is the largest range Azure returns a transactional MD5
// for (x-ms-range-get-content-md5 is refused above 4 MiB). A Load of a
// larger range (the engine's chunks are 16 MiB by default) is read as
// consecutive sub-ranges of this size on the same connection, each checked
// before the next is asked for.
//
// MD5 rather than CRC64: both are offered by Azure on ranges up to 4 MiB,
// but Azurite answers x-ms-range-get-content-crc64 with 500
// FeatureNotSupported, so only MD5 can be tested against a real server.
const maxCheckedRange = 4 << 20

// RangeCheck is how a loader verifies every range in transit, for the
// summary of a file whose source offers no whole-file checksum. (The
// engine can ask a File.Source for it: interface{ RangeCheck() string }.)
const RangeCheck = "transactional md5 per range"

// loader reads byte ranges of one blob version.
type loader struct {
	c    *client
	blob string
	uri  string // container URL + name, without SAS
	etag string
	size int64
	// wholeChecked: the blob has a Content-MD5 the engine verifies over the
	// whole file, so ranges are read whole, without transactional MD5s
	// (which Azure computes only on ranges of at most 4 MiB: four requests
	// per 16 MiB chunk, each costing the service more than its bytes).
	wholeChecked bool
}

// RangeCheck reports how every range this loader returns was verified
// ("" when the whole file is checked instead).
func (l *loader) RangeCheck() string {
	if l.wholeChecked {
		return ""
	}
	return RangeCheck
}

// Load implements engine.Loader: one attempt at length bytes from offset,
// as ranged GETs pinned with If-Match to the planned ETag (a blob that
// changes fails permanently instead of mixing versions): one GET when the
// whole file is checked by its Content-MD5, else GETs of at most 4 MiB,
// each checked against the MD5 the service computes for it.
func (l *loader) Load(ctx context.Context, length, offset int64, fn func(io.Reader) error) error {
	if length == 0 {
		return fn(strings.NewReader(""))
	}
	if offset < 0 || length < 0 || offset+length > l.size {
		return engine.Permanent(fmt.Errorf("%s: range %d+%d is outside the %d-byte blob", l.uri, offset, length, l.size))
	}
	r := &checkedReader{ctx: ctx, l: l, off: offset, end: offset + length}
	// The first request is made before fn runs, so its error (a changed
	// blob, a revoked key) comes back classified, not wrapped by fn.
	if err := r.next(); err != nil {
		return err
	}
	defer r.close()
	err := fn(r)
	if r.err != nil {
		return r.err
	}
	return err
}

// checkedReader yields the bytes of [off, end) from consecutive checked
// sub-range responses.
type checkedReader struct {
	ctx      context.Context
	l        *loader
	off, end int64 // the next sub-range starts at off

	body     io.ReadCloser // current sub-range, nil between sub-ranges
	subStart int64
	left     int64
	want     []byte
	h        hash.Hash
	err      error
}

func (r *checkedReader) next() error {
	n := r.end - r.off
	var perRange *bool
	if !r.l.wholeChecked {
		yes := true
		n, perRange = min(maxCheckedRange, n), &yes
	}
	etag := azcore.ETag(r.l.etag)
	resp, err := r.l.c.blobs.NewBlobClient(r.l.blob).DownloadStream(r.ctx, &blob.DownloadStreamOptions{
		Range:              blob.HTTPRange{Offset: r.off, Count: n},
		RangeGetContentMD5: perRange,
		AccessConditions:   &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &etag}},
	})
	if err != nil {
		return r.l.describe(err)
	}
	if resp.ContentLength != nil && *resp.ContentLength != n {
		_ = resp.Body.Close()
		// A proxy that ignored the range: retryable, never handed on.
		return fmt.Errorf("read %s bytes %d-%d: server sent %d bytes, want %d", r.l.uri, r.off, r.off+n-1, *resp.ContentLength, n)
	}
	if perRange != nil && len(resp.ContentMD5) != md5.Size {
		_ = resp.Body.Close()
		return engine.Permanent(fmt.Errorf("read %s bytes %d-%d: the server sent no transactional MD5 (x-ms-range-get-content-md5), so the range cannot be verified",
			r.l.uri, r.off, r.off+n-1))
	}
	r.body, r.subStart, r.left, r.want, r.h = resp.Body, r.off, n, nil, nil
	if perRange != nil {
		r.want, r.h = resp.ContentMD5, md5.New()
	}
	r.off += n
	return nil
}

func (r *checkedReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.body == nil {
		if r.off >= r.end {
			return 0, io.EOF
		}
		if r.err = r.next(); r.err != nil {
			return 0, r.err
		}
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.body.Read(p)
	if r.h != nil {
		r.h.Write(p[:n])
	}
	r.left -= int64(n)
	switch {
	case r.left == 0:
		_ = r.body.Close()
		r.body = nil
		if r.h == nil {
			return n, nil
		}
		if got := r.h.Sum(nil); !bytes.Equal(got, r.want) {
			// Retryable: the engine discards this attempt's bytes and reads
			// the range again.
			r.err = fmt.Errorf("read %s bytes %d-%d: transactional MD5 mismatch (computed %s, the service sent %s): the data was corrupted in transit",
				r.l.uri, r.subStart, r.off-1, base64.StdEncoding.EncodeToString(got), base64.StdEncoding.EncodeToString(r.want))
			return n, r.err
		}
		return n, nil
	case errors.Is(err, io.EOF):
		r.err = fmt.Errorf("read %s bytes %d-%d: %w (%d bytes missing)", r.l.uri, r.subStart, r.off-1, io.ErrUnexpectedEOF, r.left)
		return n, r.err
	case err != nil:
		r.err = fmt.Errorf("read %s bytes %d-%d: %w", r.l.uri, r.subStart, r.off-1, err)
		return n, r.err
	}
	return n, nil
}

func (r *checkedReader) close() {
	if r.body != nil {
		_ = r.body.Close()
		r.body = nil
	}
}

// describe classifies a download error; a changed or deleted blob is
// permanent, since retrying would only mix versions.
func (l *loader) describe(err error) error {
	switch {
	case bloberror.HasCode(err, bloberror.ConditionNotMet) || statusOf(err) == http.StatusPreconditionFailed:
		return engine.Permanent(fmt.Errorf("blob %s changed during download (ETag %s was planned): run again to fetch the new version", l.uri, l.etag))
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return engine.Permanent(fmt.Errorf("blob %s changed during download: it was deleted (ETag %s was planned)", l.uri, l.etag))
	case bloberror.HasCode(err, bloberror.InvalidRange) || statusOf(err) == http.StatusRequestedRangeNotSatisfiable:
		return engine.Permanent(fmt.Errorf("blob %s is shorter than the %d bytes planned: it changed during download, run again", l.uri, l.size))
	}
	return l.c.describe(err, "read", l.uri)
}
