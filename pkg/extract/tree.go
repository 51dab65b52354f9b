package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/destpath"
	"github.com/storage-initializer/storage-initializer/pkg/human"
)

// tree writes entries into the destination. It is the only code that
// touches dst, and it enforces the rules every entry type shares: parents
// are real folders (never symlinks), whatever an entry replaces is removed
// first (so a hardlinked sibling is never modified in place), modes are
// masked and mtimes kept.
type tree struct {
	dst  *os.Root
	opts Options
	st   *Stats

	realDirs map[string]bool      // folders known to be real (not symlinks)
	touched  map[string]struct{}  // paths written by this archive (whiteouts spare them)
	dirMeta  map[string]entryMeta // folder modes and mtimes, applied at the end
	roots    map[string]bool
	bytes    int64
	entries  int64
	free     func() int64 // nil: no space check
	stored   int64        // a zip's size, for MaxRatio
}

type entryMeta struct {
	mode  fs.FileMode
	mtime time.Time
}

func newTree(dst *os.Root, opts Options, st *Stats) *tree {
	free := opts.FreeBytes
	if free == nil {
		free = FreeSpace(dst.Name())
	}
	return &tree{dst: dst, opts: opts, st: st, realDirs: map[string]bool{},
		touched: map[string]struct{}{}, dirMeta: map[string]entryMeta{}, roots: map[string]bool{}, free: free}
}

// fileMode is the mode a regular file gets: permission bits only, readable
// by its owner and group (model servers run with a random UID and GID 0).
func fileMode(m fs.FileMode) fs.FileMode { return m.Perm() | 0o440 }

// dirMode keeps folders traversable by owner and group and writable by the
// owner, so later layers and the commit can still add to them.
func dirMode(m fs.FileMode) fs.FileMode { return m.Perm() | 0o750 }

// count enforces MaxEntries; called once per archive entry.
func (t *tree) count() error {
	t.entries++
	if t.entries > t.opts.MaxEntries {
		return fmt.Errorf("%w: more than %d entries (--max-extract-entries): raise it if the archive is expected to hold this many",
			ErrLimit, t.opts.MaxEntries)
	}
	return nil
}

// reserve enforces MaxBytes before n more bytes are inflated.
func (t *tree) reserve(n int64) error {
	if n < 0 || t.bytes+n > t.opts.MaxBytes || t.bytes+n < t.bytes {
		return fmt.Errorf("%w: more than %s (%d bytes) uncompressed (--max-extract-bytes): raise it if the archive is expected to be this big",
			ErrLimit, human.Bytes(t.opts.MaxBytes), t.opts.MaxBytes)
	}
	t.bytes += n
	return nil
}

func (t *tree) noteRoot(name string) {
	if name == "" || len(t.roots) >= 100 {
		return
	}
	if r := topLevel(name); !t.roots[r] && !isWhiteout(r) {
		t.roots[r] = true
		t.st.Roots = append(t.st.Roots, r)
	}
}

func (t *tree) skip(name, why string) {
	t.st.SkippedCount++
	if len(t.st.Skipped) < maxSkippedListed {
		t.st.Skipped = append(t.st.Skipped, name+": "+why)
	}
	t.opts.Logger.Warn("archive entry skipped", zap.String("entry", name), zap.String("reason", why))
}

// touch records that this archive wrote rel and therefore the folders above
// it: a whiteout in the same archive spares them.
func (t *tree) touch(rel string) {
	for p := rel; ; p = path.Dir(p) {
		if p == "." {
			p = ""
		}
		if _, ok := t.touched[p]; ok {
			return
		}
		t.touched[p] = struct{}{}
		if p == "" {
			return
		}
	}
}

func (t *tree) mine(rel string) bool { _, ok := t.touched[rel]; return ok }

func (t *tree) keep(rel string) bool { return t.opts.Keep == nil || t.opts.Keep(rel) }

