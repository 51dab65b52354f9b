package oci

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// cachedBlob fetches a tar layer's blob through the engine, and so through
// the node cache (--cache-dir), where it is keyed by its digest like a
// kubelet keeps layers: the pods of a node download it once, a concurrent
// pull waits for it, and a hit is re-verified. The blob lands in its own
// folder of the stage (one Fetch per folder, so concurrent layers never
// share the engine's state folder), is extracted from there, then removed.
func (r *stagedRun) cachedBlob(ctx context.Context, l Layer) (*os.File, func(), error) {
	want, err := checksum.ParseHex(checksum.SHA256, strings.TrimPrefix(l.Digest, "sha256:"))
	if err != nil {
		return nil, nil, fmt.Errorf("layer digest %s: %w", l.Digest, err)
	}
	dir := fmt.Sprintf("blob-%d", l.Index)
	f := engine.File{Path: "blob", Size: l.Size, Expect: []checksum.Value{want}, Identity: l.Digest,
		Source: r.c.loader(l.Digest, r.p.log), Unfiltered: true}
	rep, err := r.p.eng.Fetch(ctx, path.Join(r.stage.Path(), dir), []engine.File{f})
	if err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	r.fetched += rep.Fetched
	r.mu.Unlock()
	blob, err := r.root.Open(path.Join(dir, "blob"))
	if err != nil {
		return nil, nil, fmt.Errorf("open fetched blob: %w", err)
	}
	return blob, func() {
		blob.Close()
		_ = r.root.RemoveAll(dir)
	}, nil
}
