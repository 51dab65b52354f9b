package httpsrc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/extract"
)

// archive kinds; compression (gzip, zstd) is sniffed by extract.Decompress.
const (
	kindNone = ""
	kindTar  = "tar"
	kindZip  = "zip"
)

// kindByName recognises the archives KServe unpacks (plus zstd).
func kindByName(name string) string {
	n := strings.ToLower(name)
	for _, s := range []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd", ".tzst"} {
		if strings.HasSuffix(n, s) {
			return kindTar
		}
	}
	if strings.HasSuffix(n, ".zip") {
		return kindZip
	}
	return kindNone
}

// sniffable reports whether a file's content may decide that it is an
// archive: only when its name has no extension. Many model formats are
// zip or tar inside (PyTorch .pt/.pth, TorchServe .mar, NeMo .nemo, Keras
// .keras, NumPy .npz) and must be kept as they are.
func sniffable(name string) bool { return path.Ext(name) == "" }

// sniff recognises a tar (plain, gzip or zstd) or zip archive by content.
func sniff(r io.ReaderAt) string {
	head := make([]byte, 512)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return kindZip
	case isTar(head):
		return kindTar
	}
	dr, format, err := extract.Decompress(io.NewSectionReader(r, 0, 4<<20))
	if err != nil || format == "none" {
		return kindNone
	}
	defer dr.Close()
	inner := make([]byte, 512)
	n, _ = io.ReadFull(dr, inner)
	if isTar(inner[:n]) {
		return kindTar
	}
	return kindNone
}

func isTar(h []byte) bool { return len(h) >= 262 && string(h[257:262]) == "ustar" }

// unpacked is an archive extracted into a stage, not yet committed.
type unpacked struct {
	stage *engine.Stage
	stats extract.Stats
}

// unpack extracts archive (size bytes, of kind) into a staging folder in
// DEST through the safe extractor; nothing is visible in DEST before the
// caller commits.
func (p *Provider) unpack(ctx context.Context, dest, name, kind string, archive *os.File, size int64) (*unpacked, error) {
	st, err := engine.NewStage(dest, "http-unpack-"+name)
	if err != nil {
		return nil, err
	}
	if err := st.Reset(); err != nil { // a stage left by a killed run
		st.Discard()
		return nil, err
	}
	opts := extract.Options{Keep: p.eng.Keep, Logger: p.log}
	var stats extract.Stats
	switch kind {
	case kindZip:
		stats, err = extract.Zip(ctx, archive, size, st.Root(), opts)
	default:
		var rc io.ReadCloser
		rc, _, err = extract.Decompress(archive)
		if err == nil {
			stats, err = extract.Tar(ctx, rc, st.Root(), opts)
			rc.Close()
		}
	}
	if err != nil {
		st.Discard()
		return nil, engine.Permanent(fmt.Errorf("extract %s: %w", name, err))
	}
	if stats.Files == 0 {
		st.Discard()
		return nil, engine.Permanent(fmt.Errorf("archive %s holds no files (or none matches the include/exclude patterns): check the archive", name))
	}
	return &unpacked{stage: st, stats: stats}, nil
}

// commit moves the extracted files into DEST and reports each regular file
// as verified through the archive.
func (u *unpacked) commit(ctx context.Context, dest, name string, archive engine.FileResult) (*engine.Report, error) {
	moved, err := u.stage.Commit(ctx)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", dest, err)
	}
	defer root.Close()
	rep := &engine.Report{Fetched: archive.Fetched}
	verified := fmt.Sprintf("from %s (%s)", name, archive.Verified)
	for _, rel := range moved {
		fi, err := root.Lstat(rel)
		if err != nil || !fi.Mode().IsRegular() {
			continue // symlinks are not files of their own
		}
		rep.Files = append(rep.Files, engine.FileResult{Path: rel, Size: fi.Size(), Status: engine.StatusDownloaded,
			Verified: verified})
		rep.Bytes += fi.Size()
	}
	return rep, nil
}
