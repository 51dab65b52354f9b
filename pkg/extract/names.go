package extract

import (
	"fmt"
	"path"
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/destpath"
)

// cleanName validates an archive entry name and returns it slash-separated,
// without "./" or trailing slashes; "" is the archive root.
func cleanName(raw string) (string, error) {
	if strings.ContainsAny(raw, "\x00\r\n") {
		return "", fmt.Errorf("%w: name %q contains NUL, CR or LF", ErrUnsafe, raw)
	}
	if strings.HasPrefix(raw, "/") {
		return "", fmt.Errorf("%w: name %q is absolute", ErrUnsafe, raw)
	}
	segs := strings.Split(raw, "/")
	out := segs[:0]
	for _, s := range segs {
		switch s {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("%w: name %q has a \"..\" segment", ErrUnsafe, raw)
		}
		out = append(out, s)
	}
	return strings.Join(out, "/"), nil
}

// placer maps clean archive names to destination-relative paths.
type placer struct {
	prefix string // clean, "" for none
	base   string // clean, "" for none
}

func newPlacer(prefix, base string) (placer, error) {
	p, err := cleanName(prefix)
	if err != nil {
		return placer{}, fmt.Errorf("prefix: %w", err)
	}
	b, err := cleanName(base)
	if err != nil {
		return placer{}, fmt.Errorf("base: %w", err)
	}
	return placer{prefix: p, base: b}, nil
}

// place returns the destination path of a clean archive name ("" for the
// destination root) and whether the entry is kept at all.
func (p placer) place(name string) (string, bool) {
	rel, ok := stripPrefix(name, p.prefix)
	if !ok {
		return "", false
	}
	if p.base != "" && !under(rel, p.base) {
		rel = path.Join(p.base, rel)
	}
	return rel, true
}

// covers reports whether removing the archive path name removes the whole
// kept tree (name is Prefix or one of its ancestors).
func (p placer) covers(name string) bool {
	return name == "" || under(p.prefix, name)
}

// stripPrefix removes prefix from name; ok is false when name is outside it.
func stripPrefix(name, prefix string) (string, bool) {
	switch {
	case prefix == "":
		return name, true
	case name == prefix:
		return "", true
	case strings.HasPrefix(name, prefix+"/"):
		return name[len(prefix)+1:], true
	}
	return "", false
}

// under reports whether p is dir or inside it (dir != "").
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// checkRel applies the engine's rules for destination paths (which also
// reserve its state folder) to a non-root destination path.
func checkRel(rel string) error {
	if _, err := destpath.CleanRel(rel); err != nil {
		return fmt.Errorf("%w: %w", ErrUnsafe, err)
	}
	return nil
}

// topLevel returns the first component of a clean name.
func topLevel(name string) string {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return name
}

// linkTarget decides what a symlink at rel (destination-relative) pointing
// at target becomes. It returns the target to write, or a reason to skip the
// link. The rules keep every symlink's resolution inside the destination:
//
//   - a relative target must be canonical: ".." only as leading components
//     (what path.Clean produces), never after a name, because "a/.." is not
//     the folder it looks like when a is itself a symlink;
//   - its leading ".." may climb at most to the destination root, measured
//     from the link's own folder (which the extractor guarantees is a real
//     folder, not reached through a symlink);
//   - an absolute target is read as an archive path: kept only when it
//     falls inside the kept tree, and rewritten relative to the link.
//
// Every link's resolution therefore lands inside the destination, and by
// induction so does any chain of them.
func (p placer) linkTarget(rel, target string) (string, string) {
	if target == "" || strings.ContainsAny(target, "\x00") {
		return "", "empty or NUL symlink target"
	}
	dir := path.Dir(rel)
	if dir == "." {
		dir = ""
	}
	if strings.HasPrefix(target, "/") {
		name, err := cleanName(strings.TrimLeft(target, "/"))
		if err != nil {
			return "", "absolute symlink target with .."
		}
		dest, ok := p.place(name)
		if !ok {
			return "", fmt.Sprintf("absolute symlink target %s is outside /%s", target, p.prefix)
		}
		return relativeTo(dir, dest), ""
	}
	segs := strings.Split(target, "/")
	ups, seenName := 0, false
	for _, s := range segs {
		switch s {
		case "", ".":
		case "..":
			if seenName {
				return "", fmt.Sprintf("symlink target %q is not canonical (.. after a name)", target)
			}
			ups++
		default:
			seenName = true
		}
	}
	depth := 0
	if dir != "" {
		depth = strings.Count(dir, "/") + 1
	}
	if ups > depth {
		return "", fmt.Sprintf("symlink target %q leaves the destination", target)
	}
	return target, ""
}

// relativeTo returns the relative path from folder dir to dest (both
// destination-relative, "" for the root).
func relativeTo(dir, dest string) string {
	var ds, ts []string
	if dir != "" {
		ds = strings.Split(dir, "/")
	}
	if dest != "" {
		ts = strings.Split(dest, "/")
	}
	i := 0
	for i < len(ds) && i < len(ts) && ds[i] == ts[i] {
		i++
	}
	parts := make([]string, 0, len(ds)-i+len(ts)-i)
	for range ds[i:] {
		parts = append(parts, "..")
	}
	parts = append(parts, ts[i:]...)
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}
