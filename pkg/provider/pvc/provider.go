// Package pvc materialises pvc://CLAIM/PATH, file:///abs/path and plain
// absolute paths: a volume already mounted in the pod.
//
// Nothing is linked or copied before the source has been checked: it exists,
// the current user can read every file, it holds at least one file, no
// symlink dangles or leaves the claim, and every file listed in a checksum
// manifest (--manifest, or SHA256SUMS in the folder) has the listed SHA-256.
package pvc

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// Mode says what Fetch does with a checked source.
type Mode string

const (
	// ModeSymlink links each top-level entry of the source into DEST, as
	// KServe's initializer does: no bytes are copied.
	ModeSymlink Mode = "symlink"
	// ModeCopy copies every file through the engine (parallel, verified,
	// atomic, resumable), for servers that need a copy of their own.
	ModeCopy Mode = "copy"
	// ModeVerify only checks the source and reports; DEST is not touched.
	ModeVerify Mode = "verify"
)

// DefaultRoot is where the older KServe flow mounts claims.
const DefaultRoot = "/mnt/pvc"

// Provider handles pvc:// and local sources.
type Provider struct {
	set      provider.Settings
	root     string
	mode     Mode
	manifest string
	log      *zap.Logger
}

var _ provider.Planner = (*Provider)(nil)

// Option configures a Provider.
type Option func(*Provider)

// WithRoot sets where claims are mounted (--pvc-root); pvc://CLAIM/PATH
// resolves to ROOT/CLAIM/PATH when ROOT/CLAIM exists, else ROOT/PATH.
func WithRoot(dir string) Option {
	return func(p *Provider) {
		if dir != "" {
			p.root = dir
		}
	}
}

// WithMode sets symlink, copy or verify (--pvc-mode); "" keeps symlink.
func WithMode(m Mode) Option {
	return func(p *Provider) {
		if m != "" {
			p.mode = m
		}
	}
}

// WithManifest names a sha256sum-format manifest (--manifest). A relative
// path is taken relative to the source folder. Without it, a SHA256SUMS
// file in the source folder is used when present.
func WithManifest(path string) Option { return func(p *Provider) { p.manifest = path } }

// WithLogger sets the logger (default: the settings').
func WithLogger(l *zap.Logger) Option {
	return func(p *Provider) {
		if l != nil {
			p.log = l
		}
	}
}

// New returns a provider for pvc:// and local sources.
func New(set provider.Settings, opts ...Option) *Provider {
	p := &Provider{set: set, root: DefaultRoot, mode: ModeSymlink, log: set.Logger()}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Schemes implements provider.Provider. The command maps plain absolute
// paths to "file".
func (p *Provider) Schemes() []string { return []string{"pvc", "file"} }

// Plan implements provider.Planner: the source is checked (and, without
// copy mode, hashed against its manifest) now; the plan links, copies or
// only reports it.
func (p *Provider) Plan(ctx context.Context, src string) (*engine.Plan, error) {
	switch p.mode {
	case ModeSymlink, ModeCopy, ModeVerify:
	default:
		return nil, engine.Permanent(fmt.Errorf("invalid PVC mode %q: want symlink, copy or verify", p.mode))
	}
	loc, err := p.resolve(src)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	if loc.noop {
		// KServe multi-model serving: the model is already where the
		// server reads it.
		p.log.Info("source is under /mnt/models: nothing to do", zap.String("source", src))
		return &engine.Plan{Source: src}, nil
	}
	t, err := scan(ctx, loc)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	if p.keptFiles(t) == 0 {
		return nil, engine.Permanent(fmt.Errorf("%s %s: no file matches the include/exclude patterns (STORAGE_ALLOW_PATTERNS/STORAGE_IGNORE_PATTERNS): check them",
			loc.kind, loc.path))
	}
	m, err := p.loadManifest(loc, t)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	manifestName := m.name
	if manifestName == "" {
		manifestName = "none"
	}
	p.log.Info("checked source", zap.String("path", t.root.real), zap.String("mode", string(p.mode)),
		zap.Int("files", len(t.files)), zap.String("manifest", manifestName))
	// Copy mode leaves hashing to the engine, which hashes while it writes.
	hash := p.mode != ModeCopy
	digests, err := p.checkFiles(ctx, loc, t, m, hash)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	plan := &engine.Plan{Source: src}
	switch p.mode {
	case ModeCopy:
		plan.Files = copyFiles(t, m)
	case ModeVerify:
		plan.Checked = p.verifyResults(t, digests)
	default:
		plan.Links = p.links(t, digests)
	}
	return plan, nil
}

// keptFiles counts the files the include/exclude patterns keep.
func (p *Provider) keptFiles(t *tree) int {
	n := 0
	for _, f := range t.files {
		if p.set.Kept(f.rel) {
			n++
		}
	}
	return n
}
