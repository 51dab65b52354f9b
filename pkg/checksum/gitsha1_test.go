package checksum

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Known object ids from `git hash-object`.
func TestGitSHA1MatchesGitHashObject(t *testing.T) {
	for content, want := range map[string]string{
		"":              "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
		"hello world\n": "3b18e512dba79e4c8300dd08aeb37f8e728b8dad",
	} {
		h := GitSHA1.NewSized(int64(len(content)))
		h.Write([]byte(content))
		assert.Equal(t, want, hex.EncodeToString(h.Sum(nil)), "%q", content)
		h.Reset()
		h.Write([]byte(content))
		assert.Equal(t, want, hex.EncodeToString(h.Sum(nil)), "after Reset %q", content)
	}
	v, err := ParseHex(GitSHA1, "3b18e512dba79e4c8300dd08aeb37f8e728b8dad")
	assert.NoError(t, err)
	assert.Equal(t, "git-sha1", v.Kind())
	assert.Equal(t, "3b18e512dba79e4c8300dd08aeb37f8e728b8dad", v.String())
}

func TestStrengthPrefersSHA256OverGitSHA1(t *testing.T) {
	assert.Greater(t, Strength(Value{Algorithm: SHA256}), Strength(Value{Algorithm: GitSHA1}))
	assert.Greater(t, Strength(Value{Algorithm: GitSHA1}), Strength(Value{Algorithm: CRC64NVME}))
	// other algorithms are unaffected by NewSized
	assert.Equal(t, SHA256.New().Sum(nil), SHA256.NewSized(42).Sum(nil))
}
