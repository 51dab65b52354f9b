package main

// Read-back checks of a tree against a signed manifest: the files of an
// OCI image's layers exist only once unpacked (the engine verified each
// layer's digest as it streamed; the signed per-file digests are checked
// here, reading the merged tree back before it is committed), and warn mode
// checks what was committed. Plain files never come here: their signed
// digests are verified inline by the engine.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"sync"

	"github.com/storage-initializer/storage-initializer/pkg/modelsig"
)

// listTree lists the files under root (rel path → size), without the
// engine's state folder. A symlink is refused unless the signature allows
// symlinks (the reference's allow_symlinks); then it counts as the file it
// points to inside root (os.Root never follows one out of it).
func listTree(root *os.Root, allowSymlinks bool) (map[string]int64, error) {
	out := map[string]int64{}
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p == ".storage-initializer" {
			return fs.SkipDir
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if !allowSymlinks {
				return fmt.Errorf("%s is a symlink and the signature does not allow symlinks (allow_symlinks is false)", p)
			}
			fi, err := root.Stat(p)
			if err != nil {
				return fmt.Errorf("symlink %s: %w", p, err)
			}
			if fi.Mode().IsRegular() {
				out[p] = fi.Size()
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = fi.Size()
		return nil
	})
	return out, err
}

// hashTree checks every path of paths that the manifest lists against its
// signed segments, a few files at a time; the first mismatch (in path
// order) is returned.
func hashTree(ctx context.Context, root *os.Root, m *modelsig.Manifest, paths []string) error {
	sort.Strings(paths)
	errs := make([]error, len(paths))
	sem := make(chan struct{}, max(1, min(4, runtime.GOMAXPROCS(0))))
	var wg sync.WaitGroup
	for i, p := range paths {
		segs, ok := m.Segments(p)
		if !ok {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = hashFile(ctx, root, p, segs)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func hashFile(ctx context.Context, root *os.Root, rel string, segs []modelsig.Segment) error {
	fh, err := root.Open(rel)
	if err != nil {
		return fmt.Errorf("signature: read back %s: %w", rel, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("signature: read back %s: %w", rel, err)
	}
	buf := make([]byte, 1<<20)
	for _, s := range segs {
		end := s.End
		if end < 0 {
			end = fi.Size()
		}
		h := sha256.New()
		sr := &ctxReader{ctx: ctx, r: io.NewSectionReader(fh, s.Start, end-s.Start)}
		n, err := io.CopyBuffer(h, sr, buf)
		if err != nil {
			return fmt.Errorf("signature: read back %s: %w", rel, err)
		}
		if n != end-s.Start {
			return fmt.Errorf("signature: %s is %d bytes, the signature covers bytes %d-%d: the file was changed after signing", rel, fi.Size(), s.Start, end)
		}
		if got := h.Sum(nil); !equalBytes(got, s.SHA256) {
			return fmt.Errorf("signature: %s: sha256 %s of bytes %d-%d, the signature says %s: the file was changed after signing (or the bundle is for another version)",
				rel, hex.EncodeToString(got), s.Start, end, hex.EncodeToString(s.SHA256))
		}
	}
	return nil
}

func equalBytes(a, b []byte) bool { return len(a) == len(b) && string(a) == string(b) }

// ctxReader stops a long read-back when the run is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
