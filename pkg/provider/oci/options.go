package oci

import (
	"os"
	"strings"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
)

// Defaults for the streaming of tar layers.
const (
	// DefaultLayerJobs bounds the tar layers downloaded and extracted at
	// once. Each streams through its own decompressor, so on small nodes
	// two already keep both cores busy.
	DefaultLayerJobs = 2
	// streamChunk is the size of each ranged GET of a streamed layer; with
	// streamAhead ranges in flight, one layer holds about
	// (streamAhead+2) × streamChunk of memory.
	streamChunk = 4 << 20
	streamAhead = 4
)

// config is what Options set.
type config struct {
	platform   string   // "os/arch[/variant]"; "" = linux/runtime.GOARCH
	insecure   []string // registries allowed over plain http or unverified TLS; "*" = all
	caBundle   string   // extra PEM file of trusted CAs
	getenv     func(string) string
	layerJobs  int
	maxBytes   int64 // per image or artifact, uncompressed; 0 = extract's default
	maxEntries int64
	chunk      int64 // test hook: streamed range size
	mirrors    []mirror
	mirrorErr  error // an invalid WithRegistryMirrors spec, reported by Plan and Fetch
	limiter    *httpx.Limiter
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

// WithLayerJobs bounds the tar layers fetched and extracted concurrently.
func WithLayerJobs(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.layerJobs = n
		}
	}
}

// WithLimits caps the uncompressed bytes and the entries extracted from the
// tar layers of one image or artifact (tar bombs); 0 keeps the default
// (1 TiB, 1,000,000 entries).
func WithLimits(maxBytes, maxEntries int64) Option {
	return func(c *config) {
		c.maxBytes, c.maxEntries = maxBytes, maxEntries
	}
}

func defaults() config {
	return config{getenv: os.Getenv, layerJobs: DefaultLayerJobs, chunk: streamChunk}
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
