package s3

import (
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// planRetryer is the SDK's standard retryer (which errors are retryable)
// with the run's policy for how long to wait: its backoff, or the server's
// Retry-After (seconds or an HTTP-date) when longer; the SDK's own ignores
// Retry-After.
type planRetryer struct {
	aws.RetryerV2
	set provider.Settings
}

func (r planRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	var after time.Duration
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		after, _ = retryAfter(re.Response.Header)
	}
	return r.set.Backoff(attempt, after), nil
}
