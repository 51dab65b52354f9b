package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// seal is what the inserting side verified, stored beside the entry
// (entries/KK/KEY.seal, written with write + rename): the SHA-256 of the
// entry's bytes, and the inode it verified them in. A hit whose inode is
// still the sealed one, unchanged since (same device, inode, size, mtime
// and ctime; any write, truncation, chmod or rename over the entry moves
// the ctime, which no unprivileged process can set back), is served as
// sealed; any other is hashed again and served only when its SHA-256 is the
// seal's (and the source's own checksum, when it has one, matches too).
// Size-only and CRC-only sources are safe to reuse because of the seal.
type seal struct {
	sha256       string // hex
	size         int64
	dev, ino     uint64
	ctime, mtime int64 // ns
}

const sealVersion = "v1"

func (s seal) String() string {
	return fmt.Sprintf("%s sha256=%s size=%d dev=%d ino=%d ctime=%d mtime=%d\n",
		sealVersion, s.sha256, s.size, s.dev, s.ino, s.ctime, s.mtime)
}

func parseSeal(b []byte) (seal, bool) {
	var s seal
	var v string
	n, err := fmt.Sscanf(string(b), "%s sha256=%s size=%d dev=%d ino=%d ctime=%d mtime=%d",
		&v, &s.sha256, &s.size, &s.dev, &s.ino, &s.ctime, &s.mtime)
	if err != nil || n != 7 || v != sealVersion || len(s.sha256) != sha256.Size*2 {
		return seal{}, false
	}
	return s, true
}

// bound records st as the inode the seal's bytes are in.
func (s seal) bound(st *unix.Stat_t) seal {
	s.dev, s.ino, s.size = uint64(st.Dev), st.Ino, st.Size //nolint:unconvert // Dev's type differs between platforms
	s.ctime, s.mtime = st.Ctim.Nano(), st.Mtim.Nano()
	return s
}

// binds says st is the sealed inode, unchanged since it was sealed.
func (s seal) binds(st *unix.Stat_t) bool {
	return s.dev == uint64(st.Dev) && s.ino == st.Ino && s.size == st.Size && //nolint:unconvert
		s.ctime == st.Ctim.Nano() && s.mtime == st.Mtim.Nano()
}

func fstat(f *os.File) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(int(f.Fd()), &st)
	return st, err
}

// openNoFollow opens name (in the cache) read-only without following a
// symlink at its last component (a planted link is never served) and
// without blocking on a FIFO planted in its place.
func (c *Cache) openNoFollow(name string) (*os.File, error) {
	d, err := c.root.Open(path.Dir(name))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fd, err := unix.Openat(int(d.Fd()), path.Base(name), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), path.Join(c.dir, name)), nil
}

func (c *Cache) readSeal(k string) (seal, bool) {
	f, err := c.openNoFollow(entryName(k) + ".seal")
	if err != nil {
		return seal{}, false
	}
	defer f.Close()
	if st, err := fstat(f); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size > 512 {
		return seal{}, false
	}
	b, err := io.ReadAll(io.LimitReader(f, 512))
	if err != nil {
		return seal{}, false
	}
	return parseSeal(b)
}

// writeSeal stores s beside entry k, atomically (a name of its own in
// tmp/, then a rename: readers never see half a seal).
func (c *Cache) writeSeal(k string, s seal) error {
	// A random name: in containers every process may be PID 1.
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join("tmp", fmt.Sprintf("%s.seal.%x", k, rnd))
	f, err := c.root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
	if err != nil {
		return fmt.Errorf("write cache seal: %w", err)
	}
	_, err = f.WriteString(s.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = c.root.Rename(tmp, entryName(k)+".seal")
	}
	if err != nil {
		_ = c.root.Remove(tmp)
		return fmt.Errorf("write cache seal: %w", err)
	}
	return nil
}

