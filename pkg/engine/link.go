package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"go.uber.org/zap"
)

// link creates one Link in DEST (through root: never outside it).
func (e *Engine) link(root *os.Root, l Link, skipUnder *[]string) ([]FileResult, error) {
	rel, err := CleanRel(l.Path)
	if err != nil {
		return nil, fmt.Errorf("refusing to link %q: %w", l.Path, err)
	}
	for _, s := range *skipUnder {
		if strings.HasPrefix(rel, s+"/") {
			return nil, nil // below a folder left alone: reported with it
		}
	}
	fi, err := root.Lstat(rel)
	switch {
	case err == nil && l.Dir && fi.IsDir():
		return nil, nil
	case err == nil && !l.Dir && fi.Mode().Type() == fs.ModeSymlink:
		if target, rerr := root.Readlink(rel); rerr == nil && target == l.Target {
			return e.reported(l.Results), nil // from an earlier run: a no-op
		}
		fallthrough
	case err == nil:
		e.log.Warn("already in DEST; left alone", zap.String("path", rel))
		if l.Dir {
			*skipUnder = append(*skipUnder, rel)
		}
		return e.reported(l.LeftAlone), nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("check %s in DEST: %w", rel, err)
	}
	if dir := path.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create folder %s in DEST: %w", dir, err)
		}
	}
	if l.Dir {
		if err := root.Mkdir(rel, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create folder %s in DEST: %w", rel, err)
		}
		return nil, nil
	}
	if err := root.Symlink(l.Target, rel); err != nil {
		return nil, fmt.Errorf("link %s in DEST to %s: %w", rel, l.Target, err)
	}
	return e.reported(l.Results), nil
}

func (e *Engine) reported(rs []FileResult) []FileResult {
	for _, r := range rs {
		e.observer.FileDone(r)
	}
	return rs
}
