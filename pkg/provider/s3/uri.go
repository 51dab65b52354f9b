package s3

import (
	"fmt"
	"strings"

	"github.com/storage-initializer/storage-initializer/internal/redact"
)

// location is a parsed s3:// URI.
type location struct {
	Bucket string
	// Key is the object key or folder named by the URI, without leading
	// slashes; "" means the whole bucket.
	Key string
}

// parseURI splits s3://bucket/key. Everything after the bucket is taken
// literally: keys may contain '?', '#' or '%' and are not URL-decoded, so a
// key copied from `aws s3 ls` works as is. Leading slashes of the key are
// dropped like KServe does (s3://b//model is s3://b/model).
func parseURI(src string) (location, error) {
	const scheme = "s3://"
	if len(src) < len(scheme) || !strings.EqualFold(src[:len(scheme)], scheme) {
		return location{}, fmt.Errorf("not an s3:// URI: %q", redact.URI(src))
	}
	rest := src[len(scheme):]
	bucket, key, _ := strings.Cut(rest, "/")
	if strings.Contains(bucket, "@") {
		// The bucket error would echo "user:password@".
		return location{}, fmt.Errorf("invalid URI %q: bucket name contains '@': credentials do not belong in an s3:// URI, use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", redact.URI(src))
	}
	if err := checkBucket(bucket); err != nil {
		return location{}, fmt.Errorf("invalid URI %q: %w", redact.URI(src), err)
	}
	return location{Bucket: bucket, Key: strings.TrimLeft(key, "/")}, nil
}

// checkBucket rejects names no S3 implementation accepts, so a typo fails
// before any request. It is deliberately looser than AWS's naming rules
// (MinIO and Ceph accept legacy names with capitals and underscores).
func checkBucket(b string) error {
	if b == "" {
		return fmt.Errorf("missing bucket name (want s3://BUCKET/PATH)")
	}
	if len(b) > 255 {
		return fmt.Errorf("bucket name is %d characters long", len(b))
	}
	for _, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_'
		if !ok {
			return fmt.Errorf("bucket name %q contains %q", b, c)
		}
	}
	return nil
}

// String renders the location as an s3:// URI.
func (l location) String() string {
	if l.Key == "" {
		return "s3://" + l.Bucket + "/"
	}
	return "s3://" + l.Bucket + "/" + l.Key
}

// folderPrefix is the listing prefix for the folder the key names: the key
// with exactly one trailing slash, so s3://b/model never matches model-hf/.
// The whole bucket has the empty prefix.
func (l location) folderPrefix() string {
	if l.Key == "" || strings.HasSuffix(l.Key, "/") {
		return l.Key
	}
	return l.Key + "/"
}

// objectURI names one object of the bucket in messages.
func (l location) objectURI(key string) string { return "s3://" + l.Bucket + "/" + key }
