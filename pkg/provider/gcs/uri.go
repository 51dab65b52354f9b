package gcs

import (
	"fmt"
	"strings"

	"github.com/storage-initializer/storage-initializer/internal/redact"
)

// location is a parsed gs:// URI.
type location struct {
	Bucket string
	// Object is the object name or folder the URI names, without leading
	// slashes; "" means the whole bucket.
	Object string
}

// parseURI splits gs://bucket/path. The path is taken literally (object
// names may hold '?', '#' or '%'); leading slashes are dropped, as KServe
// does.
func parseURI(src string) (location, error) {
	const scheme = "gs://"
	if len(src) < len(scheme) || !strings.EqualFold(src[:len(scheme)], scheme) {
		return location{}, fmt.Errorf("not a gs:// URI: %s", redact.URI(src))
	}
	bucket, object, _ := strings.Cut(src[len(scheme):], "/")
	if err := checkBucket(bucket); err != nil {
		return location{}, fmt.Errorf("invalid URI %s: %w", redact.URI(src), err)
	}
	return location{Bucket: bucket, Object: strings.TrimLeft(object, "/")}, nil
}

// checkBucket rejects names GCS never accepts (3-222 characters of
// lowercase letters, digits, '-', '_' and '.'), so a typo fails before any
// request. The name is not quoted: a URI with user info
// (gs://user:password@…) would otherwise leak it.
func checkBucket(b string) error {
	if b == "" {
		return fmt.Errorf("missing bucket name (want gs://BUCKET/PATH)")
	}
	if len(b) > 222 {
		return fmt.Errorf("bucket name is %d characters long", len(b))
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("the bucket name contains %q (GCS bucket names are lowercase letters, digits, '-', '_' and '.')", c)
		}
	}
	return nil
}

// String renders the location as a gs:// URI.
func (l location) String() string { return "gs://" + l.Bucket + "/" + l.Object }

// folderPrefix is the listing prefix of the folder the path names: exactly
// one trailing slash, so gs://b/model never matches model-hf/. The whole
// bucket has the empty prefix.
func (l location) folderPrefix() string {
	if l.Object == "" || strings.HasSuffix(l.Object, "/") {
		return l.Object
	}
	return l.Object + "/"
}

// objectURI names one object of the bucket in messages.
func (l location) objectURI(name string) string { return "gs://" + l.Bucket + "/" + name }
