package testenv

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// RegistryServers are the CNCF distribution registries hack/registry.sh
// starts: Plain is anonymous, Auth requires User and Pass (basic auth).
// Both are host:port on loopback, served over plain http.
type RegistryServers struct {
	Plain, Auth string
	User, Pass  string
}

// Registry returns the registries named by SI_REGISTRY, SI_REGISTRY_AUTH,
// SI_REGISTRY_USER and SI_REGISTRY_PASS. Without them the test is skipped,
// or fails when SI_REQUIRE_SERVERS=1 (CI must not pass by skipping).
func Registry(t testing.TB) RegistryServers {
	t.Helper()
	r := RegistryServers{
		Plain: os.Getenv("SI_REGISTRY"),
		Auth:  os.Getenv("SI_REGISTRY_AUTH"),
		User:  os.Getenv("SI_REGISTRY_USER"),
		Pass:  os.Getenv("SI_REGISTRY_PASS"),
	}
	if r.Plain == "" || r.Auth == "" || r.User == "" || r.Pass == "" {
		if os.Getenv("SI_REQUIRE_SERVERS") == "1" {
			t.Fatal("SI_REGISTRY* not set but SI_REQUIRE_SERVERS=1: start the registries with hack/registry.sh start DIR and source DIR/registry.env")
		}
		t.Skip("no registry (SI_REGISTRY unset): run make test")
	}
	return r
}

// DockerConfig writes a docker config.json holding the credentials of the
// authenticated registry (as a Kubernetes pull secret would) and returns
// its path, for KSERVE_OCI_DOCKER_CONFIG or DOCKER_CONFIG (its folder).
func (r RegistryServers) DockerConfig(t testing.TB) string {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Pass))
	data, err := json.Marshal(map[string]any{"auths": map[string]any{r.Auth: map[string]string{"auth": auth}}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
