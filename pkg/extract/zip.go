package extract

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxZipLink bounds a zip symlink's target (stored as the entry's data).
const maxZipLink = 4096

// Zip extracts the zip archive r (size bytes) into dst with the same rules
// as Tar; zip archives have no hardlinks and no whiteouts. Each entry's
// CRC-32 is checked as it is read. The caps are checked before anything is
// written: the entry count from the central directory, and each entry's
// declared size against MaxBytes, the free space and MaxRatio (measured
// against the archive's size, which entries sharing compressed data, as in
// overlapping-entry bombs, cannot inflate).
func Zip(ctx context.Context, r io.ReaderAt, size int64, dst *os.Root, opts Options) (Stats, error) {
	opts = opts.withDefaults()
	var st Stats
	pl, err := newPlacer(opts.Prefix, opts.Base)
	if err != nil {
		return st, err
	}
	if n, ok := zipEntryCount(r, size, opts.MaxEntries); ok && n > opts.MaxEntries {
		t := newTree(dst, opts, &st)
		t.entries = n - 1
		return st, t.count()
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return st, fmt.Errorf("read zip: %w", err)
	}
	t := newTree(dst, opts, &st)
	if n := int64(len(zr.File)); n > opts.MaxEntries {
		t.entries = n - 1
		return st, t.count()
	}
	t.stored = size
	if err := t.room("the archive's files", zipNeed(zr, pl, t)); err != nil {
		return st, err
	}
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if err := t.count(); err != nil {
			return st, err
		}
		if err := zipEntry(ctx, t, pl, f); err != nil {
			return st, err
		}
	}
	t.finish()
	return st, nil
}

// zipNeed is what the kept regular files of zr declare, for the free-space
// check before anything is written. Entries the main loop will refuse are
// left out: they fail there with a better message.
func zipNeed(zr *zip.Reader, pl placer, t *tree) int64 {
	var need int64
	for _, f := range zr.File {
		if !f.Mode().IsRegular() || strings.HasSuffix(f.Name, "/") {
			continue
		}
		name, err := cleanName(strings.ReplaceAll(f.Name, `\`, "/"))
		if err != nil {
			continue
		}
		if rel, ok := pl.place(name); ok && rel != "" && t.keep(rel) {
			need += int64(min(f.UncompressedSize64, 1<<62))
			need = min(need, 1<<62)
		}
	}
	return need
}

func zipEntry(ctx context.Context, t *tree, pl placer, f *zip.File) error {
	// Zip writers on Windows store backslashes; a backslash in a name
	// written on Unix is rare enough to treat the same way.
	raw := strings.ReplaceAll(f.Name, `\`, "/")
	name, err := cleanName(raw)
	if err != nil {
		return err
	}
	t.noteRoot(name)
	rel, ok := pl.place(name)
	if !ok {
		return nil
	}
	if rel != "" {
		if err := checkRel(rel); err != nil {
			return err
		}
	}
	mode := f.Mode()
	switch {
	case mode.IsDir() || strings.HasSuffix(raw, "/"):
		return t.dir(rel, mode, f.Modified)
	case mode&fs.ModeSymlink != 0:
		if rel == "" || !t.keep(rel) {
			return nil
		}
		target, err := zipLinkTarget(f)
		if err != nil {
			return err
		}
		fixed, why := pl.linkTarget(rel, target)
		if why != "" {
			t.skip(f.Name, why)
			return nil
		}
		return t.symlink(rel, fixed)
	case mode.IsRegular():
		if rel == "" || !t.keep(rel) {
			return nil
		}
		n := int64(f.UncompressedSize64)
		if err := t.reserve(n); err != nil {
			return err
		}
		if err := t.ratio(t.bytes, t.stored); err != nil {
			return fmt.Errorf("%s in zip: %w", f.Name, err)
		}
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("open %s in zip: %w", f.Name, err)
		}
		defer rc.Close()
		if err := t.file(ctx, rel, rc, n, mode, f.Modified); err != nil {
			return err
		}
		// Reading to EOF makes archive/zip check the CRC-32 and that the
		// entry holds no more than its declared size.
		if _, err := io.Copy(io.Discard, io.LimitReader(rc, 1)); err != nil {
			return fmt.Errorf("read %s in zip: %w", f.Name, err)
		}
		return nil
	default:
		t.skip(f.Name, "not a file, folder or symlink ("+mode.Type().String()+")")
		return nil
	}
}

func zipLinkTarget(f *zip.File) (string, error) {
	if f.UncompressedSize64 > maxZipLink {
		return "", fmt.Errorf("%w: symlink %s has a %d-byte target", ErrUnsafe, f.Name, f.UncompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return "", fmt.Errorf("open %s in zip: %w", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxZipLink+1))
	if err != nil {
		return "", fmt.Errorf("read symlink %s in zip: %w", f.Name, err)
	}
	return string(b), nil
}