// parents makes sure every folder above rel exists and is a real folder.
func (t *tree) parents(rel string) error {
	dir := path.Dir(rel)
	if dir == "." || t.realDirs[dir] {
		return nil
	}
	if err := t.parents(dir); err != nil {
		return err
	}
	fi, err := t.dst.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := t.dst.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create folder %s: %w", dir, err)
		}
		return t.parents(rel) // re-check what is there now
	case err != nil:
		return fmt.Errorf("inspect %s: %w", dir, err)
	case !fi.IsDir() && t.opts.Whiteouts && !t.mine(dir):
		// Layering in place: this layer's folder replaces what a lower
		// layer had there (as it does when layers are merged).
		if err := t.clear(dir); err != nil {
			return err
		}
		return t.parents(rel)
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: %s would be written through the symlink %s", ErrUnsafe, rel, dir)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s needs %s to be a folder, but it is a file", ErrUnsafe, rel, dir)
	}
	t.realDirs[dir] = true
	return nil
}

// clear removes whatever is at rel (any type), so a new entry replaces it.
func (t *tree) clear(rel string) error {
	fi, err := t.dst.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect %s: %w", rel, err)
	}
	if fi.IsDir() {
		t.forget(rel)
		err = t.dst.RemoveAll(rel)
	} else {
		err = t.dst.Remove(rel)
	}
	if err != nil {
		return fmt.Errorf("replace %s: %w", rel, err)
	}
	return nil
}

// forget drops cached knowledge about rel and everything below it.
func (t *tree) forget(rel string) {
	for d := range t.realDirs {
		if under(d, rel) {
			delete(t.realDirs, d)
		}
	}
	for d := range t.dirMeta {
		if under(d, rel) {
			delete(t.dirMeta, d)
		}
	}
}

func (t *tree) dir(rel string, mode fs.FileMode, mtime time.Time) error {
	if rel == "" {
		t.touch(rel)
		return nil // the destination root keeps its own mode
	}
	if err := t.parents(rel); err != nil {
		return err
	}
	t.touch(rel)
	fi, err := t.dst.Lstat(rel)
	if err == nil && !fi.IsDir() {
		if err := t.clear(rel); err != nil {
			return err
		}
		err = fs.ErrNotExist
	}
	if errors.Is(err, fs.ErrNotExist) {
		if err := t.dst.Mkdir(rel, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create folder %s: %w", rel, err)
		}
	} else if err != nil {
		return fmt.Errorf("inspect %s: %w", rel, err)
	}
	t.realDirs[rel] = true
	t.dirMeta[rel] = entryMeta{dirMode(mode), mtime}
	t.st.Dirs++
	return nil
}

// file writes size bytes from r as a new file at rel.
func (t *tree) file(ctx context.Context, rel string, r io.Reader, size int64, mode fs.FileMode, mtime time.Time) error {
	if err := t.room(rel, size); err != nil {
		return err
	}
	f, err := t.create(rel)
	if err != nil {
		return fmt.Errorf("create %s: %w", rel, err)
	}
	if size > spaceCheckEvery && t.free != nil {
		r = &spaceReader{t: t, rel: rel, r: r, left: size}
	}
	n, err := copyFile(ctx, f, r, size)
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	if err := t.dst.Chmod(rel, fileMode(mode)); err != nil {
		return fmt.Errorf("set mode of %s: %w", rel, err)
	}
	if !mtime.IsZero() {
		_ = t.dst.Chtimes(rel, mtime, mtime)
	}
	t.st.Files++
	t.st.Bytes += size
	return nil
}

// marker writes an empty whiteout marker file (KeepWhiteouts) with no
// permission bits: every regular file extracted is at least 0440, so
// ApplyLayer can tell a marker from an artifact's file that is merely
// named .wh.something.
func (t *tree) marker(rel string) error {
	f, err := t.create(rel)
	if err != nil {
		return fmt.Errorf("record whiteout %s: %w", rel, err)
	}
	err = f.Chmod(markerPerm)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record whiteout %s: %w", rel, err)
	}
	return nil
}

