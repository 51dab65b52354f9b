package oci

import (
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// engineFiles turns the layers that are files themselves (ModelPack .raw,
// oras files) into engine files: fetched with parallel ranged GETs on the
// blob, verified against the layer's sha256, resumed and committed by the
// engine. The digest is the file's identity, so a rerun keeps a file
// already committed from the same blob.
func (p *Provider) engineFiles(c *repoClient, layers []Layer) ([]engine.File, error) {
	files := make([]engine.File, 0, len(layers))
	for _, l := range layers {
		sum, err := checksum.ParseHex(checksum.SHA256, strings.TrimPrefix(l.Digest, "sha256:"))
		if err != nil {
			return nil, err
		}
		files = append(files, engine.File{
			Path:     l.Path,
			Size:     l.Size,
			Mode:     l.Mode,
			ModTime:  l.ModTime,
			Expect:   []checksum.Value{sum},
			Identity: l.Digest,
			Source:   c.loader(l.Digest, p.log),
		})
	}
	return files, nil
}
