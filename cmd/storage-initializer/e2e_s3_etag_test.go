package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// TestE2ES3MultipartETagStrict: shards uploaded in parts without any
// checksum (aws-cli v1, boto3) are verified by their multipart ETags, which
// --verify=strict accepts; a bit flipped on the wire fails the run after
// one refetch, naming the file and both values.
func TestE2ES3MultipartETagStrict(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	const mib = 1 << 20
	shard := testenv.Random(3*5*mib+999, 41)
	parts := [][]byte{shard[:5*mib], shard[5*mib : 10*mib], shard[10*mib : 15*mib], shard[15*mib:]}
	m.PutMultipart(t, bucket, "model/model-00001.safetensors", parts, "", "")
	m.Put(t, bucket, "model/config.json", []byte(`{"a":1}`), "")
	dest := t.TempDir()
	sum := filepath.Join(t.TempDir(), "summary.json")

	env := append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+m.Endpoint)
	_, stderr, code := runSI(t, env, "--verify=strict", "--summary-json", sum, "s3://"+bucket+"/model", dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, map[string][]byte{"model-00001.safetensors": shard, "config.json": []byte(`{"a":1}`)})
	verified := map[string]string{}
	for _, f := range s3e2eReadSummary(t, sum).Files {
		verified[f.Path] = f.Verified
	}
	assert.Equal(t, map[string]string{"model-00001.safetensors": "md5 of 4 parts (multipart ETag)", "config.json": "md5"}, verified)

	proxy := m.CorruptingProxy(t, "/model/model-00001.safetensors")
	env = append(s3e2eKeys(m), "AWS_ENDPOINT_URL="+proxy)
	_, stderr, code = runSI(t, env, "--verify=strict", "s3://"+bucket+"/model", t.TempDir())
	assert.Equal(t, 1, code, stderr)
	assert.Contains(t, stderr, "checksum mismatch for model-00001.safetensors: md5 of 4 parts (multipart ETag) expected")
	assert.Contains(t, stderr, "after one refetch")
}
