package oci

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Kind is what an OCI reference holds.
type Kind string

const (
	KindModelcar  Kind = "modelcar"  // a container image with the model under /models
	KindModelPack Kind = "modelpack" // CNCF ModelPack artifact (application/vnd.cncf.model.*)
	KindModelKit  Kind = "modelkit"  // KitOps ModelKit (application/vnd.kitops.modelkit.*)
	KindORAS      Kind = "oras"      // files pushed with oras (org.opencontainers.image.title)
)

// Action is what happens to one layer.
type Action string

const (
	// ActionExtract streams the layer (a tar, gzip/zstd or not) through
	// decompression into a staging folder; committed after its digest
	// and every other extracted layer's digest checked out.
	ActionExtract Action = "extract"
	// ActionFile makes the blob itself one file, fetched by the engine with
	// parallel ranged GETs and verified against the digest.
	ActionFile Action = "file"
	// ActionSkip leaves the layer out (see Reason).
	ActionSkip Action = "skip"
)

// Plan is what Fetch will do for a reference: printed by --dry-run.
type Plan struct {
	Ref       string  `json:"ref"`
	Digest    string  `json:"digest"`             // the resolved manifest
	IndexFrom string  `json:"index,omitempty"`    // the index it was picked from
	Platform  string  `json:"platform,omitempty"` // the platform picked from the index
	Kind      Kind    `json:"kind"`
	Layers    []Layer `json:"layers"`
}

// Layer is one layer of the manifest and what happens to it.
type Layer struct {
	Index     int    `json:"index"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
	Action    Action `json:"action"`
	// Path is the file written (ActionFile) or the folder the tar is
	// placed under (ActionExtract; "" is DEST itself).
	Path string `json:"path,omitempty"`
	// Prefix is the folder of the tar kept, with the prefix stripped
	// ("models" for a modelcar).
	Prefix string `json:"prefix,omitempty"`
	// Whiteouts is set for container image (modelcar) layers only: they
	// are extracted with extract.Options.KeepWhiteouts and merged with
	// extract.ApplyLayer, which honours the markers. ModelPack, KitOps and
	// ORAS layers are not container layers: a .wh.x in them is kept as an
	// ordinary file and removes nothing.
	Whiteouts bool        `json:"whiteouts,omitempty"`
	Mode      fs.FileMode `json:"mode,omitempty"`
	ModTime   time.Time   `json:"mtime,omitzero"`
	Reason    string      `json:"reason,omitempty"`
}

// Bytes is the total size of the layers that will be downloaded.
func (p *Plan) Bytes() int64 {
	var n int64
	for _, l := range p.Layers {
		if l.Action != ActionSkip {
			n += l.Size
		}
	}
	return n
}

// Media types and annotations (see oci-and-checksums.md).
const (
	mtOCIImageConfig    = "application/vnd.oci.image.config.v1+json"
	mtDockerConfig      = "application/vnd.docker.container.image.v1+json"
	mtModelPackManifest = "application/vnd.cncf.model.manifest.v1+json"
	mtModelPackConfig   = "application/vnd.cncf.model.config.v1+json"
	mtModelPackPrefix   = "application/vnd.cncf.model."
	mtCNAIPrefix        = "application/vnd.cnai.model." // ModelPack's earlier name
	mtKitConfig         = "application/vnd.kitops.modelkit.config.v1+json"
	mtKitPrefix         = "application/vnd.kitops.modelkit."

	annFilepath     = "org.cncf.model.filepath"
	annFilepathCNAI = "org.cnai.model.filepath"
	annFileMetadata = "org.cncf.model.file.metadata+json"
	annTitle        = "org.opencontainers.image.title"
	annUnpack       = "io.deis.oras.content.unpack"

	modelsDir = "models"
)

// manifest is the part of an OCI image manifest we use.
type manifest struct {
	MediaType    string       `json:"mediaType"`
	ArtifactType string       `json:"artifactType"`
	Config       descriptor   `json:"config"`
	Layers       []descriptor `json:"layers"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
	Platform    *platform         `json:"platform"`
}

type platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
}