// sha256Of hashes f's first size bytes, stopping when ctx ends.
func sha256Of(ctx context.Context, f *os.File, size int64) (string, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		h.Write(buf[:n])
		off += int64(n)
		if err != nil && off < size {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cacheHit is a verified entry, open: it is materialised from this very
// descriptor, never reopened by name.
type cacheHit struct {
	f    *os.File
	st   unix.Stat_t
	seal seal
}

func (h *cacheHit) close() {
	if h != nil {
		h.f.Close()
	}
}

// lookup returns entry k open and verified for fr, or nil (a miss). An
// entry that is not a regular file of the expected size, has no valid
// seal, or whose bytes do not match its seal or the source's checksum is
// removed (the caller holds the entry's lock).
func (c *Cache) lookup(ctx context.Context, fr *fileRun, k string, log *zap.Logger) *cacheHit {
	reject := func(why string) *cacheHit {
		if ctx.Err() == nil {
			log.Warn("cache entry failed verification; replacing it", zap.String("path", fr.rel),
				zap.String("entry", path.Join(c.dir, entryName(k))), zap.String("error", why))
			c.drop(k)
		}
		return nil
	}
	f, err := c.openNoFollow(entryName(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return reject(err.Error()) // ELOOP: a symlink planted as the entry
	}
	h := &cacheHit{f: f}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	if h.st, err = fstat(f); err != nil {
		return reject(err.Error())
	}
	if h.st.Mode&unix.S_IFMT != unix.S_IFREG || h.st.Size != fr.f.Size {
		return reject(fmt.Sprintf("not a regular file of %d bytes", fr.f.Size))
	}
	s, sealed := c.readSeal(k)
	if !sealed || s.size != fr.f.Size {
		return reject("no valid seal")
	}
	if !s.binds(&h.st) {
		// Changed, replaced or copied since it was sealed: its bytes decide.
		sum, err := sha256Of(ctx, f, fr.f.Size)
		if err != nil {
			return reject(err.Error())
		}
		if sum != s.sha256 {
			return reject("sha256 " + sum + " is not the sealed " + s.sha256)
		}
		if err := fr.checkEntry(f); err != nil {
			return reject(err.Error())
		}
		s = s.bound(&h.st)
		_ = c.writeSeal(k, s) // best effort: the next hit hashes again
	}
	h.seal = s
	c.touch(k)
	ok = true
	return h
}

// checkEntry verifies f against the source's own checksum, when it has one.
func (fr *fileRun) checkEntry(f *os.File) error {
	if fr.chk.want == nil {
		return nil
	}
	sums, err := hashReadBack(f, newDigestLane(fr.chk.want.Algorithm, fr.bounds()), fr.f.Size)
	if err == nil {
		_, err = fr.compare(sums)
	}
	return err
}

// errEntryChanged: the entry changed while it was materialised.
var errEntryChanged = errors.New("the cache entry changed while it was copied")

// materialize puts the verified entry h at rel in DEST: a hardlink of the
// verified descriptor's inode when DEST is on the cache's filesystem, else
// a reflink, else a parallel copy from that descriptor; always through a
// temporary name and a rename, like every commit. The entry is checked
// again afterwards: bytes changed meanwhile are never committed.
func (c *Cache) materialize(dest *os.Root, fr *fileRun, k string, h *cacheHit) (string, error) {
	tmp := path.Join(StateDir, fr.base+".part")
	_ = dest.Remove(tmp)
	how, err := linkInto(dest, h, tmp)
	if err != nil {
		if how, err = copyInto(dest, fr, h, tmp); err != nil {
			return "", err
		}
	}
	after, err := fstat(h.f)
	if err != nil || after.Ino != h.st.Ino || after.Size != h.st.Size || after.Mtim != h.st.Mtim {
		_ = dest.Remove(tmp)
		return "", errEntryChanged
	}
	if how != "hardlink" && after.Ctim != h.st.Ctim && !copyMatches(dest, tmp, fr.f.Size, h.seal.sha256) {
		// Something changed the entry while it was copied (another
		// process's hardlink does too): only a copy that matches the seal
		// is committed.
		_ = dest.Remove(tmp)
		return "", errEntryChanged
	}
	if err := replace(dest, tmp, fr.finalName()); err != nil {
		_ = dest.Remove(tmp)
		return "", fmt.Errorf("commit %s: %w", fr.rel, err)
	}
	if how == "hardlink" {
		// Our link and its rename moved the inode's ctime: seal it again,
		// or the next hit would hash it.
		if now, err := fstat(h.f); err == nil && now.Ino == h.st.Ino && now.Size == h.st.Size && now.Mtim == h.st.Mtim {
			_ = c.writeSeal(k, h.seal.bound(&now))
		}
	}
	return how, nil
}

// copyMatches says the copy at tmp in dest has the sealed SHA-256.
func copyMatches(dest *os.Root, tmp string, size int64, want string) bool {
	f, err := dest.Open(tmp)
	if err != nil {
		return false
	}
	defer f.Close()
	sum, err := sha256Of(context.Background(), f, size)
	return err == nil && sum == want
}

// linkInto hardlinks the inode h has open (not a name, which may have been
// swapped since) at tmp, through /proc/self/fd; without procfs it links by
// name and keeps the link only if it is that inode.
func linkInto(dest *os.Root, h *cacheHit, tmp string) (string, error) {
	dst, err := dest.Open(path.Dir(tmp))
	if err != nil {
		return "", err
	}
	defer dst.Close()
	proc := "/proc/self/fd/" + strconv.Itoa(int(h.f.Fd()))
	err = unix.Linkat(unix.AT_FDCWD, proc, int(dst.Fd()), path.Base(tmp), unix.AT_SYMLINK_FOLLOW)
	if errors.Is(err, unix.ENOENT) {
		if _, perr := os.Stat("/proc/self/fd"); perr != nil {
			err = unix.Linkat(unix.AT_FDCWD, h.f.Name(), int(dst.Fd()), path.Base(tmp), 0)
		}
	}
	if err != nil {
		return "", err // EXDEV across filesystems, EPERM (protected_hardlinks); the caller copies
	}
	var st unix.Stat_t
	if unix.Fstatat(int(dst.Fd()), path.Base(tmp), &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Ino != h.st.Ino || st.Dev != h.st.Dev {
		_ = dest.Remove(tmp)
		return "", errEntryChanged
	}
	return "hardlink", nil
}

func copyInto(dest *os.Root, fr *fileRun, h *cacheHit, tmp string) (string, error) {
	dst, err := dest.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("materialise %s: %w", fr.rel, err)
	}
	defer dst.Close()
	how := "reflink"
	if err := unix.IoctlFileClone(int(dst.Fd()), int(h.f.Fd())); err != nil {
		how = "copy"
		if err := parallelCopy(dst, h.f, fr.f.Size); err != nil {
			return "", fmt.Errorf("copy %s from the cache: %w", fr.rel, err)
		}
	}
	if err := dst.Chmod(fileMode(fr.f.Mode)); err != nil {
		return "", err
	}
	if !fr.f.ModTime.IsZero() {
		_ = dest.Chtimes(tmp, fr.f.ModTime, fr.f.ModTime)
	}
	sealStamp(dst, fr.stampValue())
	return how, dst.Close()
}

// parallelCopy copies in a few concurrent slices, with copy_file_range (in
// the kernel, no user-space buffer) where the filesystems allow it, else
// with a buffer per slice.
func parallelCopy(dst, src *os.File, size int64) error {
	const slices = 4
	step := (size + slices - 1) / slices
	errs := make(chan error, slices)
	for i := int64(0); i < slices; i++ {
		go func(off int64) { errs <- copySlice(dst, src, off, min(off+step, size)) }(i * step)
	}
	var first error
	for range slices {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func copySlice(dst, src *os.File, off, end int64) error {
	roff, woff := off, off
	for roff < end {
		n, err := unix.CopyFileRange(int(src.Fd()), &roff, int(dst.Fd()), &woff, int(end-roff), 0)
		if err != nil {
			break // EXDEV, EINVAL, ENOSYS…: copy through a buffer below
		}
		if n == 0 {
			return fmt.Errorf("unexpected end of cache entry at %d", roff)
		}
	}
	buf := make([]byte, 1<<20)
	for roff < end {
		n, err := src.ReadAt(buf[:min(int64(len(buf)), end-roff)], roff)
		if n > 0 {
			if _, werr := dst.WriteAt(buf[:n], roff); werr != nil {
				return werr
			}
			roff += int64(n)
		}
		if err != nil && roff < end {
			return err
		}
	}
	return nil
}

// insert moves a verified download (tmp/KEY.part, open as fr.tmp) into its
// entry and seals it: the SHA-256 of the bytes verified (the source's own
// when it is one, else computed from the descriptor that was verified) and
// the inode they are in. It returns the entry, open, for materialize.
func (c *Cache) insert(ctx context.Context, fr *fileRun, k string) (*cacheHit, error) {
	if err := c.root.MkdirAll(entryDir(k), 0o755); err != nil {
		return nil, fmt.Errorf("cache insert: %w", err)
	}
	f, err := dupFile(fr.tmp)
	if err != nil {
		return nil, fmt.Errorf("cache insert: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	sum, err := fr.sealDigest(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("cache insert: %w", err)
	}
	// Entries are read-only: DEST hardlinks share their inode.
	if err := fr.seal(fileMode(fr.f.Mode) &^ 0o222); err != nil {
		return nil, err
	}
	if err := c.root.Rename(fr.tmpName(), entryName(k)); err != nil {
		return nil, fmt.Errorf("cache insert: %w", err)
	}
	after, err := fstat(f)
	if err != nil || after.Size != fr.f.Size {
		return nil, fmt.Errorf("cache insert: %w", errEntryChanged)
	}
	s := seal{sha256: sum}.bound(&after)
	if err := c.writeSeal(k, s); err != nil {
		return nil, err
	}
	c.touch(k)
	ok = true
	return &cacheHit{f: f, st: after, seal: s}, nil
}

// sealedBySource says the source's own checksum is the SHA-256 an entry
// is sealed with.
func (fr *fileRun) sealedBySource() bool {
	w := fr.chk.want
	return w != nil && w.Algorithm == checksum.SHA256 && !w.Composite
}

// sealDigest is the SHA-256 of the verified download f: the source's own,
// else the one computed as the download went (the hasher's seal lane), else computed now.
func (fr *fileRun) sealDigest(ctx context.Context, f *os.File) (string, error) {
	if fr.sealedBySource() {
		return hex.EncodeToString(fr.chk.want.Sum), nil
	}
	if sums, err := fr.sealSums(); err == nil && len(sums) == 1 {
		return hex.EncodeToString(sums[0]), nil
	}
	return sha256Of(ctx, f, fr.f.Size)
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
