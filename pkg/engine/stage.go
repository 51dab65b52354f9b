package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
)

// Stage is a folder inside DEST's state folder where a provider builds files
// that do not come from plain ranged reads (archives, image layers). Nothing
// in it is visible under a final name until Commit, so a provider can unpack
// first and commit only after the blob's digest has been checked.
type Stage struct {
	dest *os.Root // DEST
	rel  string   // stage folder relative to DEST
	root *os.Root // the stage folder itself
}

// NewStage opens (creating it if needed) the staging folder named id inside
// DEST. An existing stage with the same id is kept: a provider may resume it
// or call Reset.
func NewStage(dest, id string) (*Stage, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, fmt.Errorf("create destination %s: %w", dest, err)
	}
	droot, err := os.OpenRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", dest, err)
	}
	rel := path.Join(StateDir, "stage-"+safeID(id))
	if err := droot.MkdirAll(rel, 0o755); err != nil {
		droot.Close()
		return nil, fmt.Errorf("create staging folder in %s: %w", dest, err)
	}
	sroot, err := droot.OpenRoot(rel)
	if err != nil {
		droot.Close()
		return nil, fmt.Errorf("open staging folder in %s: %w", dest, err)
	}
	return &Stage{dest: droot, rel: rel, root: sroot}, nil
}

// Root confines every open to the stage folder: an entry cannot write
// through a symlink out of it.
func (s *Stage) Root() *os.Root { return s.root }

// Path is the stage folder's path on disk.
func (s *Stage) Path() string { return path.Join(s.dest.Name(), s.rel) }

// Reset empties the stage.
func (s *Stage) Reset() error {
	s.root.Close()
	if err := s.dest.RemoveAll(s.rel); err != nil {
		return fmt.Errorf("reset staging folder: %w", err)
	}
	if err := s.dest.MkdirAll(s.rel, 0o755); err != nil {
		return fmt.Errorf("reset staging folder: %w", err)
	}
	r, err := s.dest.OpenRoot(s.rel)
	if err != nil {
		return fmt.Errorf("reset staging folder: %w", err)
	}
	s.root = r
	return nil
}

// Commit moves every file and symlink of the stage to the same relative path
// in DEST (replacing files already there; folders are merged), then removes
// the stage. Each file's rename is atomic; the set of files is not.
func (s *Stage) Commit(ctx context.Context) ([]string, error) {
	var moved []string
	var dirs []string
	err := fs.WalkDir(s.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if p == "." {
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return s.dest.MkdirAll(p, 0o755)
		}
		if _, err := CleanRel(p); err != nil {
			return err
		}
		if err := replace(s.dest, path.Join(s.rel, p), p); err != nil {
			return err
		}
		moved = append(moved, p)
		return nil
	})
	if err != nil {
		return moved, fmt.Errorf("commit staged files into %s: %w", s.dest.Name(), err)
	}
	// Folder modes are applied last so a read-only folder does not block
	// the renames into it.
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if fi, err := s.root.Stat(d); err == nil {
			_ = s.dest.Chmod(d, fi.Mode().Perm()&0o777)
		}
	}
	return moved, s.Discard()
}

// Discard removes the stage and everything in it.
func (s *Stage) Discard() error {
	s.root.Close()
	defer s.dest.Close()
	if err := s.dest.RemoveAll(s.rel); err != nil {
		return fmt.Errorf("remove staging folder: %w", err)
	}
	removeStateDirIfEmpty(s.dest)
	return nil
}

// replace renames from → to inside root, replacing a file (not a folder) at to.
func replace(root *os.Root, from, to string) error {
	if fi, err := root.Lstat(to); err == nil && fi.IsDir() {
		return fmt.Errorf("%s exists in the destination as a folder: remove it or choose another DEST", to)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if dir := path.Dir(to); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return root.Rename(from, to)
}

// removeStateDirIfEmpty tidies DEST after a successful run.
func removeStateDirIfEmpty(root *os.Root) {
	_ = root.Remove(StateDir) // fails harmlessly when not empty
}

// safeID maps any identifier (a digest, a path) to a file name.
func safeID(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 100 {
		b = b[len(b)-100:]
	}
	return string(b)
}
