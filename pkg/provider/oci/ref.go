package oci

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
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
		return nil, fmt.Errorf("%q is not an OCI URI: use oci://REGISTRY/REPOSITORY:TAG or @sha256:DIGEST", src)
	}
	var opts []name.Option
	host, _, _ := strings.Cut(rest, "/")
	if c.insecureFor(host) {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(rest, opts...)
	if err != nil {
		return nil, fmt.Errorf("parse OCI reference %q: %w", rest, err)
	}
	return ref, nil
}
