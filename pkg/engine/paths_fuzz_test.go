package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzFetchPath runs a whole Fetch of one file at a hostile path into a
// DEST that holds symlinks pointing out of it (relative and absolute), and
// checks that nothing is ever written outside DEST, whatever the outcome.
//
//	go test -run '^$' -fuzz '^FuzzFetchPath$' -fuzztime 60s ./pkg/engine
func FuzzFetchPath(f *testing.F) {
	for _, s := range []string{"ok.bin", "sub/ok.bin", "../escape", "a/../../escape", "/abs", "rel-link/x", "abs-link/x",
		"rel-link", "abs-link/../x", "file-link", "sub/../rel-link/y", ".storage-initializer/x", "nul\x00", "new\nline"} {
		f.Add(s)
	}
	data := []byte("payload")
	f.Fuzz(func(t *testing.T, p string) {
		if len(p) > 1024 {
			return
		}
		parent := t.TempDir()
		dest := filepath.Join(parent, "dest")
		outside := filepath.Join(parent, "outside")
		for _, d := range []string{dest, outside} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		target := filepath.Join(outside, "target")
		if err := os.WriteFile(target, []byte("outside"), 0o644); err != nil {
			t.Fatal(err)
		}
		for name, to := range map[string]string{"rel-link": "../outside", "abs-link": outside, "file-link": target} {
			if err := os.Symlink(to, filepath.Join(dest, name)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := fastEngine().Fetch(context.Background(), dest,
			[]File{{Path: p, Size: int64(len(data)), Source: &memSource{data: data}}})

		if entries, _ := os.ReadDir(parent); len(entries) != 2 {
			t.Fatalf("Fetch(%q) wrote next to DEST: %v", p, entries)
		}
		entries, _ := os.ReadDir(outside)
		if got, _ := os.ReadFile(target); len(entries) != 1 || string(got) != "outside" {
			t.Fatalf("Fetch(%q) wrote outside DEST: %v, target %q", p, entries, got)
		}
		if err != nil {
			return
		}
		// Success: the file is a regular file really inside DEST.
		rel, _ := CleanRel(p)
		real, err := filepath.EvalSymlinks(filepath.Join(dest, rel))
		if err != nil {
			t.Fatalf("Fetch(%q) succeeded but %s is missing: %v", p, rel, err)
		}
		if in, _ := filepath.Rel(dest, real); in == ".." || strings.HasPrefix(in, "../") {
			t.Fatalf("Fetch(%q) produced %s, which resolves outside DEST", p, real)
		}
		if got, _ := os.ReadFile(real); string(got) != string(data) {
			t.Fatalf("Fetch(%q): %s holds %q", p, real, got)
		}
	})
}
