package oci

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

const (
	testUser = "model-puller"
	testPass = "s3cr3t-p4ss"
)

// basicAuth requires HTTP basic auth for every request, as CNCF
// distribution does with htpasswd.
func basicAuth(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if u, p, ok := r.BasicAuth(); !ok || u != testUser || p != testPass {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	next.ServeHTTP(w, r)
}

func writeJSON(t testing.TB, p string, v any) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

func TestBasicAuthFromDockerConfigs(t *testing.T) {
	reg := newRegistry(t)
	reg.pushImage(t, "private/m", "v1", mtOCIImageConfig, reg.blob(t, "private/m", mtLayerGzip, gz(t, tarOf(t, f("models/w", "w"))), nil))
	reg.setWrap(basicAuth)
	src := "oci+fetch://" + reg.host + "/private/m:v1"
	dir := t.TempDir()
	b64 := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPass))

	_, _, err := fetch(t, newProvider(t, nil), src)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "KSERVE_OCI_DOCKER_CONFIG")

	for name, env := range map[string]map[string]string{
		"KSERVE_OCI_DOCKER_CONFIG file": {"KSERVE_OCI_DOCKER_CONFIG": writeJSON(t, filepath.Join(dir, "secret/config.json"),
			map[string]any{"auths": map[string]any{reg.host: map[string]string{"auth": b64}}})},
		"DOCKER_CONFIG folder, scheme and /v2/ in key": {"DOCKER_CONFIG": filepath.Dir(writeJSON(t, filepath.Join(dir, "docker/config.json"),
			map[string]any{"auths": map[string]any{"http://" + reg.host + "/v2/": map[string]string{"username": testUser, "password": testPass}}}))},
		"HOME, repository-scoped key": {"HOME": filepath.Dir(filepath.Dir(writeJSON(t, filepath.Join(dir, "home/.docker/config.json"),
			map[string]any{"auths": map[string]any{reg.host + "/private": map[string]string{"auth": b64}}})))},
		"KSERVE_OCI_DOCKER_CONFIG folder of a mounted dockerconfigjson secret": {"KSERVE_OCI_DOCKER_CONFIG": filepath.Dir(writeJSON(t,
			filepath.Join(dir, "mounted/.dockerconfigjson"), map[string]any{"auths": map[string]any{reg.host: map[string]string{"auth": b64}}}))},
		"REGISTRY_AUTH_FILE": {"REGISTRY_AUTH_FILE": writeJSON(t, filepath.Join(dir, "containers/auth.json"),
			map[string]any{"auths": map[string]any{reg.host: map[string]string{"auth": b64}}})},
		"first file without an entry is passed over": {
			"KSERVE_OCI_DOCKER_CONFIG": writeJSON(t, filepath.Join(dir, "other/config.json"), map[string]any{"auths": map[string]any{"quay.io": map[string]string{"auth": "eDp5"}}}),
			"REGISTRY_AUTH_FILE":       filepath.Join(dir, "containers/auth.json"),
		},
	} {
		t.Run(name, func(t *testing.T) {
			dest, _, err := fetch(t, newProvider(t, env), src)
			require.NoError(t, err)
			assert.Equal(t, []string{"f w w"}, tree(t, dest))
		})
	}

	bad := writeJSON(t, filepath.Join(dir, "bad/config.json"), map[string]any{"auths": map[string]any{
		reg.host: map[string]string{"username": testUser, "password": "wrong-" + testPass}}})
	_, _, err = fetch(t, newProvider(t, map[string]string{"KSERVE_OCI_DOCKER_CONFIG": bad}), src)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused the credentials from "+bad)
	assert.NotContains(t, err.Error(), testPass)

	_, _, err = fetch(t, newProvider(t, map[string]string{"KSERVE_OCI_DOCKER_CONFIG": filepath.Join(dir, "missing.json")}), src)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing.json")
}

func TestLookupKeys(t *testing.T) {
	cfg := &dockerConfig{Auths: map[string]dockerAuth{
		"https://index.docker.io/v1/": {Username: "hub"},
		"quay.io":                     {Username: "quay"},
		"quay.io/team":                {Username: "team"},
		"quay.io/team/special":        {Username: "special"},
		"registry.local:5000":         {Auth: base64.StdEncoding.EncodeToString([]byte("u:p:with:colons"))},
	}}
	for ref, want := range map[string]string{
		"library/ubuntu":              "hub",
		"docker.io/me/x":              "hub",
		"quay.io/other/x":             "quay",
		"quay.io/team/x":              "team",
		"quay.io/team/special/x":      "special",
		"quay.io/teamster/x":          "quay",
		"registry.local:5000/a/b":     "u",
		"registry.local:5001/a/b":     "",
		"ghcr.io/someone/model:1.0.0": "",
	} {
		r, err := name.ParseReference(ref)
		require.NoError(t, err)
		a, ok := cfg.lookup(r.Context())
		if want == "" {
			assert.False(t, ok, ref)
			continue
		}
		require.True(t, ok, ref)
		ac, err := a.Authorization()
		require.NoError(t, err)
		assert.Equal(t, want, ac.Username, ref)
		if want == "u" {
			assert.Equal(t, "p:with:colons", ac.Password)
		}
	}
}

func TestAnonymousWithoutConfig(t *testing.T) {
	c := defaults()
	c.getenv = func(string) string { return "" }
	r, _ := name.ParseReference("quay.io/a/b")
	a, from, err := c.authFor(r.Context(), zap.NewNop())
	require.NoError(t, err)
	assert.Equal(t, authn.Anonymous, a)
	assert.Empty(t, from)
}
