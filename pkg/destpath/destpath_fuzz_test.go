package destpath

import (
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzCleanRel checks the lexical guard every provider's paths go through:
// an accepted path is clean, relative, free of "..", NUL and the state
// folder, stays under DEST when joined, and is a fixed point.
//
//	go test -run '^$' -fuzz '^FuzzCleanRel$' -fuzztime 60s ./pkg/destpath
func FuzzCleanRel(f *testing.F) {
	for _, s := range []string{"model.bin", "a/b/c", "a//b", "./a", "a/./b/", "../x", "a/../../x", "/etc/passwd",
		`\\server\share`, "a/..", "..", ".", "", "nul\x00byte", "new\nline", ".storage-initializer", ".storage-initializer/x",
		"x/.storage-initializer", "...", "a/.../b", "a\\..\\b", strings.Repeat("a/", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rel, err := CleanRel(p)
		if err != nil {
			return
		}
		switch {
		case rel == "" || rel == "." || strings.HasPrefix(rel, "/") || strings.ContainsRune(rel, 0):
			t.Fatalf("CleanRel(%q) = %q: empty, DEST itself, absolute or NUL", p, rel)
		case path.Clean(rel) != rel:
			t.Fatalf("CleanRel(%q) = %q is not clean", p, rel)
		case rel == ".." || strings.HasPrefix(rel, "../") || strings.Contains(rel, "/../") || strings.HasSuffix(rel, "/.."):
			t.Fatalf("CleanRel(%q) = %q leaves DEST", p, rel)
		case rel == StateDir || strings.HasPrefix(rel, StateDir+"/"):
			t.Fatalf("CleanRel(%q) = %q is inside the state folder", p, rel)
		}
		if in, err := filepath.Rel("/dest", filepath.Join("/dest", rel)); err != nil || in == ".." || strings.HasPrefix(in, "../") {
			t.Fatalf("CleanRel(%q) = %q joins outside DEST", p, rel)
		}
		if again, err := CleanRel(rel); err != nil || again != rel {
			t.Fatalf("CleanRel(%q) = %q, but CleanRel(%q) = %q, %v", p, rel, rel, again, err)
		}
	})
}
