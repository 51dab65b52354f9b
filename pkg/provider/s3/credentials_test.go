package s3_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// TestSharedProfileCredentials covers the credential chain: no keys in the
// environment, a named profile in a shared credentials file. The chain is
// the SDK's and reads the process environment, hence t.Setenv.
func TestSharedProfileCredentials(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "m/w.bin", []byte("from a profile"), "")

	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	require.NoError(t, os.WriteFile(creds, []byte("[si]\naws_access_key_id = "+m.AccessKey+
		"\naws_secret_access_key = "+m.SecretKey+"\n"), 0o600))
	for k, v := range map[string]string{
		"AWS_SHARED_CREDENTIALS_FILE": creds,
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_PROFILE":                 "si",
		"AWS_ACCESS_KEY_ID":           "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
		"AWS_ROLE_ARN": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CA_BUNDLE": "",
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	files, err := newProvider([]string{"AWS_ENDPOINT_URL=" + m.Endpoint, "AWS_PROFILE=si"}).Files(context.Background(), "s3://"+bucket+"/m")
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, []byte("from a profile"), readAll(t, files[0]))
}

func TestAnonymousPublicBucket(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "m/w.bin", []byte("public"), "")
	policy := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject","s3:ListBucket"],
	  "Resource":["arn:aws:s3:::` + bucket + `","arn:aws:s3:::` + bucket + `/*"]}]}`
	_, err := m.Client().PutBucketPolicy(context.Background(), &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(policy)})
	require.NoError(t, err)

	files, err := newProvider([]string{"AWS_ENDPOINT_URL=" + m.Endpoint, "awsAnonymousCredential=true"}).Files(context.Background(), "s3://"+bucket+"/m")
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, []byte("public"), readAll(t, files[0]))
}
