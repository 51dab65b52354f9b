package hf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadTokenOrderAsHuggingFaceHub(t *testing.T) {
	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".cache", "huggingface"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".cache", "huggingface", "token"), []byte(" file-token\r\n"), 0o600))
	custom := filepath.Join(t.TempDir(), "tok")
	require.NoError(t, os.WriteFile(custom, []byte("path-token\n"), 0o600))

	for _, tc := range []struct {
		env        map[string]string
		want, from string
	}{
		{map[string]string{"HF_TOKEN": "a", "HUGGING_FACE_HUB_TOKEN": "b"}, "a", "HF_TOKEN"},
		{map[string]string{"HUGGING_FACE_HUB_TOKEN": "b"}, "b", "HUGGING_FACE_HUB_TOKEN"},
		{map[string]string{}, "file-token", "token file " + filepath.Join(home, ".cache", "huggingface", "token")},
		{map[string]string{"HF_TOKEN_PATH": custom}, "path-token", "token file " + custom},
		{map[string]string{"XDG_CACHE_HOME": t.TempDir()}, "", ""},
		{map[string]string{"HF_TOKEN": "a", "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1"}, "", ""},
	} {
		tc.env["HOME"] = home
		tok, err := readToken(func(k string) string { return tc.env[k] })
		require.NoError(t, err)
		assert.Equal(t, tc.want, tok.value, "%v", tc.env)
		assert.Equal(t, tc.from, tok.source, "%v", tc.env)
	}
}
