package oci

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSelfSignedRegistry(t *testing.T) {
	plain := newRegistry(t) // seeded over http, served again over TLS below
	plain.pushImage(t, "r", "v1", mtOCIImageConfig, plain.blob(t, "r", mtLayerGzip, gz(t, tarOf(t, f("models/w", "tls"))), nil))
	srv := httptest.NewTLSServer(plain.inner)
	t.Cleanup(srv.Close)
	_ = registry.New // the same in-memory registry, now behind a self-signed certificate
	host := strings.TrimPrefix(srv.URL, "https://")
	src := "oci://" + host + "/r:v1"
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	_, _, err := fetch(t, newProvider(t, nil), src)
	require.Error(t, err, "an unknown CA must be refused")

	for name, p := range map[string]testProvider{
		"--ca-bundle":                  newProvider(t, nil, WithCABundle(caFile)),
		"SSL_CERT_FILE":                newProvider(t, map[string]string{"SSL_CERT_FILE": caFile}),
		"--insecure-registry":          newProvider(t, nil, WithInsecure(host)),
		"KSERVE_OCI_INSECURE_REGISTRY": newProvider(t, map[string]string{"KSERVE_OCI_INSECURE_REGISTRY": "true"}),
	} {
		t.Run(name, func(t *testing.T) {
			dest, _, err := fetch(t, p, src)
			require.NoError(t, err)
			assert.Equal(t, []string{"f w tls"}, tree(t, dest))
		})
	}

	_, _, err = fetch(t, newProvider(t, nil, WithCABundle(filepath.Join(t.TempDir(), "nope.pem"))), src)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope.pem")
}

func TestInsecureFor(t *testing.T) {
	c := defaults()
	env := map[string]string{}
	c.getenv = func(k string) string { return env[k] }
	assert.False(t, c.insecureFor("r.example:5000"))
	env["KSERVE_OCI_INSECURE_REGISTRY"] = "a.example, r.example:5000"
	assert.True(t, c.insecureFor("r.example:5000"))
	assert.False(t, c.insecureFor("b.example"))
	env["KSERVE_OCI_INSECURE_REGISTRY"] = "False"
	assert.False(t, c.insecureFor("r.example:5000"))
	WithInsecure()(&c)
	assert.True(t, c.insecureFor("anything"))
}

// A registry on https that redirects a manifest or a blob to plain http is
// refused (the redirect policy holds inside go-containerregistry's own
// clients too), and nothing is asked over plain http.
func TestRedirectToPlainHTTPIsRefused(t *testing.T) {
	for _, what := range []string{"/manifests/", "/blobs/"} {
		t.Run(strings.Trim(what, "/"), func(t *testing.T) {
			plain := newRegistry(t)
			plain.pushImage(t, "r", "v1", mtOCIImageConfig, plain.blob(t, "r", mtLayerGzip, gz(t, tarOf(t, f("models/w", "tls"))), nil))
			var downgraded atomic.Int64
			plain.setWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.URL.Query().Get("via") == "redirect" {
					downgraded.Add(1)
				}
				next.ServeHTTP(w, r)
			})
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, what) && r.Method == http.MethodGet {
					http.Redirect(w, r, plain.base+r.URL.Path+"?via=redirect", http.StatusTemporaryRedirect)
					return
				}
				plain.inner.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			caFile := filepath.Join(t.TempDir(), "ca.pem")
			require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

			_, _, err := fetch(t, newProvider(t, nil, WithCABundle(caFile)), "oci://"+strings.TrimPrefix(srv.URL, "https://")+"/r:v1")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "downgrades https to plain http")
			assert.Zero(t, downgraded.Load(), "a request went out over plain http")
		})
	}
}
