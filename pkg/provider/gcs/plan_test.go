package gcs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

func planClient(t *testing.T) *client {
	p := New(planSettings(), WithGetenv(envOf("STORAGE_EMULATOR_HOST=127.0.0.1:1")))
	c, err := p.newClient(t.Context())
	require.NoError(t, err)
	return c
}

// GCS stores no MD5 for composite objects, and an MD5 a server reports
// for one anyway is not trusted: CRC32C alone then.
func TestCompositeObjectsOfferNoMD5(t *testing.T) {
	c := planClient(t)
	loc := location{Bucket: "b", Object: "m"}
	md5 := make([]byte, 16)
	f := c.file(loc, &objectAttrs{Name: "m/x", Size: 3, Generation: 7, CRC32C: []byte{1, 2, 3, 4}, MD5: md5, ComponentCount: 2}, "x")
	require.Len(t, f.Expect, 1)
	assert.Equal(t, checksum.Value{Algorithm: checksum.CRC32C, Sum: []byte{1, 2, 3, 4}}, f.Expect[0])
	assert.Equal(t, "http://127.0.0.1:1/storage/v1/ gs://b/m/x generation=7", f.Identity)

	f = c.file(loc, &objectAttrs{Name: "m/y", Size: 3, Generation: 8, CRC32C: []byte{0, 0, 0, 1}, MD5: md5}, "y")
	assert.Len(t, f.Expect, 2)
}

// Objects stored gzip-encoded are served decompressed, as KServe saves
// them; their length is unknown until read.
func TestGzipEncodedObjectsStream(t *testing.T) {
	c := planClient(t)
	f := c.file(location{Bucket: "b"}, &objectAttrs{Name: "x.json", Size: 30, Generation: 1, CRC32C: []byte{0, 0, 0, 1}, ContentEncoding: "gzip"}, "x.json")
	assert.True(t, f.Stream)
	assert.Equal(t, int64(-1), f.Size)
	assert.Empty(t, f.Expect, "stored checksums describe the compressed bytes")
}

func TestParseURI(t *testing.T) {
	for in, want := range map[string]location{
		"gs://b":          {Bucket: "b"},
		"gs://b/":         {Bucket: "b"},
		"gs://b/m/x.bin":  {Bucket: "b", Object: "m/x.bin"},
		"GS://b//m/":      {Bucket: "b", Object: "m/"},
		"gs://b/a?b#c%20": {Bucket: "b", Object: "a?b#c%20"},
	} {
		got, err := parseURI(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"gs://", "gs:///x", "gs://Upper/x", "s3://b/x"} {
		_, err := parseURI(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "model/", location{Bucket: "b", Object: "model"}.folderPrefix())
	assert.Equal(t, "", location{Bucket: "b"}.folderPrefix())
}

func TestURIErrorsNeverQuoteSecrets(t *testing.T) {
	for _, src := range []string{"gs://u:PASSWORD@b/%zz?SIGNATURE", "gs://PASSWORD@b/m"} {
		_, err := parseURI(src)
		require.Error(t, err, src)
		assert.NotContains(t, err.Error(), "PASSWORD")
		assert.NotContains(t, err.Error(), "SIGNATURE")
	}
}
