package engine

import (
	"fmt"
	"os"
	"path"
)

// replace renames from → to inside root, replacing a file (not a folder) at
// to. The folder check runs only when the rename failed: a rename never
// replaces a folder with a file, so checking first cost a stat per file.
func replace(root *os.Root, from, to string) error {
	if dir := path.Dir(to); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	err := root.Rename(from, to)
	if err == nil {
		return nil
	}
	if fi, serr := root.Lstat(to); serr == nil && fi.IsDir() {
		return errIsFolder(to)
	}
	return err
}

// errIsFolder says a file's final name is taken by a folder.
func errIsFolder(name string) error {
	return fmt.Errorf("%s exists in the destination as a folder: remove it or choose another DEST", name)
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