func (p platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// kindOf decides what a manifest holds, from its config, artifact type and
// layers together: no single media type is trusted alone.
func kindOf(m *manifest) (Kind, error) {
	has := func(prefixes ...string) bool {
		for _, l := range m.Layers {
			for _, p := range prefixes {
				if strings.HasPrefix(l.MediaType, p) {
					return true
				}
			}
		}
		return false
	}
	titled := false
	for _, l := range m.Layers {
		if l.Annotations[annTitle] != "" {
			titled = true
		}
	}
	image := m.Config.MediaType == mtOCIImageConfig || m.Config.MediaType == mtDockerConfig
	switch {
	case m.ArtifactType == mtModelPackManifest || m.Config.MediaType == mtModelPackConfig || has(mtModelPackPrefix, mtCNAIPrefix):
		return KindModelPack, nil
	case m.Config.MediaType == mtKitConfig || has(mtKitPrefix):
		return KindModelKit, nil
	case titled:
		return KindORAS, nil
	case image:
		return KindModelcar, nil
	}
	return "", fmt.Errorf("unrecognised OCI artifact (config %q, artifactType %q): expected a modelcar image, a ModelPack, a KitOps ModelKit or files pushed with oras", m.Config.MediaType, m.ArtifactType)
}

// Bounds on what a manifest may declare, checked before anything is sized
// by it (a layer's size sets the number of ranges streamed): far beyond any
// real model, far below what would exhaust memory or overflow a sum.
const (
	// maxLayers: images stop at 127 layers; a ModelPack artifact has one
	// layer per file.
	maxLayers = 100_000
	// maxLayerSize is 4 TiB, more than any volume a pod is given.
	maxLayerSize int64 = 4 << 40
	// maxManifestBytes bounds the sum of the layer sizes.
	maxManifestBytes int64 = 64 << 40
)

// planLayers decides each layer's action.
func planLayers(kind Kind, m *manifest) ([]Layer, error) {
	if n := len(m.Layers); n > maxLayers {
		return nil, fmt.Errorf("the manifest lists %d layers, more than the %d a model can have: refusing it", n, maxLayers)
	}
	out := make([]Layer, 0, len(m.Layers))
	var total int64
	for i, d := range m.Layers {
		if err := checkDigest(d.Digest); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		if d.Size < 0 {
			return nil, fmt.Errorf("layer %d (%s): negative size", i, d.Digest)
		}
		if d.Size > maxLayerSize {
			return nil, fmt.Errorf("layer %d (%s) claims %d bytes, more than the %d (4 TiB) a layer may have: refusing the manifest",
				i, d.Digest, d.Size, maxLayerSize)
		}
		if total += d.Size; total > maxManifestBytes {
			return nil, fmt.Errorf("the layers add up to more than %d bytes (64 TiB): refusing the manifest", maxManifestBytes)
		}
		l := Layer{Index: i, Digest: d.Digest, Size: d.Size, MediaType: d.MediaType}
		switch kind {
		case KindModelcar:
			l.Action, l.Prefix, l.Whiteouts = ActionExtract, modelsDir, true
		case KindModelPack:
			planModelPack(&l, d)
		case KindModelKit:
			// Layer tars hold paths relative to the Kitfile's folder.
			l.Action = ActionExtract
		case KindORAS:
			l.Path = d.Annotations[annTitle]
			switch {
			case l.Path == "":
				l.Action, l.Reason = ActionSkip, "no "+annTitle+" annotation (oras skips it too)"
			case d.Annotations[annUnpack] == "true":
				l.Action = ActionExtract
			default:
				l.Action = ActionFile
			}
		}
		if l.Path != "" && l.Action != ActionSkip {
			clean, err := engine.CleanRel(l.Path)
			if err != nil {
				return nil, fmt.Errorf("layer %d (%s) names an unsafe path: %w", i, d.Digest, err)
			}
			l.Path = clean
		}
		out = append(out, l)
	}
	return out, nil
}

// fileMetadata is ModelPack's org.cncf.model.file.metadata+json.
type fileMetadata struct {
	Mode    uint32    `json:"mode"`
	ModTime time.Time `json:"mtime"`
}

func planModelPack(l *Layer, d descriptor) {
	l.Path = d.Annotations[annFilepath]
	if l.Path == "" {
		l.Path = d.Annotations[annFilepathCNAI]
	}
	if l.Path == "" {
		l.Path = d.Annotations[annTitle]
	}
	var meta fileMetadata
	if s := d.Annotations[annFileMetadata]; s != "" && json.Unmarshal([]byte(s), &meta) == nil {
		l.Mode, l.ModTime = fs.FileMode(meta.Mode).Perm(), meta.ModTime
	}
	mt := d.MediaType
	switch {
	case strings.HasSuffix(mt, ".tar"), strings.HasSuffix(mt, ".tar+gzip"), strings.HasSuffix(mt, ".tar+zstd"):
		// Tars name entries relative to the model root (modctl) or to the
		// annotated folder: extract places both under Path.
		l.Action = ActionExtract
	case l.Path == "":
		l.Action, l.Reason = ActionSkip, "raw layer without an "+annFilepath+" annotation: no file name"
	default:
		// .raw and anything unknown that names a path: the blob is the file.
		l.Action = ActionFile
	}
}

// checkDigest accepts sha256 digests only: the one algorithm registries
// use, and the one the engine verifies.
func checkDigest(d string) error {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Errorf("unsupported digest %q (want sha256:<64 hex>)", d)
	}
	return nil
}
