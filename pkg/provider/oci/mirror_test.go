package oci

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

func TestParseMirrors(t *testing.T) {
	ms, err := parseMirrors([]string{"mirror:5000", " docker.io=hub.local ", "", "Reg.Example:443=10.0.0.7:5000"})
	require.NoError(t, err)
	assert.Equal(t, []mirror{
		{registry: "", host: "mirror:5000"},
		{registry: "index.docker.io", host: "hub.local"},
		{registry: "Reg.Example:443", host: "10.0.0.7:5000"},
	}, ms)

	for _, bad := range [][]string{
		{"http://mirror:5000"}, {"mirror/path"}, {"=mirror"}, {"reg="}, {"a=b=c"}, {"mir ror"}, {"host:port:x"},
		{"m1", "m2"}, {"r=m1", "r=m2"}, {"docker.io=m1", "index.docker.io=m2"},
	} {
		_, err := parseMirrors(bad)
		assert.Error(t, err, "%q", bad)
	}
	_, err = parseMirrors([]string{"https://mirror.gcr.io"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "without scheme")
}

func TestMirrorFor(t *testing.T) {
	cfg := defaults()
	cfg.getenv = func(string) string { return "" }
	WithRegistryMirrors("127.0.0.1:5001", "ghcr.io=mirror.example.com", "docker.io=10.1.2.3")(&cfg)
	require.NoError(t, cfg.mirrorErr)

	ref := func(s string) name.Reference {
		r, err := name.ParseReference(s)
		require.NoError(t, err)
		return r
	}
	for _, tc := range []struct{ in, want, scheme string }{
		{"quay.io/org/model:v1", "127.0.0.1:5001/org/model:v1", "http"},
		{"quay.io/org/model@sha256:" + strings.Repeat("ab", 32), "127.0.0.1:5001/org/model@sha256:" + strings.Repeat("ab", 32), "http"},
		// The registry's own mirror wins over the one for every registry.
		{"ghcr.io/org/model:v1", "mirror.example.com/org/model:v1", "https"},
		{"ubuntu", "10.1.2.3/library/ubuntu:latest", "http"},
		{"docker.io/library/ubuntu:22.04", "10.1.2.3/library/ubuntu:22.04", "http"},
	} {
		m, ok := cfg.mirrorFor(ref(tc.in))
		require.True(t, ok, tc.in)
		assert.Equal(t, tc.want, m.Name(), tc.in)
		assert.Equal(t, tc.scheme, m.Context().Scheme(), tc.in)
	}
	_, ok := cfg.mirrorFor(ref("127.0.0.1:5001/org/model:v1"))
	assert.False(t, ok, "the mirror itself is not mirrored")

	// A public mirror is https unless marked insecure.
	WithInsecure("mirror.example.com")(&cfg)
	m, _ := cfg.mirrorFor(ref("ghcr.io/org/model:v1"))
	assert.Equal(t, "http", m.Context().Scheme())

	only, none := defaults(), defaults()
	WithRegistryMirrors("ghcr.io=m:5000")(&only)
	_, ok = only.mirrorFor(ref("quay.io/org/model:v1"))
	assert.False(t, ok, "a registry without a mirror is pulled directly")
	_, ok = none.mirrorFor(ref("quay.io/org/model:v1"))
	assert.False(t, ok)
}

// mirrorImage pushes the same small modelcar to each registry and returns
// its layer's digest and the manifest's.
func mirrorImage(t *testing.T, regs ...*testRegistry) (string, string) {
	var layer, manifest string
	for _, r := range regs {
		l := r.blob(t, "org/model", mtLayerGzip, gz(t, tarOf(t, d("models/"), f("models/w.bin", strings.Repeat("w", 5000)))), nil)
		layer, manifest = l.Digest, r.pushImage(t, "org/model", "v1", mtOCIImageConfig, l)
	}
	return layer, manifest
}

// observed returns a provider whose logs the test can read.
func observed(t *testing.T, opts ...Option) (testProvider, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	eng := engine.New(engine.WithConcurrency(4), engine.WithChunkSize(64<<10),
		engine.WithRetry(2, time.Millisecond, 5*time.Millisecond), engine.WithLogger(zap.New(core)))
	p := newWith(eng, append([]Option{WithGetenv(func(string) string { return "" })}, opts...)...)
	return p, logs
}

func TestMirrorServesThePull(t *testing.T) {
	origin, mir := newRegistry(t), newRegistry(t)
	layer, _ := mirrorImage(t, origin, mir)
	var mu sync.Mutex
	var ns []string
	mir.setWrap(func(w http.ResponseWriter, r *http.Request, h http.Handler) {
		mu.Lock()
		ns = append(ns, r.URL.Query().Get("ns"))
		mu.Unlock()
		h.ServeHTTP(w, r)
	})

	p, logs := observed(t, WithRegistryMirrors(origin.host+"="+mir.host))
	dest, _, err := fetch(t, p, "oci://"+origin.host+"/org/model:v1")
	require.NoError(t, err)
	assert.Equal(t, []string{"f w.bin " + strings.Repeat("w", 5000)}, tree(t, dest))
	assert.Positive(t, mir.blobGets(layer))
	assert.Zero(t, origin.blobGets(layer), "the layer came from the registry, not the mirror")
	mu.Lock()
	assert.NotEmpty(t, ns)
	for _, v := range ns {
		assert.Equal(t, origin.host, v, "every request to the mirror names the registry")
	}
	mu.Unlock()
	assert.Equal(t, 1, logs.FilterMessage("pulling through registry mirror").FilterField(zap.String("mirror", mir.host)).Len())
}

func TestMirrorFallsBackToTheRegistry(t *testing.T) {
	cases := map[string]func(t *testing.T) string{
		"mirror down": func(t *testing.T) string {
			dead := newRegistry(t)
			dead.srv.Close()
			return dead.host
		},
		"mirror without the image": func(t *testing.T) string { return newRegistry(t).host },
		"mirror failing": func(t *testing.T) string {
			bad := newRegistry(t)
			bad.setWrap(func(w http.ResponseWriter, r *http.Request, h http.Handler) {
				if strings.Contains(r.URL.Path, "/manifests/") {
					http.Error(w, "upstream timeout", http.StatusBadGateway)
					return
				}
				h.ServeHTTP(w, r)
			})
			return bad.host
		},
	}
	for what, mirrorHost := range cases {
		t.Run(what, func(t *testing.T) {
			origin := newRegistry(t)
			layer, _ := mirrorImage(t, origin)
			host := mirrorHost(t)
			p, logs := observed(t, WithRegistryMirrors(host))
			dest, _, err := fetch(t, p, "oci://"+origin.host+"/org/model:v1")
			require.NoError(t, err)
			assert.Len(t, tree(t, dest), 1)
			assert.Positive(t, origin.blobGets(layer))
			assert.Equal(t, 1, logs.FilterMessage("registry mirror failed, pulling from the registry itself").
				FilterField(zap.String("mirror", host)).Len(), "the fallback names the mirror")

			plan, err := p.Inspect(context.Background(), "oci://"+origin.host+"/org/model:v1")
			require.NoError(t, err, "Plan falls back too")
			assert.Equal(t, layer, plan.Layers[0].Digest)
		})
	}
}

func TestMirrorIsNotTrusted(t *testing.T) {
	t.Run("a corrupt layer fails the digest check", func(t *testing.T) {
		origin, mir := newRegistry(t), newRegistry(t)
		layer, _ := mirrorImage(t, origin, mir)
		mir.setWrap(corruptBlob(layer, 50))
		dest, _, err := fetch(t, newProvider(t, nil, WithRegistryMirrors(mir.host)), "oci://"+origin.host+"/org/model:v1")
		require.Error(t, err)
		assert.ErrorIs(t, err, engine.ErrBlobMismatch)
		assert.Contains(t, err.Error(), layer)
		for _, line := range tree(t, dest) {
			assert.Contains(t, line, engine.StateDir, "nothing committed from a corrupt mirror")
		}
	})

	t.Run("a digest reference is checked against the mirror's manifest", func(t *testing.T) {
		origin, mir := newRegistry(t), newRegistry(t)
		_, want := mirrorImage(t, origin)
		// The mirror answers the digest with another image's manifest.
		other := mir.pushImage(t, "org/model", "other", mtOCIImageConfig,
			mir.blob(t, "org/model", mtLayerGzip, gz(t, tarOf(t, f("models/x", "x"))), nil))
		require.NotEqual(t, want, other)
		mir.setWrap(func(w http.ResponseWriter, r *http.Request, h http.Handler) {
			r.URL.Path = strings.Replace(r.URL.Path, want, other, 1)
			h.ServeHTTP(w, r)
		})
		_, err := newProvider(t, nil, WithRegistryMirrors(mir.host)).Inspect(context.Background(), "oci://"+origin.host+"/org/model@"+want)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "registry mirror "+mir.host)
		assert.Contains(t, err.Error(), want)
	})
}

func TestMirrorInvalidSpec(t *testing.T) {
	origin := newRegistry(t)
	mirrorImage(t, origin)
	_, _, err := fetch(t, newProvider(t, nil, WithRegistryMirrors("http://mirror")), "oci://"+origin.host+"/org/model:v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `invalid registry mirror "http://mirror"`)
}
