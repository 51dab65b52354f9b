package pvc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// node is one entry of the source as the model server will see it.
type node struct {
	rel  string // slash path relative to the source folder (a file source: its name)
	link string // what a symlink in DEST points to: the real parent folder joined with the name
	real string // every symlink resolved
	dir  bool
	info fs.FileInfo // of real
	kids []*node     // folders only, sorted by name
}

// tree is a checked source.
type tree struct {
	root  *node
	files []*node // every regular file, sorted by rel
	bound string  // resolved claim (or volume) folder
}

// scanner walks a source and refuses what the model server could not use
// or should not see.
type scanner struct {
	ctx   context.Context
	loc   location
	bound string
	files []*node
	stack map[string]bool // real folders being walked, to catch link loops
}

// scan checks the source's structure: it exists, its folders are readable,
// it holds at least one file, no symlink dangles or leaves the claim, and
// nothing is a device, FIFO or socket. Top-level names starting with a dot
// are skipped, as KServe's glob does.
func scan(ctx context.Context, loc location) (*tree, error) {
	if _, err := os.Lstat(loc.path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s %s does not exist — %s", loc.kind, loc.path, loc.missing)
		}
		return nil, unreadable(loc, loc.path, err)
	}
	real, err := filepath.EvalSymlinks(loc.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s %s is a symlink to a missing target: fix the link", loc.kind, loc.path)
		}
		return nil, unreadable(loc, loc.path, err)
	}
	bound, err := boundaryOf(loc, real)
	if err != nil {
		return nil, err
	}
	if !within(real, bound) {
		return nil, fmt.Errorf("%s %s resolves to %s, outside %s: point the source inside it", loc.kind, loc.path, real, bound)
	}
	info, err := os.Stat(real)
	if err != nil {
		return nil, unreadable(loc, loc.path, err)
	}
	s := &scanner{ctx: ctx, loc: loc, bound: bound, stack: map[string]bool{}}
	root := &node{link: real, real: real, info: info, dir: info.IsDir()}
	switch {
	case info.IsDir():
		if err := s.walk(root, true); err != nil {
			return nil, err
		}
	case info.Mode().IsRegular():
		root.rel = filepath.Base(loc.path)
		s.files = append(s.files, root)
	default:
		return nil, special(loc, loc.path, info)
	}
	if len(s.files) == 0 {
		return nil, fmt.Errorf("%s %s holds no files (top-level dotfiles are skipped): copy the model into it or fix the path",
			loc.kind, loc.path)
	}
	return &tree{root: root, files: s.files, bound: bound}, nil
}

// boundaryOf resolves the folder links must stay in.
func boundaryOf(loc location, real string) (string, error) {
	b := loc.boundary
	if b == "" {
		v, err := volumeRoot(real)
		if err != nil {
			return "", fmt.Errorf("find the volume holding %s: %w", loc.path, err)
		}
		return v, nil
	}
	rb, err := filepath.EvalSymlinks(b)
	if err != nil {
		return "", fmt.Errorf("resolve claim folder %s: %w", b, err)
	}
	return rb, nil
}

func (s *scanner) walk(n *node, top bool) error {
	if s.stack[n.real] {
		return fmt.Errorf("%s %s: symlink loop at %s (%s is its own ancestor): remove the link", s.loc.kind, s.loc.path, n.rel, n.real)
	}
	s.stack[n.real] = true
	defer delete(s.stack, n.real)
	ents, err := os.ReadDir(n.real)
	if err != nil {
		return unreadable(s.loc, n.real, err)
	}
	for _, e := range ents {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		if top && strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(n.real, name)
		c := &node{rel: path.Join(n.rel, name), link: p, real: p}
		if e.Type()&fs.ModeSymlink != 0 {
			if c.real, err = s.followLink(c.rel, p); err != nil {
				return err
			}
		}
		if c.info, err = os.Stat(c.real); err != nil {
			return unreadable(s.loc, p, err)
		}
		switch {
		case c.info.IsDir():
			c.dir = true
			if err := s.walk(c, false); err != nil {
				return err
			}
		case c.info.Mode().IsRegular():
			s.files = append(s.files, c)
		default:
			return special(s.loc, p, c.info)
		}
		n.kids = append(n.kids, c)
	}
	return nil
}

// followLink resolves a symlink found in the source; it must resolve, and
// inside the claim.
func (s *scanner) followLink(rel, p string) (string, error) {
	target, _ := os.Readlink(p)
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s %s: symlink %s points to %s, which does not exist: fix or remove the link",
			s.loc.kind, s.loc.path, rel, target)
	}
	if err != nil {
		return "", fmt.Errorf("%s %s: cannot resolve symlink %s (→ %s): %w", s.loc.kind, s.loc.path, rel, target, err)
	}
	if !within(real, s.bound) {
		return "", fmt.Errorf("%s %s: symlink %s points to %s, outside %s: links must stay inside the claim",
			s.loc.kind, s.loc.path, rel, real, s.bound)
	}
	return real, nil
}

// within reports whether p is dir or inside it (both clean and resolved).
func within(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func unreadable(loc location, p string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%s %s: %s is not readable by uid %d: fix its permissions or set the pod's securityContext.fsGroup",
			loc.kind, loc.path, p, os.Getuid())
	}
	return fmt.Errorf("%s %s: read %s: %w", loc.kind, loc.path, p, err)
}

func special(loc location, p string, fi fs.FileInfo) error {
	return fmt.Errorf("%s %s: %s is a %s, not a file or folder: remove it from the model folder",
		loc.kind, loc.path, p, kindOf(fi.Mode()))
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
