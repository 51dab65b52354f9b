package faultproxy

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// TestSignedRequestsThroughTheProxy proves SigV4 survives the proxy: the
// client signs for the proxy's address and MinIO accepts it, and a fault
// rule applies to the signed GET.
func TestSignedRequestsThroughTheProxy(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	data := testenv.Random(3<<20, 7)
	m.Put(t, bucket, "obj.bin", data, "")
	p, url := Start(t, m.Endpoint, Config{Rules: []Rule{{Kind: Flip, At: 12345, Times: 1}}})
	via := testenv.MinIOServer{Endpoint: url, AccessKey: m.AccessKey, SecretKey: m.SecretKey}
	ctx := context.Background()
	read := func() []byte {
		out, err := via.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj.bin")})
		require.NoError(t, err)
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		require.NoError(t, err)
		return b
	}
	first := read()
	assert.False(t, bytes.Equal(data, first), "the flip reached the client")
	assert.Equal(t, data[12345]^1, first[12345])
	assert.Equal(t, data, read(), "Times: 1 faults only the first GET")
	s := p.Stats()
	assert.Equal(t, int64(2), s.ObjectReads)
	assert.Equal(t, int64(2*len(data)), s.ObjectBytes)
}
