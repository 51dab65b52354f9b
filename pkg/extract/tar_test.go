package extract

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTarBasic(t *testing.T) {
	dst, root := newDst(t)
	data := mkTar(t,
		dirEnt("models/"),
		ent{name: "models/setuid", typ: tar.TypeReg, body: "x", mode: 0o4700},
		ent{name: "./models/sub/private", typ: tar.TypeReg, body: "p", mode: 0o600},
		symlinkEnt("models/sub/up", "../setuid"),
		symlinkEnt("models/abs", "/models/sub/private"),
		hardlinkEnt("models/hard", "models/setuid"),
		file("etc/passwd", "root"),
		dirEnt("bin"),
	)
	st, err := extractTar(t, root, data, Options{Prefix: "models"})
	if err != nil {
		t.Fatal(err)
	}
	equalLines(t, listing(t, dst), []string{
		"d sub",
		"f hard x",
		"f setuid x",
		"f sub/private p",
		"l abs -> sub/private",
		"l sub/up -> ../setuid",
	})
	if st.Files != 2 || st.Symlinks != 2 || st.Hardlinks != 1 || st.Bytes != 2 {
		t.Fatalf("stats %+v", st)
	}
	if got := strings.Join(st.Roots, ","); got != "models,etc,bin" {
		t.Fatalf("roots %q", got)
	}
	fi, _ := os.Stat(filepath.Join(dst, "setuid"))
	if fi.Mode() != 0o740 {
		t.Fatalf("setuid file mode %v, want -rwxr----- (setuid cleared, group-readable)", fi.Mode())
	}
	if !fi.ModTime().Equal(testMtime) {
		t.Fatalf("mtime %v, want %v", fi.ModTime(), testMtime)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "sub/private")); fi.Mode() != 0o640 {
		t.Fatalf("private file mode %v, want group-readable", fi.Mode())
	}
	a, _ := os.Stat(filepath.Join(dst, "hard"))
	b, _ := os.Stat(filepath.Join(dst, "setuid"))
	if !os.SameFile(a, b) {
		t.Fatal("hardlink is not the same file")
	}
	assertNoEscape(t, dst)
}

func TestTarRejects(t *testing.T) {
	cases := map[string][]ent{
		"absolute":             {file("/etc/x", "x")},
		"dotdot":               {file("a/../../x", "x")},
		"dotdot at end":        {dirEnt("a/..")},
		"newline":              {file("a\nb", "x")},
		"through symlink":      {symlinkEnt("l", "."), file("l/x", "x")},
		"through dir symlink":  {dirEnt("d"), symlinkEnt("d/l", ".."), file("d/l/x", "x")},
		"hardlink dotdot":      {hardlinkEnt("h", "../secret")},
		"hardlink absolute":    {hardlinkEnt("h", "/etc/passwd")},
		"hardlink missing":     {hardlinkEnt("h", "nope")},
		"hardlink to symlink":  {symlinkEnt("s", "x"), hardlinkEnt("h", "s")},
		"hardlink via symlink": {dirEnt("d"), file("d/f", "x"), symlinkEnt("s", "d"), hardlinkEnt("h", "s/f")},
		"state folder":         {file(".storage-initializer/x", "x")},
		"whiteout dotdot":      {file("a/.wh...", "")},
	}
	for name, ents := range cases {
		t.Run(name, func(t *testing.T) {
			dst, root := newDst(t)
			_, err := extractTar(t, root, mkTar(t, ents...), Options{Whiteouts: true})
			if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("got %v, want ErrUnsafe", err)
			}
			assertNoEscape(t, dst)
		})
	}
}

func TestTarSkips(t *testing.T) {
	dst, root := newDst(t)
	data := mkTar(t,
		dirEnt("models/d"),
		symlinkEnt("models/esc", "../etc/passwd"),
		symlinkEnt("models/d/esc2", "../../x"),
		symlinkEnt("models/abs", "/etc/passwd"),
		symlinkEnt("models/noncanon", "d/../../x"),
		symlinkEnt("models/ok", "d"),
		ent{name: "models/dev", typ: tar.TypeChar},
		ent{name: "models/blk", typ: tar.TypeBlock},
		ent{name: "models/fifo", typ: tar.TypeFifo},
		file("etc/passwd", "x"),
		hardlinkEnt("models/h", "etc/passwd"),
		symlinkEnt("models", "/data"),
	)
	st, err := extractTar(t, root, data, Options{Prefix: "models"})
	if err != nil {
		t.Fatal(err)
	}
	equalLines(t, listing(t, dst), []string{"d d", "l ok -> d"})
	if st.SkippedCount != 9 || len(st.Skipped) != 9 {
		t.Fatalf("skipped %d: %q", st.SkippedCount, st.Skipped)
	}
	assertNoEscape(t, dst)
}

