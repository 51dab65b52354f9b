package extract

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

type zent struct {
	name string
	body string
	mode fs.FileMode
}

func mkZip(t testing.TB, ents ...zent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: testMtime}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func extractZip(t testing.TB, root *os.Root, data []byte, opts Options) (Stats, error) {
	return Zip(context.Background(), bytes.NewReader(data), int64(len(data)), root, opts)
}

func TestZip(t *testing.T) {
	dst, root := newDst(t)
	data := mkZip(t,
		zent{name: "model/"},
		zent{name: "model/w.bin", body: "weights", mode: 0o4755},
		zent{name: `model\win.txt`, body: "w"},
		zent{name: "model/link", body: "w.bin", mode: fs.ModeSymlink | 0o777},
		zent{name: "model/esc", body: "../../secret", mode: fs.ModeSymlink | 0o777},
		zent{name: "other/x", body: "x"},
	)
	st, err := extractZip(t, root, data, Options{Prefix: "model"})
	if err != nil {
		t.Fatal(err)
	}
	equalLines(t, listing(t, dst), []string{"f w.bin weights", "f win.txt w", "l link -> w.bin"})
	if st.Files != 2 || st.Symlinks != 1 || st.SkippedCount != 1 {
		t.Fatalf("stats %+v", st)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "w.bin")); fi.Mode() != 0o755 || !fi.ModTime().Equal(testMtime) {
		t.Fatalf("mode %v mtime %v", fi.Mode(), fi.ModTime())
	}
	assertNoEscape(t, dst)
}

func TestZipRejects(t *testing.T) {
	for name, e := range map[string]zent{
		"zip slip":        {name: "../evil", body: "x"},
		"backslash slip":  {name: `..\evil`, body: "x"},
		"absolute":        {name: "/evil", body: "x"},
		"state folder":    {name: ".storage-initializer/x", body: "x"},
		"huge link":       {name: "l", body: string(make([]byte, 5000)), mode: fs.ModeSymlink | 0o777},
		"through symlink": {name: "l/x", body: "x"},
	} {
		t.Run(name, func(t *testing.T) {
			dst, root := newDst(t)
			ents := []zent{e}
			if name == "through symlink" {
				ents = []zent{{name: "l", body: ".", mode: fs.ModeSymlink | 0o777}, e}
			}
			if _, err := extractZip(t, root, mkZip(t, ents...), Options{}); !errors.Is(err, ErrUnsafe) {
				t.Fatalf("got %v, want ErrUnsafe", err)
			}
			assertNoEscape(t, dst)
		})
	}
}

func TestZipCorruptAndLimits(t *testing.T) {
	data := mkZip(t, zent{name: "a", body: string(bytes.Repeat([]byte("abc"), 1000))})
	_, root := newDst(t)
	if _, err := extractZip(t, root, data, Options{MaxBytes: 100}); !errors.Is(err, ErrLimit) {
		t.Fatalf("limit: got %v", err)
	}
	// Flip one byte of a stored (uncompressed) entry's data: its CRC-32 fails.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "a", Method: zip.Store})
	w.Write([]byte("hello stored data"))
	zw.Close()
	bad := buf.Bytes()
	bad[bytes.Index(bad, []byte("hello"))] ^= 0x20
	_, root = newDst(t)
	if _, err := extractZip(t, root, bad, Options{}); !errors.Is(err, zip.ErrChecksum) {
		t.Fatalf("corrupt: got %v", err)
	}
}
