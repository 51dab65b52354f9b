package oci

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/extract"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// imageUnit describes an image's (or artifact's) tar layers as one engine
// unit: each layer a blob verified against its sha256 while it streams
// through decompression into a folder of its own, the layers stacked in
// manifest order (whiteouts applied for container image layers), and the
// tree committed into DEST only after every digest checked out. The engine
// runs it: request bound, retries, resume per layer, node cache, commit.
func (p *Provider) imageUnit(c *repoClient, plan *Plan, layers []Layer) (engine.Unit, error) {
	u := engine.Unit{
		// The registry and repository name the origin, the digest the content.
		ID:       "oci " + c.repo.Name() + "@" + plan.Digest,
		Name:     plan.Ref + "@" + plan.Digest,
		Verified: "sha256 (OCI layer digest)",
		Merge:    nil, // artifacts: layers side by side, no whiteouts
		Check:    func(root *os.Root, stats []engine.UnpackStats) error { return checkNotEmpty(plan, root, stats) },
	}
	if plan.Kind == KindModelcar {
		u.Merge = mergeLayers // image layers: stacked, whiteouts applied
	}
	for _, l := range layers {
		want, err := checksum.ParseHex(checksum.SHA256, strings.TrimPrefix(l.Digest, "sha256:"))
		if err != nil {
			return engine.Unit{}, fmt.Errorf("layer %d digest %s: %w", l.Index, l.Digest, err)
		}
		where := l.Path
		if where == "" {
			where = "DEST"
		}
		u.Blobs = append(u.Blobs, engine.Blob{
			File: engine.File{
				Path:     fmt.Sprintf("layer %d (%s)", l.Index, l.Digest),
				Size:     l.Size,
				Expect:   []checksum.Value{want},
				Identity: blobIdentity(c, l.Digest),
				Source:   c.loader(l.Digest, p.log),
			},
			Note:   fmt.Sprintf("%s, extracted into %s", l.MediaType, where),
			Unpack: p.untar(l),
		})
	}
	return u, nil
}

// untar unpacks one tar layer (plain, gzip or zstd) with the safe
// extractor.
func (p *Provider) untar(l Layer) func(context.Context, engine.UnpackSource, *os.Root, engine.UnpackOptions) (engine.UnpackStats, error) {
	return func(ctx context.Context, src engine.UnpackSource, dir *os.Root, o engine.UnpackOptions) (engine.UnpackStats, error) {
		opts := provider.ExtractOptions(o)
		opts.Prefix, opts.Base, opts.KeepWhiteouts = l.Prefix, l.Path, l.Whiteouts
		opts.Logger = p.log.With(zap.Int("layer", l.Index), zap.String("digest", l.Digest))
		return provider.UnpackTar(ctx, src, dir, opts)
	}
}

// mergeLayers stacks the extracted layers onto the tree in manifest order.
func mergeLayers(ctx context.Context, root *os.Root, dirs []string, into string) error {
	for _, d := range dirs {
		if err := extract.ApplyLayer(ctx, root, d, into); err != nil {
			return err
		}
	}
	return nil
}

// checkNotEmpty fails a modelcar without files under /models, saying what
// the image holds instead.
func checkNotEmpty(plan *Plan, root *os.Root, stats []engine.UnpackStats) error {
	found := false
	_ = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return fs.SkipAll
		}
		if !d.IsDir() {
			found = true
		}
		return nil
	})
	if found {
		return nil
	}
	var roots []string
	for _, st := range stats {
		roots = append(roots, st.Roots...)
	}
	slices.Sort(roots)
	roots = slices.Compact(roots)
	if plan.Kind == KindModelcar {
		return fmt.Errorf("%s (%s) has no files under /%s; the image's top-level entries are: %s (build the modelcar with the model copied to /%s)",
			plan.Ref, plan.Digest, modelsDir, orNone(roots), modelsDir)
	}
	return fmt.Errorf("%s (%s): its layers hold no files", plan.Ref, plan.Digest)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
