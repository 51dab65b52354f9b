package engine

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// stampXattr marks a committed file with the source version and checksum it
// was verified against, so a rerun skips it without re-reading it.
const stampXattr = "user.storage-initializer"

func readStamp(f *os.File) string {
	buf := make([]byte, 512)
	n, err := unix.Fgetxattr(int(f.Fd()), stampXattr, buf)
	if err != nil || n <= 0 {
		return ""
	}
	return string(buf[:n])
}

// writeStamp is best effort: filesystems without user xattrs (some tmpfs)
// fall back to re-verifying the file's checksum on the next run.
func writeStamp(f *os.File, stamp string) {
	_ = unix.Fsetxattr(int(f.Fd()), stampXattr, []byte(stamp), 0)
}

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
