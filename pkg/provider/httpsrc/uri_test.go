package httpsrc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTarget(t *testing.T) {
	sum := hexSHA([]byte("x"))
	tg, err := parseTarget("HTTPS://user:pw@Models.Example.com:8443/a/model%20v2.tar.gz?sig=abc#sha256=" + sum)
	require.NoError(t, err)
	assert.Equal(t, "model v2.tar.gz", tg.name)
	assert.Equal(t, "models.example.com", tg.host, "lower case, no port: KServe's <host>-headers")
	assert.Equal(t, "HTTPS://REDACTED@Models.Example.com:8443/a/model%20v2.tar.gz?REDACTED", tg.display, "no user info, query or fragment")
	assert.Equal(t, "https://Models.Example.com:8443/a/model%20v2.tar.gz", tg.key)
	assert.Equal(t, "sig=abc", tg.url.RawQuery, "the query is still sent")
	assert.Empty(t, tg.url.Fragment)
	require.Len(t, tg.expect, 1)
	assert.Equal(t, sum, tg.expect[0].String())

	for src, want := range map[string]string{
		"https://host/":                    "names no file",
		"https://host":                     "names no file",
		"https://github.com/org/model.git": "is a git repository",
		"https://gitlab.example/o/m.GIT/":  "is a git repository",
		"https://host/a/..":                "cannot be saved in DEST",
		"https://host/m.bin#md5=abc":       "only #sha256=HEX",
		"https://host/m.bin#sha256=xyz":    "want 64 hex digits",
		"ftp://host/m.bin":                 "want http(s)://host/path/file",
		"https://host/%zz?token=secret":    "cannot parse",
	} {
		_, err := parseTarget(src)
		require.Error(t, err, src)
		assert.Contains(t, err.Error(), want, src)
		assert.NotContains(t, err.Error(), "secret", src)
	}
}

func TestHeadersFor(t *testing.T) {
	env := map[string]string{
		"good.example-headers":  `{"Authorization": "Bearer t", "X-A": "b"}`,
		"bad.example-headers":   `Authorization: Bearer leaked`,
		"num.example-headers":   `{"X-N": 1}`,
		"crlf.example-headers":  `{"X-A": "a\r\nX-Evil: 1"}`,
		"empty.example-headers": `{}`,
	}
	getenv := func(k string) string { return env[k] }
	h, name, err := headersFor(getenv, "good.example")
	require.NoError(t, err)
	assert.Equal(t, "good.example-headers", name)
	assert.Equal(t, "Bearer t", h.Get("Authorization"))
	assert.Equal(t, "b", h.Get("X-A"))

	h, name, err = headersFor(getenv, "none.example")
	require.NoError(t, err)
	assert.Empty(t, h)
	assert.Empty(t, name)

	for _, host := range []string{"bad.example", "num.example", "crlf.example"} {
		_, _, err := headersFor(getenv, host)
		require.Error(t, err, host)
		assert.Contains(t, err.Error(), host+"-headers")
		assert.NotContains(t, err.Error(), "leaked")
	}
}

func TestParseContentRange(t *testing.T) {
	s, e, tot, ok := parseContentRange("bytes 10-19/100")
	assert.True(t, ok)
	assert.Equal(t, []int64{10, 19, 100}, []int64{s, e, tot})
	_, _, tot, ok = parseContentRange("bytes 0-0/*")
	assert.True(t, ok)
	assert.Equal(t, int64(-1), tot)
	for _, v := range []string{"", "bytes */100", "items 0-1/2", "bytes 5-1/10"} {
		_, _, _, ok := parseContentRange(v)
		assert.False(t, ok, v)
	}
}

func TestIdentityNamesURLAndVersionWithoutTheQuery(t *testing.T) {
	a, err := parseTarget("https://h/m.bin?sig=secret1")
	require.NoError(t, err)
	b, err := parseTarget("https://other/m.bin?sig=secret1")
	require.NoError(t, err)
	m := remote{etag: `"123-abc"`}
	assert.NotEqual(t, m.identity(a), m.identity(b), "the same ETag on two servers is two files")
	assert.Contains(t, m.identity(a), `https://h/m.bin?sha256:`)
	assert.NotContains(t, m.identity(a), "secret1", "the identity is stored on disk")
	assert.Empty(t, remote{}.identity(a), "no validator, no identity")
}
