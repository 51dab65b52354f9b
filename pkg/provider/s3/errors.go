package s3

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/idletimeout"
)

// s3Error is a one-line, actionable message that still unwraps to the SDK's
// error (for errors.As and request ids in debug logs).
type s3Error struct {
	msg string
	err error
}

func (e *s3Error) Error() string { return e.msg }
func (e *s3Error) Unwrap() error { return e.err }

// regionError says the bucket lives in another AWS region; Plan retries
// once in that region, as boto3 (KServe's initializer) does.
type regionError struct {
	s3Error
	region string
}

// apiError extracts the HTTP status and S3 error code of an SDK error.
// HEAD responses have no body, so their code is generic ("NotFound",
// "Forbidden") and the status is what counts.
func apiError(err error) (status int, code string, hdr http.Header) {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
		if re.Response != nil && re.Response.Response != nil {
			hdr = re.Response.Header
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	return status, code, hdr
}

// describe turns an S3 error on uri into a clear message and marks it
// permanent when retrying cannot help; transient errors (5xx, resets,
// timeouts) come back unchanged for the engine to retry. bucket is named in
// the missing-bucket message.
func (c *client) describe(err error, op, uri, bucket string) error {
	if err == nil {
		return nil
	}
	var idle *idletimeout.Error
	if errors.As(err, &idle) {
		// Transient: the engine retries downloads; the SDK already retried planning.
		return &s3Error{msg: fmt.Sprintf("%s %s: %s stopped sending mid-response for %s (S3_READ_TIMEOUT; raise it if the server is only slow)",
			op, uri, c.where, idle.Timeout), err: err}
	}
	status, code, hdr := apiError(err)
	tag := fmt.Sprintf(" [HTTP %d %s]", status, code)
	if status == 0 {
		// An untrusted certificate is not a network blip: say what to
		// configure, and do not let the engine retry it.
		var cve *tls.CertificateVerificationError
		if errors.As(err, &cve) {
			return engine.Permanent(&s3Error{msg: fmt.Sprintf("%s %s: the TLS certificate of %s is not trusted (%v): "+
				"set AWS_CA_BUNDLE (or the CA bundle configmap) to the CA that signed it, or S3_VERIFY_SSL=0 to skip verification",
				op, uri, c.where, cve.Err), err: err})
		}
		// No response at all: keep the network error, drop the SDK's
		// wrapping ("https response error StatusCode: 0, RequestID: …").
		var ne *net.OpError
		if errors.As(err, &ne) {
			return &s3Error{msg: fmt.Sprintf("%s %s: cannot reach %s: %v", op, uri, c.where, ne), err: err}
		}
		return fmt.Errorf("%s %s at %s: %w", op, uri, c.where, err)
	}
	perm := func(format string, args ...any) error {
		return engine.Permanent(&s3Error{msg: fmt.Sprintf(format, args...) + tag, err: err})
	}
	switch {
	case code == "NoSuchBucket":
		return perm("bucket %s does not exist at %s", bucket, c.where)
	case code == "InvalidAccessKeyId":
		return perm("%s %s: the access key id is not known at %s: check AWS_ACCESS_KEY_ID (credentials from %s)",
			op, uri, c.where, c.credSource)
	case code == "ExpiredToken" || code == "TokenRefreshRequired":
		return perm("%s %s: the session token has expired at %s: refresh AWS_SESSION_TOKEN (credentials from %s)",
			op, uri, c.where, c.credSource)
	case code == "InvalidToken" || code == "InvalidTokenId":
		return perm("%s %s: the session token is not valid at %s: check AWS_SESSION_TOKEN (credentials from %s)",
			op, uri, c.where, c.credSource)
	case code == "SignatureDoesNotMatch":
		return perm("%s %s: the secret key does not match the access key at %s: check AWS_SECRET_ACCESS_KEY (credentials from %s)",
			op, uri, c.where, c.credSource)
	case wrongRegion(status, hdr, c.region):
		region := hdr.Get("X-Amz-Bucket-Region")
		return engine.Permanent(&regionError{
			s3Error: s3Error{msg: fmt.Sprintf("%s %s: bucket %s is in region %s: set AWS_DEFAULT_REGION=%s",
				op, uri, bucket, region, region) + tag, err: err},
			region: region,
		})
	case code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" || status == http.StatusMovedPermanently:
		return perm("%s %s at %s: wrong region or endpoint: set AWS_DEFAULT_REGION to the bucket's region", op, uri, c.where)
	case code == "InvalidObjectState":
		return perm("%s %s: the object is archived (Glacier or Deep Archive): restore it before fetching", op, uri)
	case status == http.StatusForbidden && c.anonymous:
		return perm("%s %s: access denied at %s: the bucket does not allow anonymous reads; unset awsAnonymousCredential and provide credentials",
			op, uri, c.where)
	case status == http.StatusForbidden:
		return perm("%s %s: access denied at %s: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and that they may read this bucket (credentials from %s)",
			op, uri, c.where, c.credSource)
	case status == http.StatusUnauthorized:
		return perm("%s %s: not authenticated at %s: check the credentials (from %s)", op, uri, c.where, c.credSource)
	case status == http.StatusNotFound:
		return perm("%s %s: not found at %s", op, uri, c.where)
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		if d, ok := retryAfter(hdr); ok {
			return engine.RetryAfter(fmt.Errorf("%s %s at %s: %w", op, uri, c.where, err), d)
		}
		return fmt.Errorf("%s %s at %s: %w", op, uri, c.where, err)
	case status == http.StatusRequestTimeout:
		return fmt.Errorf("%s %s at %s: %w", op, uri, c.where, err)
	case status >= 400 && status < 500:
		return perm("%s %s: request rejected by %s", op, uri, c.where)
	}
	return fmt.Errorf("%s %s at %s: %w", op, uri, c.where, err)
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header) (time.Duration, bool) {
	if h == nil {
		return 0, false
	}
	return engine.ParseRetryAfter(h.Get("Retry-After"), time.Now())
}

// wrongRegion reports a redirect (301, 307, or 400 for HEAD, which has no
// body to carry a code) that names another region for the bucket.
func wrongRegion(status int, hdr http.Header, region string) bool {
	if hdr == nil || hdr.Get("X-Amz-Bucket-Region") == "" || hdr.Get("X-Amz-Bucket-Region") == region {
		return false
	}
	return status == http.StatusMovedPermanently || status == http.StatusTemporaryRedirect || status == http.StatusBadRequest
}

// isNotFound reports a missing key (or, for HEAD, a missing bucket).
func isNotFound(err error) bool {
	status, code, _ := apiError(err)
	return status == http.StatusNotFound || code == "NoSuchKey" || code == "NotFound"
}

// isForbidden reports a 403, which S3 also returns for a missing key when
// the caller may not list the bucket.
func isForbidden(err error) bool {
	status, _, _ := apiError(err)
	return status == http.StatusForbidden
}
