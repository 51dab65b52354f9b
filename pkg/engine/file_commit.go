package engine

// Sealing a verified file and giving it its final name.

import (
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// fileMode is the mode a committed file gets: the source's permission bits
// (0644 when unknown), group-readable because model servers run with a
// random UID and GID 0, never setuid/setgid/sticky.
func fileMode(m fs.FileMode) fs.FileMode {
	m = m.Perm()
	if m == 0 {
		m = 0o644
	}
	return m | 0o040
}

// seal closes the verified temporary file with its final mode, mtime and
// verification stamp: the mtime first (the stamp binds it), then one fstat
// that both checks the mode (a temp file created with it needs no chmod)
// and gives the stamp its inode and mtime.
func (fr *fileRun) seal(mode fs.FileMode) error {
	if !fr.f.ModTime.IsZero() {
		fr.setModTime()
	}
	var st unix.Stat_t
	statErr := unix.Fstat(int(fr.tmp.Fd()), &st)
	if statErr != nil || fs.FileMode(st.Mode)&fs.ModePerm != mode || st.Mode&(unix.S_ISUID|unix.S_ISGID|unix.S_ISVTX) != 0 {
		if err := fr.tmp.Chmod(mode); err != nil {
			return fmt.Errorf("set mode of %s: %w", fr.rel, err)
		}
	}
	if statErr == nil {
		writeSealedStamp(fr.tmp, fr.stampValue(), &st)
	}
	if err := fr.tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", fr.rel, err)
	}
	fr.tmp = nil
	if fr.jr != nil {
		fr.jr.close()
		fr.jr = nil
		_ = fr.store.Remove(fr.journalName())
	}
	return nil
}

// setModTime gives the temp file the source's mtime (best effort, as
// before): on the state folder's descriptor when the run has it.
func (fr *fileRun) setModTime() {
	if fr.dirs != nil && leaf(fr.base+".part") {
		if dfd, err := fr.dirs.fd(fr.store, fr.tmpDir); err == nil {
			ts := unix.NsecToTimespec(fr.f.ModTime.UnixNano())
			_ = unix.UtimesNanoAt(dfd, fr.base+".part", []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
			return
		}
	}
	_ = fr.store.Chtimes(fr.tmpName(), fr.f.ModTime, fr.f.ModTime)
}

// commit gives the verified temporary file its final name in DEST.
func (fr *fileRun) commit(dest *os.Root) error {
	if err := fr.seal(fileMode(fr.f.Mode)); err != nil {
		return err
	}
	var err error
	// A held file (a commit-together plan) goes to its held name in the
	// state folder; only a file committed straight to DEST's top takes the
	// descriptor fast path.
	if !fr.hold && fr.dirs != nil && fr.store == dest && leaf(fr.rel) && leaf(fr.base+".part") {
		err = fr.renameTop(dest)
	} else {
		err = replace(dest, fr.tmpName(), fr.finalName())
	}
	if err != nil {
		return fmt.Errorf("commit %s (a symlink in DEST pointing outside it is refused): %w", fr.rel, err)
	}
	return nil
}

// renameTop moves the temp file to a name at the top of DEST: one renameat
// between the two folders' descriptors. renameat never follows a symlink at
// the final name (it replaces the link) and refuses a folder there.
func (fr *fileRun) renameTop(dest *os.Root) error {
	from, err := fr.dirs.fd(fr.store, fr.tmpDir)
	if err != nil {
		return err
	}
	to, err := fr.dirs.fd(dest, ".")
	if err != nil {
		return err
	}
	if err := unix.Renameat(from, fr.base+".part", to, fr.rel); err != nil {
		if fi, serr := dest.Lstat(fr.rel); serr == nil && fi.IsDir() {
			return errIsFolder(fr.rel)
		}
		return &os.LinkError{Op: "renameat", Old: fr.tmpName(), New: fr.rel, Err: err}
	}
	return nil
}
