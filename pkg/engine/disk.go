package engine

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// stampXattr marks a committed file with the source version and checksum it
// was verified against, so a rerun skips it without re-reading it.
const stampXattr = "user.storage-initializer"

func readStamp(f *os.File) string { return getXattr(f, stampXattr) }

// getXattr reads a user xattr of an open file ("" when absent or too long:
// the engine's values are short).
func getXattr(f *os.File, name string) string {
	buf := make([]byte, 512)
	n, err := unix.Fgetxattr(int(f.Fd()), name, buf)
	if err != nil || n <= 0 {
		return ""
	}
	return string(buf[:n])
}

// setXattr writes a user xattr of an open file.
func setXattr(f *os.File, name, value string) error {
	return unix.Fsetxattr(int(f.Fd()), name, []byte(value), 0)
}

// sealWindow is how long after its stamp a committed file's ctime may be:
// the stamp is written, then the file is renamed into place (which sets the
// ctime), all within microseconds. A later ctime means the file was changed
// (ctime cannot be set back by an unprivileged user), so it is re-verified.
// A slow machine only costs a re-verification, never trust.
const sealWindow = 500 * time.Millisecond

// sealStamp writes a verified file's stamp, bound to what an in-place
// change cannot keep: inode, mtime (set it first), and a seal time its
// ctime must not move past.
func sealStamp(f *os.File, content string) {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return
	}
	writeSealedStamp(f, content, &st)
}

// writeSealedStamp is sealStamp with the file's stat already taken (after
// its mtime was set).
func writeSealedStamp(f *os.File, content string, st *unix.Stat_t) {
	writeStamp(f, fmt.Sprintf("%s bind=%d:%d:%d", content, st.Ino, st.Mtim.Nano(), time.Now().UnixNano()))
}

// stampContent returns the content part of a stamp when its binding still
// holds for f, else "".
func stampContent(f *os.File) string {
	rec := readStamp(f)
	content, bind, ok := strings.Cut(rec, " bind=")
	if !ok {
		return ""
	}
	var ino uint64
	var mtime, sealed int64
	if _, err := fmt.Sscanf(bind, "%d:%d:%d", &ino, &mtime, &sealed); err != nil {
		return ""
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || st.Ino != ino || st.Mtim.Nano() != mtime {
		return ""
	}
	if c := st.Ctim.Nano(); c < sealed-int64(sealWindow) || c > sealed+int64(sealWindow) {
		return ""
	}
	return content
}

// writeStamp is best effort: filesystems without user xattrs (some tmpfs)
// fall back to re-verifying the file's checksum on the next run.
func writeStamp(f *os.File, stamp string) { _ = setXattr(f, stampXattr, stamp) }

// preallocate reserves the file's blocks so a full disk fails now, not
// halfway, and the ranges written out of order do not fragment the file.
func preallocate(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.ENOSPC) {
		// A failed fallocate may keep the blocks it got before it ran out:
		// give them back, or the temp file would hold the disk full.
		_ = f.Truncate(0)
		return Permanent(fmt.Errorf("no space left to allocate %d bytes: %w", size, err))
	}
	// Filesystems without fallocate: a sparse file of the right size.
	return f.Truncate(size)
}

// freeBytes is the space available to an unprivileged user on dir's filesystem.
func freeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
