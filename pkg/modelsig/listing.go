package modelsig

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// gitPaths are ignored on verification unless listed, as the reference's verify does
// by default (hashing.Config ignores .git/, .gitattributes, .github/, .gitignore).
var gitPaths = []string{".git", ".gitattributes", ".github", ".gitignore"}

// Ignored reports whether rel (a slash path relative to the model root) is outside
// the signature: not listed, and covered by the statement's ignore_paths or the
// reference's default git paths. An entry ignores itself and everything under it
// (the reference's Path.is_relative_to); entries that would leave the model root are
// dropped, as the reference drops them. A listed file is never ignored: whatever was
// signed is checked.
func (m *Manifest) Ignored(rel string) bool {
	rel = path.Clean(strings.TrimPrefix(rel, "./"))
	if _, listed := m.Files[rel]; listed {
		return false
	}
	for _, list := range [][]string{m.IgnorePaths, gitPaths} {
		for _, p := range list {
			p = path.Clean(strings.TrimPrefix(p, "./"))
			if p == "." || p == ".." || strings.HasPrefix(p, "../") || strings.HasPrefix(p, "/") {
				continue
			}
			if rel == p || strings.HasPrefix(rel, p+"/") {
				return true
			}
		}
	}
	return false
}

// Segments returns the signed segments of rel. A model signed as one file (resource
// ".") matches whatever single file the caller has.
func (m *Manifest) Segments(rel string) ([]Segment, bool) {
	if s, ok := m.Files[rel]; ok {
		return s, true
	}
	if s, ok := m.Files["."]; ok && len(m.Files) == 1 {
		return s, true
	}
	return nil, false
}

// CheckListing compares the downloaded tree (rel slash path → size) with the manifest:
// every listed file present; no unlisted file unless ignored (or, in shards
// serialization, empty: the reference cuts no shard from an empty file); in shards
// serialization, each size equal to the end of its last shard. The caller leaves the
// signature file itself out of files.
func (m *Manifest) CheckListing(files map[string]int64) error {
	var missing, extra, sized []string
	if segs, one := m.Files["."]; one && len(m.Files) == 1 {
		var got []string
		for rel := range files {
			if !m.Ignored(rel) {
				got = append(got, rel)
			}
		}
		if len(got) != 1 {
			return fmt.Errorf("signature: the model was signed as one file but %d files were downloaded", len(got))
		}
		if e := segs[len(segs)-1].End; e >= 0 && files[got[0]] != e {
			return fmt.Errorf("signature: %s is %d bytes but was signed at %d; the model changed after signing", got[0], files[got[0]], e)
		}
		return nil
	}
	for rel, segs := range m.Files {
		size, ok := files[rel]
		if !ok {
			missing = append(missing, rel)
			continue
		}
		if e := segs[len(segs)-1].End; e >= 0 && size != e {
			sized = append(sized, rel)
		}
	}
	for rel, size := range files {
		if _, ok := m.Files[rel]; ok || m.Ignored(rel) {
			continue
		}
		if size == 0 && m.Serialization == "shards" {
			continue
		}
		extra = append(extra, rel)
	}
	if len(missing)+len(extra)+len(sized) == 0 {
		return nil
	}
	sort.Strings(missing)
	sort.Strings(extra)
	sort.Strings(sized)
	counts := fmt.Sprintf("(%d missing, %d not signed, %d of another size)", len(missing), len(extra), len(sized))
	switch {
	case len(missing) > 0:
		return fmt.Errorf("signature: signed file %s is missing from the model %s; the source is not the signed model", missing[0], counts)
	case len(extra) > 0:
		return fmt.Errorf("signature: file %s is not in the signature and not in its ignore_paths %s; the source is not the signed model", extra[0], counts)
	default:
		segs := m.Files[sized[0]]
		return fmt.Errorf("signature: %s is %d bytes but was signed at %d %s; the model changed after signing", sized[0], files[sized[0]], segs[len(segs)-1].End, counts)
	}
}
