package s3

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		in           string
		bucket, key  string
		folderPrefix string
	}{
		{"s3://b/model", "b", "model", "model/"},
		{"s3://b/model/", "b", "model/", "model/"},
		{"s3://b/a/b/c.bin", "b", "a/b/c.bin", "a/b/c.bin/"},
		{"s3://b", "b", "", ""},
		{"s3://b/", "b", "", ""},
		{"s3://b//model", "b", "model", "model/"},
		{"S3://My_Bucket.v2/x", "My_Bucket.v2", "x", "x/"},
		{"s3://b/we?ird#key%20", "b", "we?ird#key%20", "we?ird#key%20/"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			loc, err := parseURI(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.bucket, loc.Bucket)
			assert.Equal(t, tc.key, loc.Key)
			assert.Equal(t, tc.folderPrefix, loc.folderPrefix())
		})
	}
}

func TestParseURIRejects(t *testing.T) {
	for in, want := range map[string]string{
		"s3://":           "missing bucket",
		"s3:///key":       "missing bucket",
		"gs://b/k":        "not an s3:// URI",
		"s3":              "not an s3:// URI",
		"s3://b@d/k":      `contains '@'`,
		"s3://host:90/k":  `contains ':'`,
		"s3://a b/model":  `contains ' '`,
		"/mnt/models/foo": "not an s3:// URI",
	} {
		_, err := parseURI(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestLocationString(t *testing.T) {
	assert.Equal(t, "s3://b/", location{Bucket: "b"}.String())
	assert.Equal(t, "s3://b/m/x", location{Bucket: "b", Key: "m/x"}.String())
	assert.Equal(t, "s3://b/k", location{Bucket: "b"}.objectURI("k"))
}
