package engine

// Sealing a verified file and giving it its final name.

import (
	"fmt"
	"io/fs"
	"os"
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
// verification stamp.
func (fr *fileRun) seal(mode fs.FileMode) error {
	if err := fr.tmp.Chmod(mode); err != nil {
		return fmt.Errorf("set mode of %s: %w", fr.rel, err)
	}
	if !fr.f.ModTime.IsZero() {
		_ = fr.store.Chtimes(fr.tmpName(), fr.f.ModTime, fr.f.ModTime)
	}
	sealStamp(fr.tmp, fr.stampValue())
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

// commit gives the verified temporary file its final name in DEST.
func (fr *fileRun) commit(dest *os.Root) error {
	if err := fr.seal(fileMode(fr.f.Mode)); err != nil {
		return err
	}
	if err := replace(dest, fr.tmpName(), fr.finalName()); err != nil {
		return fmt.Errorf("commit %s (a symlink in DEST pointing outside it is refused): %w", fr.rel, err)
	}
	return nil
}
