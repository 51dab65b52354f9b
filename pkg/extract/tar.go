package extract

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Tar extracts the tar stream r into dst. It reads r to its end, past the
// archive's end-of-archive marker, so a caller hashing the underlying stream
// sees every byte (trailing bytes count against MaxBytes). When r is what
// Decompress returned (or opts.InputBytes is set), the inflation ratio is
// bounded by MaxRatio. On error dst may hold part of the archive: extract
// into a staging folder and commit only on success.
func Tar(ctx context.Context, r io.Reader, dst *os.Root, opts Options) (Stats, error) {
	opts = opts.withDefaults()
	var st Stats
	pl, err := newPlacer(opts.Prefix, opts.Base)
	if err != nil {
		return st, err
	}
	t := newTree(dst, opts, &st)
	input := opts.InputBytes
	if c, ok := r.(inputCounter); ok && input == nil {
		input = c.InputBytes
	}
	if input != nil && opts.MaxRatio > 0 {
		r = &ratioReader{t: t, r: r, input: input}
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, ErrLimit) {
				return st, err
			}
			return st, fmt.Errorf("read tar: %w", err)
		}
		if err := t.count(); err != nil {
			return st, err
		}
		if err := tarEntry(ctx, t, pl, hdr, tr); err != nil {
			return st, err
		}
	}
	t.finish()
	// Drain what follows the end-of-archive marker (padding, or a bomb
	// hidden after it) within the byte cap.
	left := opts.MaxBytes - t.bytes
	n, err := io.Copy(io.Discard, io.LimitReader(r, left+1))
	if errors.Is(err, ErrLimit) {
		return st, err
	}
	if err != nil {
		return st, fmt.Errorf("read tar: %w", err)
	}
	if n > left {
		return st, t.reserve(n)
	}
	return st, nil
}

func tarEntry(ctx context.Context, t *tree, pl placer, hdr *tar.Header, r io.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	t.noteRoot(name)
	if err := refuseSparse(hdr); err != nil {
		return err
	}
	//lint:ignore SA1019 old archives still carry the pre-POSIX regular-file flag
	if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA {
		// Inflated whether kept or not, so counted either way.
		if err := t.reserve(hdr.Size); err != nil {
			return err
		}
	}
	if base := path.Base(name); isWhiteout(base) && (t.opts.Whiteouts || t.opts.KeepWhiteouts) {
		return tarWhiteout(t, pl, name)
	}
	rel, ok := pl.place(name)
	if !ok {
		return nil
	}
	if rel != "" {
		if err := checkRel(rel); err != nil {
			return err
		}
	}
	mode := hdr.FileInfo().Mode()
	switch hdr.Typeflag {
	case tar.TypeDir:
		return t.dir(rel, mode, hdr.ModTime)
	case tar.TypeReg, tar.TypeRegA: //lint:ignore SA1019 old archives still carry the pre-POSIX flag
		if rel == "" {
			t.skip(hdr.Name, "a file where the kept folder should be")
			return nil
		}
		if !t.keep(rel) {
			return nil
		}
		return t.file(ctx, rel, r, hdr.Size, mode, hdr.ModTime)
	case tar.TypeSymlink:
		if rel == "" {
			t.skip(hdr.Name, "the kept folder itself is a symlink to "+hdr.Linkname+" (not followed)")
			return nil
		}
		if !t.keep(rel) {
			return nil
		}
		target, why := pl.linkTarget(rel, hdr.Linkname)
		if why != "" {
			t.skip(hdr.Name, why)
			return nil
		}
		return t.symlink(rel, target)
	case tar.TypeLink:
		return tarHardlink(t, pl, hdr, rel)
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeChar, tar.TypeBlock:
		t.skip(hdr.Name, "device node")
	case tar.TypeFifo:
		t.skip(hdr.Name, "FIFO")
	default:
		t.skip(hdr.Name, fmt.Sprintf("unsupported entry type %q", hdr.Typeflag))
	}
	return nil
}

// refuseSparse rejects GNU (type 'S') and PAX (GNU.sparse.* records)
// sparse entries: archive/tar would inflate their holes into real zeros,
// counted and written at the logical size the header claims.
func refuseSparse(hdr *tar.Header) error {
	sparse := hdr.Typeflag == tar.TypeGNUSparse
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			sparse = true
		}
	}
	if sparse {
		return fmt.Errorf("%w: %s (logical size %d bytes) is stored sparse, which is not supported: "+
			"re-create the archive without --sparse (GNU tar -S)", ErrSparse, hdr.Name, hdr.Size)
	}
	return nil
}

func tarHardlink(t *tree, pl placer, hdr *tar.Header, rel string) error {
	if rel == "" {
		t.skip(hdr.Name, "the kept folder itself is a hardlink")
		return nil
	}
	tname, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink %s: %w", hdr.Name, err)
	}
	target, ok := pl.place(tname)
	if !ok || target == "" {
		t.skip(hdr.Name, "hardlink to "+hdr.Linkname+", outside the kept folder")
		return nil
	}
	if err := checkRel(target); err != nil {
		return err
	}
	if !t.keep(rel) {
		return nil
	}
	if !t.keep(target) {
		t.skip(hdr.Name, "hardlink to the filtered-out "+hdr.Linkname)
		return nil
	}
	return t.hardlink(rel, target)
}

// tarWhiteout applies or records the whiteout entry name (.wh.X or the
// opaque marker) found in the archive.
func tarWhiteout(t *tree, pl placer, name string) error {
	t.st.Whiteouts++
	dir, base := path.Dir(name), path.Base(name)
	if dir == "." {
		dir = ""
	}
	opaque := base == opaqueMarker
	if !opaque && len(base) > len(whiteoutPrefix+whiteoutPrefix) && base[:len(whiteoutPrefix+whiteoutPrefix)] == whiteoutPrefix+whiteoutPrefix {
		return nil // other .wh..wh. names are AUFS metadata, reserved by the OCI spec
	}
	// What the whiteout removes, as an archive path.
	victim := dir
	if !opaque {
		victim = path.Join(dir, base[len(whiteoutPrefix):])
		if victim == dir || path.Base(victim) == ".." || path.Base(victim) == "." {
			return fmt.Errorf("%w: whiteout %q names no entry", ErrUnsafe, name)
		}
	}
	var rel string
	switch {
	case pl.prefix != "" && pl.covers(victim):
		// The kept folder or a folder above it is removed or made opaque:
		// nothing from lower layers survives.
		rel, opaque = "", true
	default:
		r, ok := pl.place(victim)
		if !ok {
			return nil
		}
		rel = r
		if rel == "" {
			opaque = true
		} else if err := checkRel(rel); err != nil {
			return err
		}
	}
	if t.opts.KeepWhiteouts {
		if opaque {
			return t.marker(path.Join(rel, opaqueMarker))
		}
		return t.marker(path.Join(path.Dir(rel), whiteoutPrefix+path.Base(rel)))
	}
	if opaque {
		return t.opaque(rel)
	}
	return t.whiteout(rel)
}
