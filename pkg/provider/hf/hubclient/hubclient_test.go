package hubclient

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNextPage(t *testing.T) {
	base, _ := url.Parse("https://hub.example/api/models/o/m/tree/abc?recursive=true")
	h := http.Header{"Link": {`<https://hub.example/api/models/o/m/tree/abc?cursor=xyz&recursive=true>; rel="next", <https://hub.example/last>; rel="last"`}}
	u, err := NextPage(h, base)
	require.NoError(t, err)
	assert.Equal(t, "https://hub.example/api/models/o/m/tree/abc?cursor=xyz&recursive=true", u.String())
	u, err = NextPage(http.Header{"Link": {`</p2>; rel=next`}}, base)
	require.NoError(t, err)
	assert.Equal(t, "https://hub.example/p2", u.String(), "relative links resolve against the page")
	u, err = NextPage(http.Header{"Link": {`<https://hub.example/last>; rel="last"`}}, base)
	require.NoError(t, err)
	assert.Nil(t, u)
}

func TestCredentialsOnlyOnTheEndpointOrigin(t *testing.T) {
	ep, _ := url.Parse("https://huggingface.co")
	c := New(Config{Endpoint: ep})
	for raw, want := range map[string]bool{
		"https://huggingface.co/o/m/resolve/x/y":  true,
		"https://HuggingFace.co/api":              true,
		"https://cdn-lfs.huggingface.co/x":        false, // net/http would forward to a subdomain
		"http://huggingface.co/x":                 false,
		"https://huggingface.co:8443/x":           false,
		"https://cas-bridge.xethub.hf.co/xet/abc": false,
	} {
		u, _ := url.Parse(raw)
		assert.Equal(t, want, c.OnEndpoint(u), raw)
	}
}

func TestParseContentRange(t *testing.T) {
	s, e, total, ok := parseContentRange("bytes 10-19/100")
	assert.True(t, ok)
	assert.Equal(t, []int64{10, 19, 100}, []int64{s, e, total})
	_, _, total, ok = parseContentRange("bytes 0-0/*")
	assert.True(t, ok)
	assert.Equal(t, int64(-1), total)
	_, _, _, ok = parseContentRange("items 0-1/2")
	assert.False(t, ok)
}

func TestUnder(t *testing.T) {
	rel, ok := Under("onnx/model.onnx", "onnx")
	assert.True(t, ok)
	assert.Equal(t, "model.onnx", rel)
	_, ok = Under("onnx-int8/model.onnx", "onnx")
	assert.False(t, ok, "a folder, never a string prefix")
	assert.Equal(t, "a%20b/c%3Fd", EscapePath("a b/c?d"))
}
