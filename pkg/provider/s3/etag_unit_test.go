package s3

import (
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

const multiETag = "56feaaccbd069084b746e10596b1f67a-3"

func TestETagParts(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    awss3.HeadObjectOutput
		ok   bool
	}{
		{"multipart", awss3.HeadObjectOutput{ETag: aws.String(`"` + multiETag + `"`)}, true},
		{"SSE-S3 keeps it", awss3.HeadObjectOutput{ETag: aws.String(`"` + multiETag + `"`), ServerSideEncryption: types.ServerSideEncryptionAes256}, true},
		{"SSE-KMS", awss3.HeadObjectOutput{ETag: aws.String(`"` + multiETag + `"`), ServerSideEncryption: types.ServerSideEncryptionAwsKms}, false},
		{"DSSE-KMS", awss3.HeadObjectOutput{ETag: aws.String(`"` + multiETag + `"`), ServerSideEncryption: types.ServerSideEncryptionAwsKmsDsse}, false},
		{"SSE-C", awss3.HeadObjectOutput{ETag: aws.String(`"` + multiETag + `"`), SSECustomerAlgorithm: aws.String("AES256")}, false},
		{"SSE-C key only", awss3.HeadObjectOutput{ETag: aws.String(`"` + multiETag + `"`), SSECustomerKeyMD5: aws.String("k")}, false},
		{"single part", awss3.HeadObjectOutput{ETag: aws.String(`"` + helloMD5 + `"`)}, false},
		{"too many parts", awss3.HeadObjectOutput{ETag: aws.String(`"56feaaccbd069084b746e10596b1f67a-10001"`)}, false},
		{"zero parts", awss3.HeadObjectOutput{ETag: aws.String(`"56feaaccbd069084b746e10596b1f67a-0"`)}, false},
		{"leading zero", awss3.HeadObjectOutput{ETag: aws.String(`"56feaaccbd069084b746e10596b1f67a-03"`)}, false},
		{"short hex", awss3.HeadObjectOutput{ETag: aws.String(`"56feaacc-3"`)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := etagParts(&tc.h)
			require.Equal(t, tc.ok, ok)
			if ok {
				assert.True(t, v.Composite)
				assert.Equal(t, 3, v.Parts)
				assert.Equal(t, multiETag, v.String(), "String() renders the ETag itself")
				assert.Equal(t, "md5 of 3 parts (multipart ETag)", v.Kind())
			}
		})
	}
}

func TestMD5Chksum(t *testing.T) {
	sum := []byte{0x5d, 0x41, 0x40, 0x2a, 0xbc, 0x4b, 0x2a, 0x76, 0xb9, 0x71, 0x9d, 0x91, 0x10, 0x17, 0xc5, 0x92}
	v, ok := md5Chksum(&awss3.HeadObjectOutput{Metadata: map[string]string{"md5chksum": base64.StdEncoding.EncodeToString(sum)}})
	require.True(t, ok)
	assert.Equal(t, helloMD5, v.String())
	assert.Equal(t, "md5 (rclone md5chksum)", v.Kind())
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(sum[:8])} {
		_, ok := md5Chksum(&awss3.HeadObjectOutput{Metadata: map[string]string{"md5chksum": bad}})
		assert.False(t, ok, bad)
	}
}

func TestEqualParts(t *testing.T) {
	sizes := func(ps []engine.Part) []int64 {
		var out []int64
		for _, p := range ps {
			out = append(out, p.Size)
		}
		return out
	}
	ps, ok := equalParts(8, 3, 20)
	require.True(t, ok)
	assert.Equal(t, []int64{8, 8, 4}, sizes(ps))
	ps, ok = equalParts(8, 3, 24)
	require.True(t, ok)
	assert.Equal(t, []int64{8, 8, 8}, sizes(ps))
	ps, ok = equalParts(20, 1, 20)
	require.True(t, ok)
	assert.Equal(t, []int64{20}, sizes(ps))
	for _, tc := range [][3]int64{
		{8, 3, 16},                 // last part empty
		{8, 3, 25},                 // last part larger than the first
		{0, 3, 25},                 // no first part
		{30, 1, 20},                // first larger than the object
		{1 << 40, 10_000, 1 << 50}, // last part larger than the first: no overflow
		{1, 10_000, 9_999},
	} {
		_, ok := equalParts(tc[0], int(tc[1]), tc[2])
		assert.False(t, ok, "%v", tc)
	}
}
