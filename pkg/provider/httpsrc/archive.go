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
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// sniffBytes is how much of an extensionless file is read to sniff it: a
// tar header, or enough of a gzip/zstd stream to inflate one.
const sniffBytes = 64 << 10

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

// sniffRemote reads the first bytes of an extensionless file to tell an
// archive from a model file, before anything is planned.
func (p *Provider) sniffRemote(ctx context.Context, r *request, m remote) (string, error) {
	var head []byte
	err := p.set.Retry(ctx, "GET "+r.t.display+" (first bytes)", func(ctx context.Context) error {
		var err error
		head, err = r.head(ctx, m, sniffBytes)
		return err
	})
	if err != nil {
		return "", err
	}
	return sniff(bytes.NewReader(head)), nil
}

// archiveUnit is the plan of an archive: one blob, verified as the file
// would be, unpacked by the safe extractor; the unit commits its contents.
func archiveUnit(t target, f engine.File, kind string) engine.Unit {
	id := "http " + t.display
	if f.Identity != "" {
		id = f.Identity
	}
	if len(t.expect) > 0 {
		id += " " + t.expect[0].String()
	}
	verified := "size only"
	if len(t.expect) > 0 {
		verified = string(t.expect[0].Algorithm)
	}
	b := engine.Blob{File: f, Seekable: kind == kindZip, Unpack: unpacker(t.name, kind)}
	b.Path = t.name
	return engine.Unit{ID: id, Name: t.display, Blobs: []engine.Blob{b},
		Verified: fmt.Sprintf("from %s (%s)", t.name, verified),
		Check: func(_ *os.Root, stats []engine.UnpackStats) error {
			if len(stats) == 0 || stats[0].Files == 0 {
				return fmt.Errorf("archive %s holds no files (or none matches the include/exclude patterns): check the archive", t.name)
			}
			return nil
		}}
}

// unpacker extracts a tar (plain, gzip, zstd) or zip archive.
func unpacker(name, kind string) func(context.Context, engine.UnpackSource, *os.Root, engine.UnpackOptions) (engine.UnpackStats, error) {
	return func(ctx context.Context, src engine.UnpackSource, dir *os.Root, o engine.UnpackOptions) (engine.UnpackStats, error) {
		opts := provider.ExtractOptions(o)
		var (
			us  engine.UnpackStats
			err error
		)
		if kind == kindZip {
			var st extract.Stats
			st, err = extract.Zip(ctx, src.File, src.Size, dir, opts)
			us = provider.Stats(st, kindZip)
		} else {
			us, err = provider.UnpackTar(ctx, src, dir, opts)
		}
		if err != nil {
			return engine.UnpackStats{}, fmt.Errorf("extract %s: %w", name, err)
		}
		return us, nil
	}
}