func TestTarPreexistingSymlinkInDest(t *testing.T) {
	dst, root := newDst(t)
	outside := filepath.Join(filepath.Dir(dst), "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dst, "evil")); err != nil {
		t.Fatal(err)
	}
	_, err := extractTar(t, root, mkTar(t, file("evil/x", "x")), Options{})
	if !errors.Is(err, ErrUnsafe) {
		t.Fatalf("writing through a planted symlink: got %v", err)
	}
	// A file entry at the symlink's own path replaces the link.
	if _, err := extractTar(t, root, mkTar(t, file("evil", "x")), Options{}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("wrote outside the destination: %v", ents)
	}
	equalLines(t, listing(t, dst), []string{"f evil x"})
}

func TestTarHardlinkNotModifiedByLaterEntry(t *testing.T) {
	dst, root := newDst(t)
	data := mkTar(t, file("a", "old"), hardlinkEnt("b", "a"), file("a", "new"))
	if _, err := extractTar(t, root, data, Options{}); err != nil {
		t.Fatal(err)
	}
	equalLines(t, listing(t, dst), []string{"f a new", "f b old"})
}

func TestTarLimits(t *testing.T) {
	_, root := newDst(t)
	_, err := extractTar(t, root, mkTar(t, file("a", "12345"), file("b", "67890")), Options{MaxBytes: 8})
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("bytes: got %v", err)
	}
	_, root = newDst(t)
	_, err = extractTar(t, root, mkTar(t, file("a", ""), file("b", ""), file("c", "")), Options{MaxEntries: 2})
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("entries: got %v", err)
	}
	// Bytes hidden after the end-of-archive marker count too.
	_, root = newDst(t)
	data := append(mkTar(t, file("a", "1")), bytes.Repeat([]byte{0}, 64<<10)...)
	if _, err = extractTar(t, root, data, Options{MaxBytes: 32 << 10}); !errors.Is(err, ErrLimit) {
		t.Fatalf("trailing bytes: got %v", err)
	}
}

func TestTarKeepAndBase(t *testing.T) {
	dst, root := newDst(t)
	data := mkTar(t, file("w.bin", "w"), file("readme.md", "r"), file("dir/x", "x"))
	keep := func(rel string) bool { return !strings.HasSuffix(rel, ".md") }
	if _, err := extractTar(t, root, data, Options{Base: "dir", Keep: keep}); err != nil {
		t.Fatal(err)
	}
	equalLines(t, listing(t, dst), []string{"d dir", "f dir/w.bin w", "f dir/x x"})
}

func TestTarCancelled(t *testing.T) {
	_, root := newDst(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Tar(ctx, bytes.NewReader(mkTar(t, file("a", "1"))), root, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestTarDirModes(t *testing.T) {
	dst, root := newDst(t)
	data := mkTar(t, ent{name: "ro", typ: tar.TypeDir, mode: 0o1500}, file("ro/f", "x"))
	if _, err := extractTar(t, root, data, Options{}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dst, "ro"))
	if fi.Mode().Perm() != 0o750 || fi.Mode()&os.ModeSticky != 0 {
		t.Fatalf("dir mode %v", fi.Mode())
	}
	if !fi.ModTime().Equal(testMtime) {
		t.Fatalf("dir mtime %v", fi.ModTime())
	}
	var sst syscall.Stat_t
	_ = syscall.Stat(filepath.Join(dst, "ro"), &sst)
	if int(sst.Uid) != os.Getuid() {
		t.Fatalf("owner changed")
	}
}

func TestTarLargeFileWrittenBehind(t *testing.T) {
	dst, root := newDst(t)
	body := bytes.Repeat([]byte("0123456789abcdef"), (asyncMin+3*copyBuf+5)/16)
	data := mkTar(t, file("big.bin", string(body)), file("small", "s"))
	st, err := extractTar(t, root, data, Options{})
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dst, "big.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, got), "large file differs")
	assert.Equal(t, int64(len(body)+1), st.Bytes)

	// A stream that ends inside the large file fails, it is not cut short.
	_, root = newDst(t)
	_, err = extractTar(t, root, data[:len(data)/2], Options{})
	assert.Error(t, err)
}
