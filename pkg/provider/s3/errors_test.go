package s3

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// sdkError builds the error the SDK returns for an HTTP error response.
func sdkError(status int, code string, hdr http.Header) error {
	if hdr == nil {
		hdr = http.Header{}
	}
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: hdr}},
		Err:      &smithy.GenericAPIError{Code: code, Message: "server says no"},
	}}
}

func TestDescribe(t *testing.T) {
	c := &client{where: "http://127.0.0.1:9000", credSource: "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"}
	for _, tc := range []struct {
		status    int
		code      string
		permanent bool
		want      string
	}{
		{404, "NoSuchBucket", true, "bucket bkt does not exist at http://127.0.0.1:9000"},
		{403, "InvalidAccessKeyId", true, "check AWS_ACCESS_KEY_ID"},
		{403, "SignatureDoesNotMatch", true, "check AWS_SECRET_ACCESS_KEY"},
		{403, "AccessDenied", true, "access denied at http://127.0.0.1:9000: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"},
		{403, "Forbidden", true, "access denied"},
		{404, "NotFound", true, "not found at"},
		{400, "InvalidArgument", true, "request rejected"},
		{500, "InternalError", false, "at http://127.0.0.1:9000"},
		{503, "SlowDown", false, "SlowDown"},
		{408, "RequestTimeout", false, "RequestTimeout"},
	} {
		err := c.describe(sdkError(tc.status, tc.code, nil), "list", "s3://bkt/m", "bkt")
		require.Error(t, err)
		assert.Equal(t, tc.permanent, engine.IsPermanent(err), tc.code)
		assert.Contains(t, err.Error(), tc.want, tc.code)
		var re *awshttp.ResponseError
		assert.True(t, errors.As(err, &re), "the SDK error stays reachable")
	}
}

func TestDescribeRegionRedirect(t *testing.T) {
	c := &client{where: "AWS S3 (us-east-1)", region: "us-east-1"}
	err := c.describe(sdkError(301, "PermanentRedirect", http.Header{"X-Amz-Bucket-Region": {"eu-central-1"}}), "list", "s3://b/", "b")
	assert.True(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "set AWS_DEFAULT_REGION=eu-central-1")
	var re *regionError
	require.True(t, errors.As(err, &re), "Plan can follow the redirect")
	assert.Equal(t, "eu-central-1", re.region)

	err = c.describe(sdkError(400, "BadRequest", http.Header{"X-Amz-Bucket-Region": {"eu-central-1"}}), "read", "s3://b/k", "b")
	require.True(t, errors.As(err, &re), "a HEAD in the wrong region is a 400 without code")

	err = c.describe(sdkError(400, "BadRequest", http.Header{"X-Amz-Bucket-Region": {"us-east-1"}}), "read", "s3://b/k", "b")
	require.False(t, errors.As(err, &re), "the header naming our own region is no redirect")

	err = c.describe(sdkError(403, "InvalidObjectState", nil), "read", "s3://b/k", "b")
	assert.Contains(t, err.Error(), "restore it before fetching")
}

func TestDescribeRetryAfter(t *testing.T) {
	c := &client{where: "x"}
	err := c.describe(sdkError(503, "SlowDown", http.Header{"Retry-After": {"7"}}), "read", "s3://b/k", "b")
	assert.False(t, engine.IsPermanent(err))
	d, ok := retryAfter(http.Header{"Retry-After": {"7"}})
	assert.True(t, ok)
	assert.Equal(t, 7*time.Second, d)
	_, ok = retryAfter(http.Header{"Retry-After": {"later"}})
	assert.False(t, ok)
	d, ok = retryAfter(http.Header{"Retry-After": {time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)}})
	assert.True(t, ok)
	assert.Zero(t, d, "a date in the past means now")
}

func TestLoaderDescribe(t *testing.T) {
	l := &loader{c: &client{where: "x"}, obj: objectRef{uri: "s3://b/k", etag: `"abc"`}, size: 10}
	for _, tc := range []struct {
		status int
		code   string
		want   string
	}{
		{412, "PreconditionFailed", `object s3://b/k changed during download (ETag "abc" was planned)`},
		{416, "InvalidRange", "shorter than the 10 bytes planned"},
		{404, "NoSuchKey", "deleted during download"},
	} {
		err := l.describe(sdkError(tc.status, tc.code, nil))
		assert.True(t, engine.IsPermanent(err), tc.code)
		assert.Contains(t, err.Error(), tc.want)
	}
	assert.ErrorIs(t, l.describe(context.Canceled), context.Canceled)
	assert.False(t, engine.IsPermanent(l.describe(errors.New("connection reset by peer"))))
}
