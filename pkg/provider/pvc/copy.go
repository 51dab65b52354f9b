package pvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// copyFiles plans every file for the engine, which reads ranges in
// parallel, verifies the manifest's SHA-256 (else the size) and commits
// each file atomically; a rerun keeps files already copied and resumes
// partial ones. Files reached through symlinks are copied as regular files.
func copyFiles(t *tree, m manifest) []engine.File {
	files := make([]engine.File, 0, len(t.files))
	for _, n := range t.files {
		f := engine.File{
			Path:     n.rel,
			Size:     n.info.Size(),
			Mode:     n.info.Mode().Perm(),
			ModTime:  n.info.ModTime(),
			Identity: identity(n.real, n.info),
			Source:   &fileLoader{path: n.real, size: n.info.Size(), mtime: n.info.ModTime()},
		}
		if v, ok := m.sums[n.rel]; ok {
			f.Expect = []checksum.Value{v}
		}
		files = append(files, f)
	}
	return files
}

// identity names this version of a local file for the engine's resume
// journal, the stamp that lets a rerun skip a file already copied, and the
// node cache's key: path, device and inode say which file, size and mtime
// which version.
func identity(real string, fi fs.FileInfo) string {
	var dev, ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		dev, ino = uint64(st.Dev), st.Ino //nolint:unconvert // Dev's type differs between platforms
	}
	return fmt.Sprintf("local %s dev=%d ino=%d size=%d mtime=%d", real, dev, ino, fi.Size(), fi.ModTime().UnixNano())
}

// fileLoader reads ranges of a local file. Each Load opens the file anew, so
// the descriptors open at once are bounded by the engine's concurrency.
type fileLoader struct {
	path  string
	size  int64
	mtime time.Time
}

// Load implements engine.Loader.
func (l *fileLoader) Load(ctx context.Context, length, offset int64, fn func(io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err // a local read has no request to cancel: check before it starts
	}
	f, err := os.Open(l.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return engine.Permanent(fmt.Errorf("open %s: %w", l.path, err))
		}
		return fmt.Errorf("open %s: %w", l.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", l.path, err)
	}
	if fi.Size() != l.size || !fi.ModTime().Equal(l.mtime) {
		return engine.Permanent(fmt.Errorf("%s changed during the copy (size or modification time): run again once it is stable", l.path))
	}
	return fn(io.NewSectionReader(f, offset, length))
}
