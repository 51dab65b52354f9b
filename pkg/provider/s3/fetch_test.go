package s3_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// TestFetch runs the provider through the real engine: every file lands
// byte-identical, verified with the strongest checksum its object offers.
func TestFetch(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	want := seedModel(t, m, bucket)
	dest := t.TempDir()

	// Small chunks so multipart objects are fetched as several ranges.
	p := newProvider(m.Env(), engine.WithChunkSize(2*mib), engine.WithVerify(engine.VerifyAuto))
	rep, err := p.fetch(context.Background(), "s3://"+bucket+"/model", dest)
	require.NoError(t, err)
	require.Len(t, rep.Files, len(want))

	for rel, body := range want {
		got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(rel)))
		require.NoError(t, err, rel)
		assert.Equal(t, body, got, rel)
	}
	_, err = os.Stat(filepath.Join(dest, "not-me.bin"))
	assert.True(t, os.IsNotExist(err), "nothing of model-hf/ is fetched")

	verified := map[string]string{}
	for _, f := range rep.Files {
		verified[f.Path] = f.Verified
	}
	assert.Equal(t, "crc32c (composite of 3 parts)", verified["multi/composite-crc32c"])
	assert.Equal(t, "sha256 (composite of 3 parts)", verified["multi/composite-sha256"])
	assert.Equal(t, "crc64nvme", verified["multi/full-crc64nvme"])
	assert.Equal(t, "sha256", verified["sub/dir/sha256.bin"])
	assert.Equal(t, "md5", verified["config.json"])
	assert.Equal(t, "md5 of 3 parts (multipart ETag)", verified["multi/none"])

	// A second run finds everything present and fetches nothing.
	rep, err = p.fetch(context.Background(), "s3://"+bucket+"/model", dest)
	require.NoError(t, err)
	assert.Zero(t, rep.Fetched)
}

// TestFetchDetectsCorruption serves one object through a proxy that flips
// a bit: the engine's checksum catches it and nothing lands under its name.
func TestFetchDetectsCorruption(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "m/good.bin", testenv.Random(10_000, 1), "")
	m.Put(t, bucket, "m/bad.bin", testenv.Random(10_000, 2), types.ChecksumAlgorithmCrc64nvme)
	proxy := m.CorruptingProxy(t, "/m/bad.bin")
	dest := t.TempDir()

	p := newProvider([]string{"AWS_ENDPOINT_URL=" + proxy, "AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey},
		engine.WithRetry(2, 1, 1))
	_, err := p.fetch(context.Background(), "s3://"+bucket+"/m", dest)
	require.Error(t, err)
	t.Log(err)
	assert.Contains(t, err.Error(), "bad.bin")
	assert.Contains(t, err.Error(), "crc64nvme")
	_, statErr := os.Stat(filepath.Join(dest, "bad.bin"))
	assert.True(t, os.IsNotExist(statErr), "a corrupted file never gets its final name")
}
