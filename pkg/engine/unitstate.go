package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
)

// streamChunk is the size of each ranged read of a streamed blob; with
// streamAhead ranges in flight one blob holds about (streamAhead+2) ×
// streamChunk of memory.
const streamChunk = 4 << 20

// blobRecord is what a finished blob leaves for a rerun.
type blobRecord struct {
	Identity string      `json:"identity"`
	Stats    UnpackStats `json:"stats"`
}

// treeFile is one regular file of a merged tree.
type treeFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

func (ur *unitRun) phase() (string, error) {
	data, err := ur.root.ReadFile(unitPhaseFile)
	if errors.Is(err, fs.ErrNotExist) {
		return phaseUnpack, nil
	}
	if err != nil {
		return "", fmt.Errorf("read state of %s: %w", ur.u.Name, err)
	}
	var ph string
	if json.Unmarshal(data, &ph) != nil {
		return phaseMerging, nil // unreadable: start over
	}
	switch ph {
	case phaseMerging, phaseMerged, phaseCommitting:
		return ph, nil
	}
	return phaseMerging, nil
}

func (ur *unitRun) setPhase(ph string) error { return writeMarker(ur.root, unitPhaseFile, ph) }

// readMark returns the record of blob i when an earlier run finished it
// from the same source version.
func (ur *unitRun) readMark(i int, b Blob) (UnpackStats, bool) {
	var rec blobRecord
	data, err := ur.root.ReadFile(blobMark(i))
	if err != nil || json.Unmarshal(data, &rec) != nil || rec.Identity != b.Identity {
		return UnpackStats{}, false
	}
	fi, err := ur.root.Lstat(blobDir(i))
	return rec.Stats, err == nil && fi.IsDir()
}

func (ur *unitRun) readFiles() ([]treeFile, error) {
	var files []treeFile
	data, err := ur.root.ReadFile(unitFilesFile)
	if err == nil {
		err = json.Unmarshal(data, &files)
	}
	if err != nil {
		return nil, fmt.Errorf("read the file list of %s (rerun to start it over): %w", ur.u.Name, err)
	}
	return files, nil
}

// writeMarker writes a state file atomically (write, then rename).
func writeMarker(root *os.Root, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := root.WriteFile(name+".tmp", data, 0o600); err != nil {
		return fmt.Errorf("record progress in %s: %w", name, err)
	}
	if err := root.Rename(name+".tmp", name); err != nil {
		return fmt.Errorf("record progress in %s: %w", name, err)
	}
	return nil
}

// listTree lists the regular files under dir, relative to it, sorted.
func listTree(root *os.Root, dir string) ([]treeFile, error) {
	files := []treeFile{}
	err := fs.WalkDir(root.FS(), dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, treeFile{Path: strings.TrimPrefix(p, dir+"/"), Size: fi.Size()})
		return nil
	})
	slices.SortFunc(files, func(a, b treeFile) int { return strings.Compare(a.Path, b.Path) })
	return files, err
}

// checkCommitPath refuses what a tree must never put into DEST: a path
// that is not clean, or has a state folder at any depth (it would be taken
// for the engine's own state, or hide it).
func checkCommitPath(p string) error {
	if _, err := CleanRel(p); err != nil {
		return err
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == StateDir {
			return fmt.Errorf("%w: %q holds a folder named like the state folder %s", ErrUnsafePath, p, StateDir)
		}
	}
	return nil
}

// moveTree moves every file and symlink under from to the same relative
// path under to (inside root), replacing files already there and merging
// folders. Each rename is atomic; the set is not (see commitTree).
func moveTree(ctx context.Context, root *os.Root, from, to string) error {
	var dirs []string
	err := fs.WalkDir(root.FS(), from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == from {
			return nil
		}
		rel := strings.TrimPrefix(p, from+"/")
		if err := checkCommitPath(rel); err != nil {
			return err
		}
		target := path.Join(to, rel)
		// A folder or file replaced by a symlink already there would send
		// the next rename through it: never follow one.
		if err := noSymlinkParent(root, to, rel); err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, rel)
			if fi, err := root.Lstat(target); err == nil && !fi.IsDir() {
				if err := root.Remove(target); err != nil {
					return fmt.Errorf("replace %s with a folder: %w", rel, err)
				}
			}
			return root.MkdirAll(target, 0o755)
		}
		return replace(root, p, target)
	})
	if err != nil {
		return err
	}
	// Folder modes are applied last so a read-only folder does not block
	// the renames into it.
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if fi, err := root.Stat(path.Join(from, d)); err == nil {
			_ = root.Chmod(path.Join(to, d), fi.Mode().Perm()&0o777|0o700)
		}
	}
	return nil
}

// noSymlinkParent fails when a folder on the way to rel under to is a
// symlink (os.Root keeps it inside root, but it could still redirect a
// commit to another place in DEST).
func noSymlinkParent(root *os.Root, to, rel string) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	cur := to
	for _, seg := range strings.Split(dir, "/") {
		cur = path.Join(cur, seg)
		fi, err := root.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode().Type() == fs.ModeSymlink {
			return fmt.Errorf("%s is a symlink in the destination: refusing to write %s through it; remove it", cur, rel)
		}
	}
	return nil
}

// commitTree moves a merged tree (a folder inside DEST's state folder)
// into DEST. A rerun after an interrupted commit moves what is left.
func commitTree(ctx context.Context, dest *os.Root, tree string) error {
	if _, err := dest.Lstat(tree); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return moveTree(ctx, dest, tree, ".")
}
