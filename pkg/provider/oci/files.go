package oci

import (
	"fmt"
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// engineFile turns a layer that is a file itself (ModelPack .raw, oras
// files) into an engine file: fetched with parallel ranged GETs on the
// blob, verified against the layer's sha256, resumed and committed by the
// engine. The digest is the file's identity, so a rerun keeps a file
// already committed from the same blob.
func (p *Provider) engineFile(c *repoClient, l Layer) (engine.File, error) {
	sum, err := checksum.ParseHex(checksum.SHA256, strings.TrimPrefix(l.Digest, "sha256:"))
	if err != nil {
		return engine.File{}, err
	}
	return engine.File{
		Path:     l.Path,
		Size:     l.Size,
		Mode:     l.Mode,
		ModTime:  l.ModTime,
		Expect:   []checksum.Value{sum},
		Identity: blobIdentity(c, l.Digest),
		Source:   c.loader(l.Digest, p.log),
		Origin:   fmt.Sprintf("layer %d (%s, file %s)", l.Index, l.Digest, l.Path),
	}, nil
}

// blobIdentity names a blob by the registry and repository it is read from
// with its digest: node-cache entries are never shared across repositories
// (the kubelet's IfNotPresent problem), so an entry is only ever served to a
// pod that resolved a manifest of that repository with its own credentials.
func blobIdentity(c *repoClient, digest string) string {
	return "oci " + c.repo.Name() + "@" + digest
}
