package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.uber.org/zap"
)

// index is the part of an OCI image index (or Docker manifest list) we use.
type index struct {
	Manifests []descriptor `json:"manifests"`
}

// resolve fetches the manifest ref names (following an index to the wanted
// platform) and plans every layer.
func (p *Provider) resolve(ctx context.Context, src string, ref name.Reference, c *repoClient) (*Plan, error) {
	want, err := p.wantPlatform()
	if err != nil {
		return nil, err
	}
	plan := &Plan{Ref: src}
	cur := ref
	for depth := 0; ; depth++ {
		d, err := c.manifest(ctx, cur)
		if err != nil {
			return nil, err
		}
		if !d.MediaType.IsIndex() {
			plan.Digest = d.Digest.String()
			var m manifest
			if err := json.Unmarshal(d.Manifest, &m); err != nil {
				return nil, fmt.Errorf("parse manifest %s: %w", plan.Digest, err)
			}
			if d.MediaType == types.DockerManifestSchema1 || d.MediaType == types.DockerManifestSchema1Signed {
				return nil, fmt.Errorf("%s is a Docker schema 1 image, which registries no longer serve: rebuild and push it", src)
			}
			if plan.Kind, err = kindOf(&m); err != nil {
				return nil, fmt.Errorf("%s (%s): %w", src, plan.Digest, err)
			}
			if plan.Layers, err = planLayers(plan.Kind, &m); err != nil {
				return nil, fmt.Errorf("%s (%s): %w", src, plan.Digest, err)
			}
			p.log.Info("resolved OCI reference", zap.String("ref", src), zap.String("digest", plan.Digest),
				zap.String("kind", string(plan.Kind)), zap.String("platform", plan.Platform),
				zap.Int("layers", len(plan.Layers)), zap.Int64("bytes", plan.Bytes()))
			return plan, nil
		}
		if depth == 3 {
			return nil, fmt.Errorf("%s: indexes nested too deeply", src)
		}
		var idx index
		if err := json.Unmarshal(d.Manifest, &idx); err != nil {
			return nil, fmt.Errorf("parse index %s: %w", d.Digest, err)
		}
		if n := len(idx.Manifests); n > maxLayers {
			return nil, fmt.Errorf("%s (index %s) lists %d manifests, more than %d: refusing it", src, d.Digest, n, maxLayers)
		}
		pick, err := pickPlatform(idx, want)
		if err != nil {
			return nil, fmt.Errorf("%s (index %s): %w", src, d.Digest, err)
		}
		if err := checkDigest(pick.Digest); err != nil {
			return nil, fmt.Errorf("index %s: %w", d.Digest, err)
		}
		plan.IndexFrom = d.Digest.String()
		if pick.Platform != nil {
			plan.Platform = pick.Platform.String()
		}
		cur = ref.Context().Digest(pick.Digest)
	}
}

func (p *Provider) wantPlatform() (platform, error) {
	if p.cfg.platform == "" {
		return platform{OS: "linux", Architecture: runtime.GOARCH}, nil
	}
	parts := strings.Split(p.cfg.platform, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return platform{}, fmt.Errorf("invalid platform %q: use os/arch[/variant], e.g. linux/arm64", p.cfg.platform)
	}
	pl := platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		pl.Variant = parts[2]
	}
	return pl, nil
}

// pickPlatform chooses the index entry for want. A variant is matched when
// asked for; otherwise any variant of the architecture will do (the one
// listed first). An index without platforms (artifacts) is fine when it
// holds exactly one manifest.
func pickPlatform(idx index, want platform) (descriptor, error) {
	var named []string
	var unnamed []descriptor
	for _, m := range idx.Manifests {
		pl := m.Platform
		if pl == nil || pl.OS == "" && pl.Architecture == "" {
			unnamed = append(unnamed, m)
			continue
		}
		if pl.OS == "unknown" { // attestations and signatures
			continue
		}
		if pl.OS == want.OS && pl.Architecture == want.Architecture && (want.Variant == "" || pl.Variant == want.Variant) {
			return m, nil
		}
		named = append(named, pl.String())
	}
	if len(named) == 0 && len(unnamed) == 1 {
		return unnamed[0], nil
	}
	slices.Sort(named)
	named = slices.Compact(named)
	if len(named) == 0 {
		return descriptor{}, fmt.Errorf("no manifest for %s in the index, and no platform to choose by", want)
	}
	return descriptor{}, fmt.Errorf("no %s manifest in the index; it has %s (choose one with --platform)", want, strings.Join(named, ", "))
}