// create makes a new, empty file at rel (its folders made, whatever stood
// there cleared), opened for writing.
func (t *tree) create(rel string) (*os.File, error) {
	if err := t.parents(rel); err != nil {
		return nil, err
	}
	t.touch(rel)
	if err := t.clear(rel); err != nil {
		return nil, err
	}
	return t.dst.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

func (t *tree) symlink(rel, target string) error {
	if err := t.parents(rel); err != nil {
		return err
	}
	t.touch(rel)
	if err := t.clear(rel); err != nil {
		return err
	}
	if err := t.dst.Symlink(target, rel); err != nil {
		return fmt.Errorf("create symlink %s: %w", rel, err)
	}
	t.st.Symlinks++
	return nil
}

// hardlink links rel to the regular file at target (both destination paths).
func (t *tree) hardlink(rel, target string) error {
	var fi fs.FileInfo
	err := t.parentsExist(target)
	if err == nil {
		fi, err = t.dst.Lstat(target)
	}
	if err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: hardlink %s → %s: the target is not a file extracted before the link", ErrUnsafe, rel, target)
	}
	if err := t.parents(rel); err != nil {
		return err
	}
	t.touch(rel)
	if rel == target {
		return nil
	}
	if err := t.clear(rel); err != nil {
		return err
	}
	if err := t.dst.Link(target, rel); err != nil {
		return fmt.Errorf("create hardlink %s: %w", rel, err)
	}
	t.st.Hardlinks++
	return nil
}

// whiteout removes rel (Whiteouts mode) unless this archive wrote it. Like
// an overlay filesystem's whiteout, it implies its folder exists in this
// layer.
func (t *tree) whiteout(rel string) error {
	if _, mine := t.touched[rel]; mine {
		return nil
	}
	if err := t.ensureDir(path.Dir(rel)); err != nil {
		return err
	}
	return t.clear(rel)
}

// opaque empties folder rel of everything this archive did not write,
// creating rel if needed; the engine's state folder at the root is never
// touched.
func (t *tree) opaque(rel string) error {
	if err := t.ensureDir(rel); err != nil {
		return err
	}
	return t.empty(rel)
}

// ensureDir makes rel a real folder written by this archive.
func (t *tree) ensureDir(rel string) error {
	if rel == "." {
		rel = ""
	}
	if rel == "" || t.realDirs[rel] {
		t.touch(rel)
		return nil
	}
	if err := t.parents(rel); err != nil {
		return err
	}
	fi, err := t.dst.Lstat(rel)
	switch {
	case err == nil && fi.IsDir():
	case err == nil && t.mine(rel):
		return fmt.Errorf("%w: a whiteout in %s would be written through the entry already there", ErrUnsafe, rel)
	default:
		if err := t.clear(rel); err != nil {
			return err
		}
		if err := t.dst.Mkdir(rel, 0o755); err != nil {
			return fmt.Errorf("create folder %s: %w", rel, err)
		}
	}
	t.realDirs[rel] = true
	t.touch(rel)
	return nil
}

func (t *tree) empty(rel string) error {
	dir := rel
	if dir == "" {
		dir = "."
	}
	f, err := t.dst.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, n := range names {
		child := path.Join(rel, n)
		if rel == "" && n == destpath.StateDir {
			continue
		}
		if _, mine := t.touched[child]; mine {
			if fi, err := t.dst.Lstat(child); err == nil && fi.IsDir() {
				if err := t.empty(child); err != nil {
					return err
				}
			}
			continue
		}
		if err := t.clear(child); err != nil {
			return err
		}
	}
	return nil
}

// parentsExist checks, without creating anything, that rel's parents are
// real folders.
func (t *tree) parentsExist(rel string) error {
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		if t.realDirs[dir] {
			continue
		}
		fi, err := t.dst.Lstat(dir)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a folder", dir)
		}
	}
	return nil
}

// finish applies folder modes and mtimes, deepest first, after every entry
// inside them has been written.
func (t *tree) finish() {
	dirs := make([]string, 0, len(t.dirMeta))
	for d := range t.dirMeta {
		dirs = append(dirs, d)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		m := t.dirMeta[d]
		_ = t.dst.Chmod(d, m.mode)
		if !m.mtime.IsZero() {
			_ = t.dst.Chtimes(d, m.mtime, m.mtime)
		}
	}
}

// onlyWriter hides *os.File's ReadFrom, whose generic fallback would copy
// through a 32 KiB buffer instead of ours.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// ctxReader stops a long copy when the context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// isWhiteout reports whether base is an OCI whiteout name.
func isWhiteout(base string) bool { return strings.HasPrefix(base, whiteoutPrefix) }

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	markerPerm     = 0o000
)

// isMarker reports whether fi is a whiteout marker written by marker: an
// empty regular file without the read bits fileMode always sets.
func isMarker(fi fs.FileInfo) bool {
	return fi.Mode().IsRegular() && fi.Size() == 0 && fi.Mode().Perm()&0o440 == 0
}
