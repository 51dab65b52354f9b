package extract

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/destpath"
)

// ApplyLayer moves the tree at upper onto the tree at lower (both relative
// to root; "." is the root) the way a container runtime stacks image layers.
// upper was extracted with KeepWhiteouts: its whiteout markers (empty files
// with mode 0, as only the extractor writes them) remove what lower holds
// at those paths (an opaque marker empties the folder) before upper's
// entries move in; any other entry named .wh.* is an ordinary entry; folders merge; any other entry replaces what
// lower had at its path. Nothing is copied: entries are renamed, so upper is
// consumed and removed. The engine's state folder at lower's root is left
// alone, so upper may live inside it.
//
// Layers can thus be downloaded and extracted in parallel, each into a
// folder of its own, and applied in order afterwards.
func ApplyLayer(ctx context.Context, root *os.Root, upper, lower string) error {
	if err := applyDir(ctx, root, path.Clean(upper), path.Clean(lower), true); err != nil {
		return fmt.Errorf("apply layer %s: %w", upper, err)
	}
	return nil
}

func applyDir(ctx context.Context, root *os.Root, up, low string, top bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	names, err := readNames(root, up)
	if err != nil {
		return err
	}
	// Whiteouts hide lower layers only, so they go first. Only markers
	// written by the extractor count: an artifact's regular file named
	// .wh.x (ModelPack, KitOps and ORAS layers are not image layers, and
	// are extracted without KeepWhiteouts) moves in like any other file.
	markers := map[string]bool{}
	for _, n := range names {
		if !isWhiteout(n) {
			continue
		}
		fi, err := root.Lstat(path.Join(up, n))
		if err != nil {
			return err
		}
		markers[n] = isMarker(fi)
	}
	for _, n := range names {
		if !markers[n] {
			continue
		}
		switch {
		case n == opaqueMarker:
			if err := emptyDir(root, low, top); err != nil {
				return err
			}
		case strings.HasPrefix(n, whiteoutPrefix+whiteoutPrefix):
		case strings.HasPrefix(n, whiteoutPrefix):
			victim := n[len(whiteoutPrefix):]
			if top && victim == destpath.StateDir {
				continue
			}
			if err := root.RemoveAll(path.Join(low, victim)); err != nil {
				return fmt.Errorf("apply whiteout %s: %w", path.Join(low, victim), err)
			}
		}
	}
	for _, n := range names {
		u, l := path.Join(up, n), path.Join(low, n)
		if markers[n] {
			if err := root.Remove(u); err != nil {
				return err
			}
			continue
		}
		if top && n == destpath.StateDir {
			continue
		}
		ufi, err := root.Lstat(u)
		if err != nil {
			return err
		}
		lfi, lerr := root.Lstat(l)
		if lerr != nil && !errors.Is(lerr, fs.ErrNotExist) {
			return lerr
		}
		lowerIsDir := lerr == nil && lfi.IsDir()
		if lerr == nil && ufi.IsDir() != lowerIsDir {
			if err := root.RemoveAll(l); err != nil {
				return fmt.Errorf("replace %s: %w", l, err)
			}
			lowerIsDir = false
		}
		if !ufi.IsDir() {
			if err := root.Rename(u, l); err != nil {
				return fmt.Errorf("move %s into place: %w", l, err)
			}
			continue
		}
		if !lowerIsDir {
			if err := root.Mkdir(l, 0o755); err != nil {
				return fmt.Errorf("create folder %s: %w", l, err)
			}
		}
		// Recurse even into folders new to lower: markers inside them must
		// not survive, and a rename would not find them.
		if err := applyDir(ctx, root, u, l, false); err != nil {
			return err
		}
		_ = root.Chmod(l, ufi.Mode().Perm())
		_ = root.Chtimes(l, ufi.ModTime(), ufi.ModTime())
	}
	if err := root.Remove(up); err != nil {
		return fmt.Errorf("remove applied layer folder %s: %w", up, err)
	}
	return nil
}

// emptyDir removes everything in dir (the engine's state folder excepted
// at the top).
func emptyDir(root *os.Root, dir string, top bool) error {
	names, err := readNames(root, dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, n := range names {
		if top && n == destpath.StateDir {
			continue
		}
		if err := root.RemoveAll(path.Join(dir, n)); err != nil {
			return fmt.Errorf("apply opaque whiteout in %s: %w", dir, err)
		}
	}
	return nil
}

func readNames(root *os.Root, dir string) ([]string, error) {
	f, err := root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return names, nil
}
