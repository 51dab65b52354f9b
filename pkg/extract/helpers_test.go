package extract

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// ent is one tar entry for a test archive.
type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
}

func file(name, body string) ent         { return ent{name: name, typ: tar.TypeReg, body: body, mode: 0o644} }
func dirEnt(name string) ent             { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlinkEnt(name, target string) ent { return ent{name: name, typ: tar.TypeSymlink, link: target} }
func hardlinkEnt(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target}
}

var testMtime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode,
			Size: int64(len(e.body)), ModTime: testMtime, Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// newDst returns a destination folder inside a parent folder that also
// holds a "secret" sibling, so tests can see whether anything escaped.
func newDst(t testing.TB) (string, *os.Root) {
	t.Helper()
	parent := t.TempDir()
	dst := filepath.Join(parent, "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "secret"), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return dst, root
}

func extractTar(t testing.TB, root *os.Root, data []byte, opts Options) (Stats, error) {
	t.Helper()
	return Tar(context.Background(), bytes.NewReader(data), root, opts)
}

// listing renders a tree as sorted lines: "f path body", "d path",
// "l path -> target".
func listing(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, "l "+rel+" -> "+target)
		case d.IsDir():
			out = append(out, "d "+rel)
		default:
			b, _ := os.ReadFile(p)
			out = append(out, "f "+rel+" "+string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// assertNoEscape checks the parent of dst holds only dst and the untouched
// secret, and that no symlink in dst resolves outside it.
func assertNoEscape(t testing.TB, dst string) {
	t.Helper()
	parent := filepath.Dir(dst)
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "dst" && e.Name() != "secret" {
			t.Fatalf("entry %q written outside the destination", e.Name())
		}
	}
	if b, err := os.ReadFile(filepath.Join(parent, "secret")); err != nil || string(b) != "keep" {
		t.Fatalf("file outside the destination changed: %q %v", b, err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_ = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel, _ := filepath.Rel(dst, p)
		if _, err := root.Stat(rel); err != nil && !errors.Is(err, fs.ErrNotExist) && strings.Contains(err.Error(), "escapes") {
			t.Fatalf("symlink %s resolves outside the destination: %v", rel, err)
		}
		return nil
	})
}

func equalLines(t testing.TB, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("tree mismatch\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
