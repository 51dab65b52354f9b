package s3

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

func TestKeyToRel(t *testing.T) {
	for _, tc := range []struct{ prefix, key, want string }{
		{"model/", "model/config.json", "config.json"},
		{"model/", "model/a/b/w.bin", "a/b/w.bin"},
		{"", "top.txt", "top.txt"},
		{"", "a/./b", "a/b"},
		{"m/", "m/a//b", "a/b"},
	} {
		got, err := keyToRel(tc.prefix, tc.key)
		require.NoError(t, err, tc.key)
		assert.Equal(t, tc.want, got, tc.key)
	}
}

func TestKeyToRelRejectsHostileKeys(t *testing.T) {
	for _, tc := range []struct{ prefix, key string }{
		{"model/", "model/../../etc/passwd"},
		{"model/", "model//etc/passwd"},
		{"", "/etc/passwd"},
		{"", "a/../../x"},
		{"", engine.StateDir + "/journal"},
		{"m/", "m/."},
	} {
		_, err := keyToRel(tc.prefix, tc.key)
		require.Error(t, err, tc.key)
		assert.ErrorIs(t, err, engine.ErrUnsafePath)
		assert.True(t, engine.IsPermanent(err))
		assert.Contains(t, err.Error(), `"`+tc.key+`"`, "the error names the key")
	}
}

func TestCheckCollisions(t *testing.T) {
	loc := location{Bucket: "b", Key: "m"}
	require.NoError(t, checkCollisions(loc, []listed{{key: "m/a", rel: "a"}, {key: "m/a-b/c", rel: "a-b/c"}, {key: "m/b/c", rel: "b/c"}}))

	err := checkCollisions(loc, []listed{{key: "m/a/b", rel: "a/b"}, {key: "m/a//b", rel: "a/b"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "s3://b/m/a//b")
	assert.Contains(t, err.Error(), "both be saved as a/b")

	err = checkCollisions(loc, []listed{{key: "m/a", rel: "a"}, {key: "m/a/x/y", rel: "a/x/y"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "s3://b/m/a would be saved as file a")
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }
