package extract

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

const mib = 1 << 20

func TestByteCapTarAndZip(t *testing.T) {
	body := strings.Repeat("x", 10*mib)
	for name, run := range map[string]func(*os.Root) error{
		"tar": func(r *os.Root) error {
			_, err := extractTar(t, r, mkTar(t, file("big.bin", body)), Options{MaxBytes: mib})
			return err
		},
		"zip": func(r *os.Root) error {
			_, err := extractZip(t, r, mkZip(t, zent{name: "big.bin", body: body}), Options{MaxBytes: mib})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			dst, root := newDst(t)
			err := run(root)
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "--max-extract-bytes") {
				t.Fatalf("want ErrLimit naming --max-extract-bytes, got %v", err)
			}
			if _, serr := os.Stat(filepath.Join(dst, "big.bin")); serr == nil {
				t.Fatal("the over-cap file was written")
			}
		})
	}
}

func TestEntryCapTarAndZip(t *testing.T) {
	var tents []ent
	var zents []zent
	for i := range 5 {
		tents = append(tents, file(fmt.Sprint("f", i), "x"))
		zents = append(zents, zent{name: fmt.Sprint("f", i), body: "x"})
	}
	_, root := newDst(t)
	_, err := extractTar(t, root, mkTar(t, tents...), Options{MaxEntries: 4})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "--max-extract-entries") {
		t.Fatalf("tar: got %v", err)
	}
	dst, root := newDst(t)
	_, err = extractZip(t, root, mkZip(t, zents...), Options{MaxEntries: 4})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "--max-extract-entries") {
		t.Fatalf("zip: got %v", err)
	}
	// The zip's count is checked from its central directory, before any entry.
	if got := listing(t, dst); len(got) != 0 {
		t.Fatalf("zip over the entry cap wrote %v", got)
	}
	_, root = newDst(t)
	if _, err := extractZip(t, root, mkZip(t, zents...), Options{MaxEntries: 5}); err != nil {
		t.Fatalf("zip at the cap: %v", err)
	}
}

// paxSparseTar builds, by hand (archive/tar cannot write sparse files), a
// PAX GNU sparse 1.0 entry: 512 real bytes, a logical size of 1 TiB.
func paxSparseTar(t testing.TB) []byte {
	t.Helper()
	var out bytes.Buffer
	block := func(name string, typ byte, size int) {
		var h [512]byte
		copy(h[0:], name)
		copy(h[100:], "0000644\x00")
		copy(h[108:], "0000000\x00")
		copy(h[116:], "0000000\x00")
		copy(h[124:], fmt.Sprintf("%011o\x00", size))
		copy(h[136:], "00000000000\x00")
		h[156] = typ
		copy(h[257:], "ustar\x0000")
		copy(h[148:], "        ")
		var sum int
		for _, b := range h {
			sum += int(b)
		}
		copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
		out.Write(h[:])
	}
	pad := func() {
		if n := out.Len() % 512; n != 0 {
			out.Write(make([]byte, 512-n))
		}
	}
	rec := func(k, v string) string {
		line := " " + k + "=" + v + "\n"
		n := len(line)
		for len(fmt.Sprint(n))+len(line) != n {
			n = len(fmt.Sprint(n)) + len(line)
		}
		return fmt.Sprint(n) + line
	}
	pax := rec("GNU.sparse.major", "1") + rec("GNU.sparse.minor", "0") +
		rec("GNU.sparse.name", "huge.bin") + rec("GNU.sparse.realsize", fmt.Sprint(int64(1)<<40))
	block("PaxHeaders/huge.bin", tar.TypeXHeader, len(pax))
	out.WriteString(pax)
	pad()
	block("GNUSparseFile.0/huge.bin", tar.TypeReg, 1024)
	out.WriteString("1\n0\n512\n") // one fragment: 512 bytes at offset 0
	pad()
	out.Write(bytes.Repeat([]byte("d"), 512))
	out.Write(make([]byte, 1024)) // end of archive
	return out.Bytes()
}

func TestPAXSparseRefused(t *testing.T) {
	data := paxSparseTar(t)
	if len(data) > 4096 {
		t.Fatalf("test archive is %d bytes", len(data))
	}
	// The reader really sees a 1 TiB file: without the refusal it would be
	// inflated and written as zeros.
	tr := tar.NewReader(bytes.NewReader(data))
	hdr, err := tr.Next()
	if err != nil || hdr.Size != 1<<40 || hdr.Name != "huge.bin" {
		t.Fatalf("hand-made sparse tar: %v %+v", err, hdr)
	}
	dst, root := newDst(t)
	_, err = extractTar(t, root, data, Options{})
	if !errors.Is(err, ErrSparse) || !strings.Contains(err.Error(), "huge.bin") {
		t.Fatalf("want ErrSparse, got %v", err)
	}
	var blocks int64
	_ = filepath.Walk(dst, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil {
			blocks += fi.Sys().(*syscall.Stat_t).Blocks
		}
		return nil
	})
	if blocks > 64 {
		t.Fatalf("destination holds %d blocks after a refused sparse entry", blocks)
	}
}

