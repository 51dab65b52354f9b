package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
)

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
