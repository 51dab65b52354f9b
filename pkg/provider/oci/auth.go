package oci

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"go.uber.org/zap"
)

// dockerConfig is the part of a docker config.json (or a Kubernetes
// .dockerconfigjson pull secret, or podman's auth.json) we read.
type dockerConfig struct {
	Auths       map[string]dockerAuth `json:"auths"`
	CredsStore  string                `json:"credsStore"`
	CredHelpers map[string]string     `json:"credHelpers"`
}

type dockerAuth struct {
	Auth          string `json:"auth"` // base64 "user:password"
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// authSource is one place credentials may come from, in the order a pod's
// pull would look: KServe's mounted pull secret first.
type authSource struct {
	env      string // the variable that named it
	path     string
	explicit bool // named by the user: a missing or broken file is an error
}

func (c *config) authSources() []authSource {
	var out []authSource
	if p := c.getenv("KSERVE_OCI_DOCKER_CONFIG"); p != "" {
		out = append(out, authSource{"KSERVE_OCI_DOCKER_CONFIG", p, true})
	}
	if d := c.getenv("DOCKER_CONFIG"); d != "" {
		out = append(out, authSource{"DOCKER_CONFIG", filepath.Join(d, "config.json"), false})
	}
	if h := c.getenv("HOME"); h != "" {
		out = append(out, authSource{"HOME", filepath.Join(h, ".docker", "config.json"), false})
	}
	if p := c.getenv("REGISTRY_AUTH_FILE"); p != "" {
		out = append(out, authSource{"REGISTRY_AUTH_FILE", p, true})
	}
	return out
}

// authFor finds credentials for repo in the first config file that has an
// entry for its registry; anonymous when none does. It returns where the
// credentials came from (a path, for logs; never the secret).
func (c *config) authFor(repo name.Repository, log *zap.Logger) (authn.Authenticator, string, error) {
	for _, src := range c.authSources() {
		p := src.path
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			// A mounted pull secret: config.json, or the key of a
			// kubernetes.io/dockerconfigjson secret mounted as is.
			p = filepath.Join(src.path, "config.json")
			if _, err := os.Stat(p); err != nil {
				p = filepath.Join(src.path, ".dockerconfigjson")
			}
		}
		data, err := os.ReadFile(p)
		if err != nil {
			if src.explicit || !errors.Is(err, fs.ErrNotExist) {
				return nil, "", fmt.Errorf("read registry credentials %s (from %s): %w", p, src.env, err)
			}
			continue
		}
		cfg, err := parseDockerConfig(data)
		if err != nil {
			return nil, "", fmt.Errorf("parse registry credentials %s (from %s): %w", p, src.env, err)
		}
		if a, ok := cfg.lookup(repo); ok {
			return a, p, nil
		}
		if cfg.CredsStore != "" || len(cfg.CredHelpers) > 0 {
			log.Debug("docker credential helpers are not supported; entries in auths are", zap.String("config", p))
		}
	}
	return authn.Anonymous, "", nil
}

func parseDockerConfig(data []byte) (*dockerConfig, error) {
	var cfg dockerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		// encoding/json's messages quote no content: safe to show.
		return nil, err
	}
	if cfg.Auths == nil {
		// The legacy ~/.dockercfg layout: the auths map at the top level.
		var legacy map[string]dockerAuth
		if json.Unmarshal(data, &legacy) == nil {
			cfg.Auths = legacy
		}
	}
	return &cfg, nil
}

// lookup matches config keys the way docker and podman do: a key is a
// registry ("host:port", with or without scheme and /v1/ or /v2/ suffix) or
// a repository prefix ("host/namespace"); the longest match wins.
func (cfg *dockerConfig) lookup(repo name.Repository) (authn.Authenticator, bool) {
	want := canonicalHost(repo.RegistryStr()) + "/" + repo.RepositoryStr()
	best, bestLen := dockerAuth{}, -1
	for key, a := range cfg.Auths {
		k := normalizeKey(key)
		if k == "" || !(want == k || strings.HasPrefix(want, k+"/")) {
			continue
		}
		if len(k) > bestLen {
			best, bestLen = a, len(k)
		}
	}
	if bestLen < 0 {
		return nil, false
	}
	ac := authn.AuthConfig{Username: best.Username, Password: best.Password,
		IdentityToken: best.IdentityToken, RegistryToken: best.RegistryToken}
	if best.Auth != "" && ac.Username == "" {
		if raw, err := base64.StdEncoding.DecodeString(best.Auth); err == nil {
			ac.Username, ac.Password, _ = strings.Cut(string(raw), ":")
		}
	}
	if ac == (authn.AuthConfig{}) {
		return nil, false
	}
	return authn.FromConfig(ac), true
}

// normalizeKey strips a config key to host[/path].
func normalizeKey(key string) string {
	k := strings.TrimSpace(key)
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	k = strings.TrimSuffix(k, "/")
	for _, suffix := range []string{"/v1", "/v2"} {
		k = strings.TrimSuffix(k, suffix)
	}
	host, path, _ := strings.Cut(k, "/")
	if path == "" {
		return canonicalHost(host)
	}
	return canonicalHost(host) + "/" + path
}

// canonicalHost folds Docker Hub's many names into one.
func canonicalHost(h string) string {
	switch h = strings.ToLower(h); h {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return name.DefaultRegistry
	}
	return h
}