func TestFreeSpaceShortfall(t *testing.T) {
	dst, root := newDst(t)
	small := func() int64 { return 1000 }
	_, err := extractTar(t, root, mkTar(t, file("a", "ok"), file("b", strings.Repeat("b", 4096))), Options{FreeBytes: small})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "need 4.0 KiB, 1000 B available") {
		t.Fatalf("tar: got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "b")); err == nil {
		t.Fatal("b was written despite the shortfall")
	}
	_, root = newDst(t)
	_, err = extractZip(t, root, mkZip(t, zent{name: "b", body: strings.Repeat("b", 4096)}), Options{FreeBytes: small})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("zip: got %v", err)
	}
	// A zip announces all its sizes: two files that fit one by one but not
	// together are refused before either is written.
	dst, root = newDst(t)
	two := mkZip(t, zent{name: "a", body: strings.Repeat("a", 600)}, zent{name: "b", body: strings.Repeat("b", 600)})
	_, err = extractZip(t, root, two, Options{FreeBytes: small})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "need 1.2 KiB, 1000 B available") {
		t.Fatalf("zip total: got %v", err)
	}
	if got := listing(t, dst); len(got) != 0 {
		t.Fatalf("zip wrote %v before failing for space", got)
	}
	// Files the patterns drop need no space.
	_, root = newDst(t)
	if _, err := extractZip(t, root, two, Options{FreeBytes: small, Keep: func(rel string) bool { return rel == "a" }}); err != nil {
		t.Fatalf("zip filtered: %v", err)
	}
	// Unknown free space (-1) checks nothing.
	_, root = newDst(t)
	if _, err := extractTar(t, root, mkTar(t, file("b", "bb")), Options{FreeBytes: func() int64 { return -1 }}); err != nil {
		t.Fatal(err)
	}
}

// TestFreeSpaceWhileWriting: the space left shrinks under a file being
// written (another writer on the volume); the next check fails it.
func TestFreeSpaceWhileWriting(t *testing.T) {
	free := int64(1 << 40)
	tr := &tree{opts: Options{}.withDefaults(), free: func() int64 { return free }}
	r := &spaceReader{t: tr, rel: "big", r: zeros{}, left: 3 * spaceCheckEvery}
	buf := make([]byte, mib)
	var n int64
	var err error
	for err == nil && n < 3*spaceCheckEvery {
		var k int
		k, err = r.Read(buf)
		n += int64(k)
		if n == spaceCheckEvery/2 {
			free = spaceCheckEvery // less than the 2.5 checks' worth left
		}
	}
	if !errors.Is(err, ErrNoSpace) || n != spaceCheckEvery {
		t.Fatalf("after %d bytes: %v", n, err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func compress(t *testing.T, format string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch format {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "zstd":
		w, _ = zstd.NewWriter(&buf)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestInflationRatioTar(t *testing.T) {
	bomb := compress(t, "zstd", mkTar(t, file("zeros", string(make([]byte, 24*mib)))))
	run := func(opts Options) error {
		dec, _, err := Decompress(bytes.NewReader(bomb))
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		_, root := newDst(t)
		opts.Keep = func(string) bool { return false } // inflated, not written
		_, err = Tar(context.Background(), dec, root, opts)
		return err
	}
	if err := run(Options{}); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "inflated from") {
		t.Fatalf("default ratio: got %v (archive %d bytes)", err, len(bomb))
	}
	if err := run(Options{MaxRatio: -1}); err != nil {
		t.Fatalf("ratio disabled: %v", err)
	}
	// Zeros-heavy but real: 1 MiB of incompressible data per 24 MiB of
	// zeros stays far below the default.
	noise := make([]byte, mib)
	for i := range noise {
		noise[i] = byte(i*7919 ^ i>>3*31)
	}
	mixed := compress(t, "gzip", mkTar(t, file("w", string(noise)+string(make([]byte, 24*mib)))))
	dec, _, _ := Decompress(bytes.NewReader(mixed))
	_, root := newDst(t)
	if _, err := Tar(context.Background(), dec, root, Options{Keep: func(string) bool { return false }}); err != nil {
		t.Fatalf("zeros-heavy archive (%d bytes): %v", len(mixed), err)
	}
}

func TestInflationRatioZip(t *testing.T) {
	data := mkZip(t, zent{name: "zeros", body: string(make([]byte, 24*mib))})
	dst, root := newDst(t)
	_, err := extractZip(t, root, data, Options{MaxRatio: 100})
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "inflated from") {
		t.Fatalf("got %v", err)
	}
	if len(listing(t, dst)) != 0 {
		t.Fatal("the bomb was written before the ratio check")
	}
}

// TestZipLyingEntryCount: archive/zip checks a directory's declared entry
// count only modulo 65536, so an archive can declare 1 entry and hold
// 65537; the entry cap still holds, counted from the directory itself.
func TestZipLyingEntryCount(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range 65537 {
		if _, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprint(i), Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	z64 := bytes.LastIndex(data, []byte{0x50, 0x4b, 0x06, 0x06})
	if z64 < 0 {
		t.Fatal("no zip64 end of central directory")
	}
	binary.LittleEndian.PutUint64(data[z64+24:], 1)
	binary.LittleEndian.PutUint64(data[z64+32:], 1)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil || len(zr.File) != 65537 {
		t.Fatalf("archive/zip on the lying archive: %v, %d entries", err, len(zr.File))
	}
	zr = nil
	dst, root := newDst(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = extractZip(t, root, data, Options{MaxEntries: 1000})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "more than 1000 entries") {
		t.Fatalf("got %v", err)
	}
	// archive/zip would hold 65537 headers (~20 MB) before the cap is seen.
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Fatalf("%d bytes allocated to refuse the archive", n)
	}
	if got := listing(t, dst); len(got) != 0 {
		t.Fatalf("wrote %d entries", len(got))
	}
	if n, ok := zipEntryCount(bytes.NewReader(data), int64(len(data)), 1<<20); !ok || n != 65537 {
		t.Fatalf("counted %d (%v)", n, ok)
	}
}
