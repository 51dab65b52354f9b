package oci

import (
	"os"
	"strings"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
)

// config is what Options set.
type config struct {
	platform  string   // "os/arch[/variant]"; "" = linux/runtime.GOARCH
	insecure  []string // registries allowed over plain http or unverified TLS; "*" = all
	caBundle  string   // extra PEM file of trusted CAs
	getenv    func(string) string
	mirrors   []mirror
	mirrorErr error // an invalid WithRegistryMirrors spec, reported by Plan
	limiter   *httpx.Limiter
}

// Option configures a Provider.
type Option func(*config)

// WithPlatform selects the image of a multi-platform index, as
// "os/arch[/variant]" (e.g. "linux/arm64"). The default is linux and the
// architecture the binary runs on, not go-containerregistry's linux/amd64.
func WithPlatform(p string) Option { return func(c *config) { c.platform = p } }

// WithInsecure allows plain http and unverified TLS for the named registries
// (host[:port]); no names means every registry. Loopback and private
// addresses use plain http anyway, as go-containerregistry does. The
// environment variable KSERVE_OCI_INSECURE_REGISTRY ("true" or a
// comma-separated list of registries) adds to this.
func WithInsecure(registries ...string) Option {
	return func(c *config) {
		if len(registries) == 0 {
			registries = []string{"*"}
		}
		c.insecure = append(c.insecure, registries...)
	}
}

// WithCABundle trusts the CAs in a PEM file in addition to the system's
// (and SSL_CERT_FILE's), for registries with private certificates.
func WithCABundle(path string) Option { return func(c *config) { c.caBundle = path } }

// WithGetenv replaces os.Getenv for reading the auth and TLS environment
// (tests, or a CLI that resolved the environment itself).
func WithGetenv(getenv func(string) string) Option {
	return func(c *config) {
		if getenv != nil {
			c.getenv = getenv
		}
	}
}

func defaults() config {
	return config{getenv: os.Getenv}
}

// insecureFor reports whether reg may be reached over plain http or with an
// unverified certificate.
func (c *config) insecureFor(reg string) bool {
	list := append([]string(nil), c.insecure...)
	switch v := strings.TrimSpace(c.getenv("KSERVE_OCI_INSECURE_REGISTRY")); strings.ToLower(v) {
	case "", "0", "false", "no":
	case "1", "true", "yes":
		list = append(list, "*")
	default:
		list = append(list, strings.Split(v, ",")...)
	}
	for _, r := range list {
		r = strings.TrimSpace(r)
		if r == "*" || strings.EqualFold(r, reg) {
			return true
		}
	}
	return false
}
