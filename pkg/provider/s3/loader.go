package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/storage-initializer/storage-initializer/internal/exact"
	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// loader reads byte ranges of one planned object version.
type loader struct {
	c    *client
	obj  objectRef
	size int64
	// sumsInBody: whole-object reads ask for the checksums and report them
	// to the engine (engine.BodyChecksums) instead of a HEAD at planning.
	sumsInBody bool
}

// noSDKRetries turns the SDK's retries off for downloads: the engine
// retries each range itself (with backoff, resume and a global budget), and
// SDK retries underneath would multiply attempts and hide slow ranges.
func noSDKRetries(o *awss3.Options) { o.Retryer = aws.NopRetryer{} }

// Load implements engine.Loader: one GetObject per call, pinned with
// If-Match to the ETag (and to the version id when the bucket has one) seen
// at planning, so every range comes from the same object version.
func (l *loader) Load(ctx context.Context, length, offset int64, fn func(io.Reader) error) error {
	if length == 0 {
		// A zero-length Range is invalid HTTP; there is nothing to read.
		return fn(strings.NewReader(""))
	}
	if offset < 0 || length < 0 || offset+length > l.size {
		return engine.Permanent(fmt.Errorf("%s: range %d+%d is outside the %d-byte object", l.obj.uri, offset, length, l.size))
	}
	whole := offset == 0 && length == l.size
	r := getRequest{bucket: l.obj.bucket, key: l.obj.key, versionID: l.obj.versionID, etag: l.obj.etag,
		checksums: whole && l.sumsInBody}
	if !whole {
		r.rng = fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)
	}
	out, err := l.c.get.get(ctx, r, func() (*awss3.GetObjectOutput, error) { return l.sdkGet(ctx, r) })
	if err != nil {
		return l.describe(err)
	}
	defer out.body.Close()
	if n := aws.ToInt64(out.length); out.length != nil && n != length {
		// A proxy that ignored Range, or a truncated response: retryable,
		// and never handed to fn as if it were the range asked for.
		return fmt.Errorf("read %s bytes %d-%d: server sent %d bytes, want %d",
			l.obj.uri, offset, offset+length-1, n, length)
	}
	// A chunked body has no Content-Length to check: count what arrives.
	body := exact.Reader(out.body, length)
	if r.checksums {
		return fn(&bodyWithSums{Reader: body, sums: getSums(out.sums())})
	}
	return fn(body)
}

// sdkGet is r through the SDK's GetObject, for endpoints the getter leaves
// to it.
func (l *loader) sdkGet(ctx context.Context, r getRequest) (*awss3.GetObjectOutput, error) {
	in := &awss3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(r.key), IfMatch: aws.String(r.etag)}
	if r.versionID != "" {
		in.VersionId = aws.String(r.versionID)
	}
	if r.rng != "" {
		in.Range = aws.String(r.rng)
	}
	opts := []func(*awss3.Options){noSDKRetries}
	if r.checksums {
		in.ChecksumMode = types.ChecksumModeEnabled
		opts = append(opts, noSDKValidation)
	}
	return l.c.api.GetObject(ctx, in, opts...)
}

// bodyWithSums hands the engine the checksums of a whole-object response.
type bodyWithSums struct {
	io.Reader
	sums []checksum.Value
}

// Checksums implements engine.BodyChecksums.
func (b *bodyWithSums) Checksums() []checksum.Value { return b.sums }

// noSDKValidation removes the SDK's own response checksum check: the engine
// verifies the same value (with faster CRC code) and the SDK's copy would
// hash every byte a second time.
func noSDKValidation(o *awss3.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		_, _ = st.Deserialize.Remove("AWSChecksum:ValidateOutputPayloadChecksum")
		return nil
	})
}

// describe classifies a download error; a changed or deleted object is
// permanent, since retrying would only mix versions.
func (l *loader) describe(err error) error {
	status, code, _ := apiError(err)
	switch {
	case status == http.StatusPreconditionFailed || code == "PreconditionFailed":
		return engine.Permanent(&s3Error{
			msg: fmt.Sprintf("object %s changed during download (ETag %s was planned): run again to fetch the new version",
				l.obj.uri, l.obj.etag),
			err: err,
		})
	case status == http.StatusRequestedRangeNotSatisfiable:
		return engine.Permanent(&s3Error{
			msg: fmt.Sprintf("object %s is shorter than the %d bytes planned: it changed during download, run again", l.obj.uri, l.size),
			err: err,
		})
	case code == "NoSuchKey" || code == "NoSuchVersion":
		return engine.Permanent(&s3Error{
			msg: fmt.Sprintf("object %s was deleted during download (%s at %s)", l.obj.uri, code, l.c.where),
			err: err,
		})
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return l.c.describe(err, "read", l.obj.uri, l.obj.bucket)
}
