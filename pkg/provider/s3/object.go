package s3

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// objectRef names one object, and once planned, the exact version of it
// every download request must get.
type objectRef struct {
	bucket string
	key    string
	uri    string // s3://bucket/key, for messages
	// etag (quoted, as S3 sends it) and versionID are set at planning.
	etag      string
	versionID string
}

func newObjectRef(bucket, key string) objectRef {
	return objectRef{bucket: bucket, key: key, uri: "s3://" + bucket + "/" + key}
}

// head is a HeadObject request for the object asking for its checksums.
func (o objectRef) head() *awss3.HeadObjectInput {
	in := &awss3.HeadObjectInput{
		Bucket:       aws.String(o.bucket),
		Key:          aws.String(o.key),
		ChecksumMode: types.ChecksumModeEnabled,
	}
	if o.versionID != "" {
		in.VersionId = aws.String(o.versionID)
	}
	return in
}

// pin records the version a HeadObject response describes. "null" is the
// version id of objects written while versioning was off; some servers
// reject it in requests, and the ETag pins those objects anyway.
func (o *objectRef) pin(h *awss3.HeadObjectOutput) {
	o.etag = aws.ToString(h.ETag)
	if v := aws.ToString(h.VersionId); v != "" && v != "null" {
		o.versionID = v
	}
}

// identity names the exact source version for the engine's resume journal
// and node cache: the origin (endpoint, addressing, region; see
// client.origin), location, ETag and version id. Two endpoints answering
// with the same bucket, key and ETag are different origins: nothing fetched
// from one is ever served from the node cache for the other.
func (o objectRef) identity(origin string) string {
	id := origin + " " + o.uri + " etag=" + o.etag
	if o.versionID != "" {
		id += " version=" + o.versionID
	}
	return id
}
