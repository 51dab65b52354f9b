package filter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFilterFollowsFnmatch(t *testing.T) {
	keep, err := New([]string{"*.safetensors", "config.json", "tokenizer?.json"}, []string{"*/optimizer*", "[!a-z]*"})
	require.NoError(t, err)
	cases := map[string]bool{
		"model-00001.safetensors":    true,
		"sub/dir/model.safetensors":  true, // * crosses folders, like Python's fnmatch
		"config.json":                true,
		"tokenizer2.json":            true,
		"tokenizer22.json":           false,
		"pytorch_model.bin":          false,
		"ckpt/optimizer.safetensors": false,
		"1st.safetensors":            false,
		"sub/config.json":            false,
	}
	for p, want := range cases {
		assert.Equal(t, want, keep(p), p)
	}
	none, err := New(nil, []string{" "})
	require.NoError(t, err)
	assert.Nil(t, none, "no patterns: no filter")
}

func TestParseListAcceptsJSONOrCommas(t *testing.T) {
	l, err := ParseList(`["*.bin", "a,b"]`)
	require.NoError(t, err)
	assert.Equal(t, []string{"*.bin", "a,b"}, l)
	l, err = ParseList(" *.bin, *.json ,")
	require.NoError(t, err)
	assert.Equal(t, []string{"*.bin", "*.json"}, l)
	_, err = ParseList(`["unterminated`)
	assert.Error(t, err)
}
