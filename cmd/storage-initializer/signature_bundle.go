package main

// Finding and reading a signature bundle: model.sig at the model's root
// (read with the plan's own Loader) or --signature URI (planned with the
// provider for its scheme, read with that plan's Loader), in memory and
// bounded, under the engine's retry policy.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// maxBundle bounds a bundle's size (real ones are a few KiB; the verifier
// refuses more too).
const maxBundle = 16 << 20

// bundleFile returns the plan's model.sig, or nil.
func bundleFile(plan *engine.Plan) *engine.File {
	for i := range plan.Files {
		if rel, err := engine.CleanRel(plan.Files[i].Path); err == nil && rel == defaultBundleName {
			return &plan.Files[i]
		}
	}
	return nil
}

// linkedBundle says the model.sig is among the files a link exposes in DEST
// or the files verified in place (a claim's model): with no policy it is
// reported, never read.
func linkedBundle(plan *engine.Plan) bool {
	isBundle := func(p string) bool {
		rel, err := engine.CleanRel(p)
		return err == nil && rel == defaultBundleName
	}
	for _, l := range plan.Links {
		for _, r := range l.Results {
			if isBundle(r.Path) {
				return true
			}
		}
	}
	for _, c := range plan.Checked {
		if isBundle(c.Path) {
			return true
		}
	}
	return false
}

// readBundleURI reads the bundle --signature names.
func readBundleURI(ctx context.Context, s engine.PlanSettings, reg registry, uri, pvcRoot string) ([]byte, error) {
	if local, ok := bundlePath(uri, pvcRoot); ok {
		return readLocalBundle(local)
	}
	p, err := reg.forURI(uri)
	if err != nil {
		return nil, fmt.Errorf("--signature: %w", err)
	}
	plan, err := p.Plan(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("--signature %s: %w", redactURI(uri), err)
	}
	if plan.Close != nil {
		defer plan.Close()
	}
	f, err := pickBundle(plan)
	if err != nil {
		return nil, fmt.Errorf("--signature %s: %w", redactURI(uri), err)
	}
	return readBundleFile(ctx, s, f)
}

// bundlePath says uri names a local file (a path, file:// or pvc://, as
// sources read them; a relative path too) and where it is.
func bundlePath(uri, pvcRoot string) (string, bool) {
	if p, ok := localPath(uri, pvcRoot); ok {
		return p, true
	}
	return uri, !strings.Contains(uri, "://")
}

func readLocalBundle(name string) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--signature: %w", err)
	}
	defer fh.Close()
	return readBounded(fh, name)
}

// pickBundle is the one file of a bundle's plan: the only one, else the
// one named model.sig or *.sig.
func pickBundle(plan *engine.Plan) (*engine.File, error) {
	if len(plan.Units) > 0 || len(plan.Links) > 0 || len(plan.Checked) > 0 {
		return nil, fmt.Errorf("it is not a single file (an image, an archive or a mounted claim): point it at the bundle file itself")
	}
	if len(plan.Files) == 1 {
		return &plan.Files[0], nil
	}
	var found *engine.File
	for i := range plan.Files {
		if base := path.Base(plan.Files[i].Path); base == defaultBundleName || strings.HasSuffix(base, ".sig") {
			if found != nil {
				return nil, fmt.Errorf("it holds several .sig files (%s, %s): name the bundle file itself", found.Path, plan.Files[i].Path)
			}
			found = &plan.Files[i]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("it holds %d files and none is %s or *.sig: name the bundle file itself", len(plan.Files), defaultBundleName)
	}
	return found, nil
}

// readBundleFile reads a planned file into memory with its Loader, retried
// under the engine's policy.
func readBundleFile(ctx context.Context, s engine.PlanSettings, f *engine.File) ([]byte, error) {
	if f.Size > maxBundle {
		return nil, fmt.Errorf("signature bundle %s is %d bytes, more than %d: it is not a model-signing bundle", f.Path, f.Size, maxBundle)
	}
	if f.Size == 0 || f.Source == nil {
		return nil, fmt.Errorf("signature bundle %s is empty", f.Path)
	}
	length := f.Size
	if f.Stream {
		length = -1
	}
	var data []byte
	err := s.Retry(ctx, "read signature bundle "+f.Path, func(ctx context.Context) error {
		return f.Source.Load(ctx, length, 0, func(r io.Reader) error {
			b, err := readBounded(r, f.Path)
			if err == nil {
				data = b
			}
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read signature bundle %s: %w", f.Path, err)
	}
	return data, nil
}

func readBounded(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBundle+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBundle {
		return nil, engine.Permanent(fmt.Errorf("signature bundle %s is larger than %d bytes: it is not a model-signing bundle", name, maxBundle))
	}
	if len(b) == 0 {
		return nil, engine.Permanent(fmt.Errorf("signature bundle %s is empty", name))
	}
	return b, nil
}
