package modelsig

import (
	"strings"
	"testing"
)

func manifest(ser string, files map[string][]Segment, ignore ...string) *Manifest {
	return &Manifest{Serialization: ser, ShardSize: 10, Files: files, IgnorePaths: ignore}
}

func TestIgnored(t *testing.T) {
	m := manifest("files", nil, "ignore-me", "docs/", "./notes.txt", "../outside", "/abs")
	for rel, want := range map[string]bool{
		"ignore-me": true, "ignore-me/x/y": true, "ignore-me2": false, "a/ignore-me": false,
		"docs": true, "docs/a.md": true, "docsx": false,
		"notes.txt": true, "./notes.txt": true,
		".git/config": true, ".gitattributes": true, ".github/workflows/a.yml": true, ".gitignore": true, ".gitmodules": false,
		"outside": false, "abs": false, "model.bin": false,
	} {
		if got := m.Ignored(rel); got != want {
			t.Errorf("Ignored(%q) = %v, want %v", rel, got, want)
		}
	}
	// Signed with --no-ignore-git-paths: the listed .gitattributes is checked.
	m.Files = map[string][]Segment{".gitattributes": {seg(0, -1)}}
	if m.Ignored(".gitattributes") || !m.Ignored(".gitignore") {
		t.Error("a listed file is ignored")
	}
	if err := m.CheckListing(map[string]int64{}); err == nil || !strings.Contains(err.Error(), ".gitattributes is missing") {
		t.Errorf("listed .gitattributes missing: %v", err)
	}
}

func seg(start, end int64) Segment { return Segment{Start: start, End: end, SHA256: make([]byte, 32)} }

func TestCheckListing(t *testing.T) {
	shards := manifest("shards", map[string][]Segment{
		"a.bin":   {seg(0, 10), seg(10, 15)},
		"d/b.bin": {seg(0, 3)},
	}, "ignore-me")
	files := manifest("files", map[string][]Segment{"a.bin": {seg(0, -1)}, "d/b.bin": {seg(0, -1)}})
	cases := []struct {
		m       *Manifest
		listing map[string]int64
		want    string // "" = passes
	}{
		{shards, map[string]int64{"a.bin": 15, "d/b.bin": 3}, ""},
		{shards, map[string]int64{"a.bin": 15, "d/b.bin": 3, "ignore-me/x": 5, ".git/HEAD": 1}, ""},
		// The reference cuts no shard from an empty file: an unlisted empty file matches.
		{shards, map[string]int64{"a.bin": 15, "d/b.bin": 3, "empty": 0}, ""},
		{files, map[string]int64{"a.bin": 15, "d/b.bin": 3, "empty": 0}, "file empty is not in the signature"},
		{shards, map[string]int64{"a.bin": 15}, "signed file d/b.bin is missing from the model (1 missing, 0 not signed, 0 of another size)"},
		{shards, map[string]int64{"a.bin": 15, "d/b.bin": 3, "extra.txt": 1, "z": 2}, "file extra.txt is not in the signature and not in its ignore_paths (0 missing, 2 not signed"},
		{shards, map[string]int64{"a.bin": 16, "d/b.bin": 3}, "a.bin is 16 bytes but was signed at 15"},
		{shards, map[string]int64{"a.bin": 14, "d/b.bin": 3}, "a.bin is 14 bytes but was signed at 15"},
		// Files serialization signs no size: any size passes the listing (the digest decides).
		{files, map[string]int64{"a.bin": 99, "d/b.bin": 3}, ""},
		// Missing wins over extra in the message, and both are counted.
		{files, map[string]int64{"a.bin": 1, "x": 1}, "signed file d/b.bin is missing from the model (1 missing, 1 not signed"},
	}
	for i, c := range cases {
		err := c.m.CheckListing(c.listing)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%d: %v", i, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%d: got %v, want %q", i, err, c.want)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%d: not one line: %q", i, err)
		}
	}
}

// A model signed as one file (resource ".") matches the one file downloaded.
func TestOneFileModel(t *testing.T) {
	m := manifest("files", map[string][]Segment{".": {seg(0, -1)}})
	if err := m.CheckListing(map[string]int64{"model.bin": 7}); err != nil {
		t.Fatal(err)
	}
	if s, ok := m.Segments("model.bin"); !ok || len(s) != 1 {
		t.Fatal("Segments of the one file")
	}
	if err := m.CheckListing(map[string]int64{"model.bin": 7, "other": 1}); err == nil || !strings.Contains(err.Error(), "signed as one file but 2 files") {
		t.Fatalf("two files: %v", err)
	}
	m2 := manifest("files", map[string][]Segment{"a": {seg(0, -1)}})
	if _, ok := m2.Segments("b"); ok {
		t.Fatal("Segments of an unlisted file")
	}
}

// The v0.2 encoding bug the reference still verifies: Python's repr of bytes.
func TestPyBytesRepr(t *testing.T) {
	for in, want := range map[string]string{
		`{"a": 1}`: `b'{"a": 1}'`,
		"it's":     `b"it's"`,
		`'"`:       `b'\'"'`,
		"a\nb\t\\": `b'a\nb\t\\'`,
		"\x00\xff": `b'\x00\xff'`,
	} {
		if got := pyBytesRepr([]byte(in)); got != want {
			t.Errorf("pyBytesRepr(%q) = %s, want %s", in, got, want)
		}
	}
}
