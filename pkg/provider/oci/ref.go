package oci

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/storage-initializer/storage-initializer/internal/redact"
)

// Schemes handled: KServe's oci:// (modelcar) and oci+fetch:// (download).
var schemes = []string{"oci", "oci+fetch"}

// parseRef turns oci://REGISTRY/REPO[:TAG|@DIGEST] into a reference.
func parseRef(src string, c *config) (name.Reference, error) {
	rest, ok := "", false
	for _, s := range schemes {
		if r, found := strings.CutPrefix(src, s+"://"); found {
			rest, ok = r, true
			break
		}
	}
	if !ok || rest == "" {
		return nil, fmt.Errorf("%q is not an OCI URI: use oci://REGISTRY/REPOSITORY:TAG or @sha256:DIGEST", redact.URI(src))
	}
	var opts []name.Option
	host, _, _ := strings.Cut(rest, "/")
	if c.insecureFor(host) {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(rest, opts...)
	if err != nil {
		if shown := redact.URI(src); shown != src {
			// go-containerregistry's error repeats the reference.
			return nil, fmt.Errorf("parse OCI reference %q: not REGISTRY/REPOSITORY:TAG or @sha256:DIGEST "+
				"(credentials do not belong in the URI: use a pull secret, see KSERVE_OCI_DOCKER_CONFIG)", shown)
		}
		return nil, fmt.Errorf("parse OCI reference %q: %w", rest, err)
	}
	return ref, nil
}
