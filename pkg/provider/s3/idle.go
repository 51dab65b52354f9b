package s3

import (
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/storage-initializer/storage-initializer/pkg/idletimeout"
)

// idleTimeoutClient applies S3_READ_TIMEOUT the way boto3 (KServe's
// initializer) does: as a limit on how long a response may send nothing,
// headers and body alike. Planning runs outside the engine's --read-timeout
// watchdog, so without it a listing or HEAD that stalls mid-body would hang.
type idleTimeoutClient struct {
	next    aws.HTTPClient
	timeout time.Duration
}

func withIdleTimeout(next aws.HTTPClient, d time.Duration) aws.HTTPClient {
	if d <= 0 {
		return next
	}
	return idleTimeoutClient{next: next, timeout: d}
}

// Do implements aws.HTTPClient.
func (c idleTimeoutClient) Do(req *http.Request) (*http.Response, error) {
	return idletimeout.Do(req, c.timeout, "S3_READ_TIMEOUT", c.next.Do)
}
