package pvc

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseManifestForms(t *testing.T) {
	a, b, c, d := sha("a"), sha("b"), sha("c"), sha("d")
	in := "# made by sha256sum\n" +
		a + "  model.bin\n" +
		strings.ToUpper(b) + " *./sub/tok.json\r\n" +
		"\n" +
		"SHA256 (sub/x y.txt) = " + c + "\n" +
		`\` + d + `  odd\\name` + "\n"
	got, err := parseManifest(strings.NewReader(in))
	require.NoError(t, err)
	require.Len(t, got, 4)
	assert.Equal(t, a, got["model.bin"].String())
	assert.Equal(t, b, got["sub/tok.json"].String())
	assert.Equal(t, c, got["sub/x y.txt"].String())
	assert.Equal(t, d, got[`odd\name`].String())
}

func TestParseManifestRejectsBadLines(t *testing.T) {
	for name, in := range map[string]string{
		"short hex":      "abcd  model.bin\n",
		"no separator":   sha("a") + "model.bin\n",
		"absolute":       sha("a") + "  /etc/passwd\n",
		"dotdot":         sha("a") + "  ../x\n",
		"conflict":       sha("a") + "  m\n" + sha("b") + "  m\n",
		"bsd unfinished": "SHA256 (m) " + sha("a") + "\n",
	} {
		_, err := parseManifest(strings.NewReader(in))
		assert.Error(t, err, name)
	}
	_, err := parseManifest(strings.NewReader("zz  m\n"))
	assert.ErrorContains(t, err, "line 1")
}
