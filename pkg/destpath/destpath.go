// Package destpath validates the relative paths written under DEST; the
// engine and the extractor both use it (neither imports the other).
package destpath

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// StateDir is the folder inside DEST that holds temporary files, resume
// journals and staging trees. It is removed when a run succeeds.
const StateDir = ".storage-initializer"

// ErrUnsafePath is returned for a relative path that would leave DEST.
var ErrUnsafePath = errors.New("unsafe path")

// CleanRel validates a slash-separated path that must stay inside DEST and
// returns its clean form. It rejects absolute paths, "..", NUL bytes, empty
// names and the engine's own state folder. Symlinks already in DEST are
// handled at open time: every open goes through an os.Root.
func CleanRel(p string) (string, error) {
	switch {
	case p == "":
		return "", fmt.Errorf("%w: empty name", ErrUnsafePath)
	case strings.ContainsRune(p, 0):
		return "", fmt.Errorf("%w: %q contains a NUL byte", ErrUnsafePath, p)
	case strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`):
		return "", fmt.Errorf("%w: %q is absolute", ErrUnsafePath, p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "", fmt.Errorf("%w: %q has a \"..\" segment", ErrUnsafePath, p)
		}
	}
	c := path.Clean(p)
	if strings.HasPrefix(c, `\`) { // "./\" cleans to "\"
		return "", fmt.Errorf("%w: %q is absolute", ErrUnsafePath, p)
	}
	if c == "." {
		return "", fmt.Errorf("%w: %q names DEST itself", ErrUnsafePath, p)
	}
	if c == StateDir || strings.HasPrefix(c, StateDir+"/") {
		return "", fmt.Errorf("%w: %q is inside the engine's state folder %s", ErrUnsafePath, p, StateDir)
	}
	return c, nil
}
