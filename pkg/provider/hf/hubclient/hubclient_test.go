package hubclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
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
	c, err := New(provider.Settings{}, Config{Endpoint: ep})
	require.NoError(t, err)
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

// A redirect loop (no real hub answers one) ends at httpx's bound, for
// good, and the hops that leave the hub and come back carry no token.
func TestRedirectsFollowTheOneRedirectPolicy(t *testing.T) {
	var mu sync.Mutex
	var hops int
	var authBack []string
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		hops++
		if r.URL.Path == "/back" {
			authBack = append(authBack, r.Header.Get("Authorization"))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Redirect(w, r, "/loop", http.StatusFound)
	}))
	defer hub.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Empty(t, r.Header.Get("Authorization"), "no token off the hub")
		http.Redirect(w, r, hub.URL+"/back", http.StatusFound)
	}))
	defer other.Close()
	ep, _ := url.Parse(hub.URL)
	c, err := New(provider.Settings{}, Config{Endpoint: ep, Auth: func(h http.Header) { h.Set("Authorization", "Bearer s3cret") }})
	require.NoError(t, err)

	f := &File{Client: c, Origin: c.URL("/loop", nil), Size: 1, Name: "hub://loop",
		Classify: func(r *http.Response) error { return fmt.Errorf("HTTP %d", r.StatusCode) }}
	err = f.Load(context.Background(), 1, 0, func(io.Reader) error { return nil })
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err), "retrying cannot end a loop: %v", err)
	assert.Contains(t, err.Error(), "more than 10 redirects")
	assert.Equal(t, 1+httpx.MaxRedirects, hops, "the first request and ten redirects")

	away, _ := url.Parse(other.URL + "/away")
	resp, at, err := c.follow(context.Background(), http.MethodGet, away, nil, nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "/back", at.Path)
	assert.Equal(t, []string{""}, authBack, "a chain that left the hub does not get the token back")
}
