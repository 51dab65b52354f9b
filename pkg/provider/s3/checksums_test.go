package s3

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// Values MinIO returned for real objects (see the integration tests).
const (
	crc32cComposite = "GMHmdw==-3"
	sha256Full      = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
	crc64Full       = "GlXnJsVu3IU="
	helloMD5        = "5d41402abc4b2a76b9719d911017c592"
)

func TestObjectSumsFullObject(t *testing.T) {
	full, comp, skipped := objectSums(&awss3.HeadObjectOutput{
		ChecksumType:      types.ChecksumTypeFullObject,
		ChecksumCRC64NVME: aws.String(crc64Full),
		ChecksumSHA256:    aws.String(sha256Full),
		ETag:              aws.String(`"` + helloMD5 + `"`),
	})
	require.Empty(t, skipped)
	assert.Nil(t, comp)
	require.Len(t, full, 2)
	assert.Equal(t, checksum.SHA256, full[0].Algorithm, "strongest first")
	assert.Equal(t, sha256Full, base64Of(full[0]))
	assert.Equal(t, checksum.CRC64NVME, full[1].Algorithm)
	assert.False(t, full[1].Composite)
}

func TestObjectSumsComposite(t *testing.T) {
	full, comp, skipped := objectSums(&awss3.HeadObjectOutput{
		ChecksumType:   types.ChecksumTypeComposite,
		ChecksumCRC32C: aws.String(crc32cComposite),
		ETag:           aws.String(`"56feaaccbd069084b746e10596b1f67a-3"`),
	})
	require.Empty(t, skipped)
	assert.Empty(t, full)
	require.NotNil(t, comp)
	assert.Equal(t, checksum.CRC32C, comp.Algorithm)
	assert.True(t, comp.Composite)
	assert.Equal(t, 3, comp.Parts)
}

func TestObjectSumsSkipsBadValues(t *testing.T) {
	full, comp, skipped := objectSums(&awss3.HeadObjectOutput{
		ChecksumType:   types.ChecksumTypeComposite,
		ChecksumSHA256: aws.String(sha256Full), // composite type but no -N
		ChecksumCRC32:  aws.String("not base64!"),
	})
	assert.Empty(t, full)
	assert.Nil(t, comp)
	assert.Len(t, skipped, 2)
}

func TestETagMD5(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    awss3.HeadObjectOutput
		ok   bool
	}{
		{"single part", awss3.HeadObjectOutput{ETag: aws.String(`"` + helloMD5 + `"`)}, true},
		{"upper case", awss3.HeadObjectOutput{ETag: aws.String(`"5D41402ABC4B2A76B9719D911017C592"`)}, true},
		{"SSE-S3 keeps MD5", awss3.HeadObjectOutput{ETag: aws.String(`"` + helloMD5 + `"`), ServerSideEncryption: types.ServerSideEncryptionAes256}, true},
		{"multipart", awss3.HeadObjectOutput{ETag: aws.String(`"56feaaccbd069084b746e10596b1f67a-3"`)}, false},
		{"SSE-KMS", awss3.HeadObjectOutput{ETag: aws.String(`"` + helloMD5 + `"`), ServerSideEncryption: types.ServerSideEncryptionAwsKms}, false},
		{"SSE-C", awss3.HeadObjectOutput{ETag: aws.String(`"` + helloMD5 + `"`), SSECustomerAlgorithm: aws.String("AES256")}, false},
		{"opaque", awss3.HeadObjectOutput{ETag: aws.String(`"abc"`)}, false},
		{"missing", awss3.HeadObjectOutput{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := etagMD5(&tc.h)
			assert.Equal(t, tc.ok, ok)
			if ok {
				assert.Equal(t, checksum.MD5, v.Algorithm)
				assert.Equal(t, helloMD5, v.String())
			}
		})
	}
}

func base64Of(v checksum.Value) string {
	v.Algorithm = checksum.CRC32 // String renders CRCs as base64
	return v.String()
}
