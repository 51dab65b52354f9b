package provider

import (
	"context"
	"io"
	"os"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/extract"
)

// ExtractOptions are the engine's unpacking rules (include/exclude, the
// --max-extract-* caps, free space, the log) as the extractor takes them:
// the one place a provider's unpacker gets them from.
func ExtractOptions(o engine.UnpackOptions) extract.Options {
	return extract.Options{Keep: o.Keep, MaxBytes: o.MaxBytes, MaxEntries: o.MaxEntries, FreeBytes: o.FreeBytes, Logger: o.Log}
}

// UnpackTar decompresses a tar stream (plain, gzip or zstd) and extracts it
// into dir with opts (from ExtractOptions, plus what the source adds).
func UnpackTar(ctx context.Context, src io.Reader, dir *os.Root, opts extract.Options) (engine.UnpackStats, error) {
	dec, format, err := extract.Decompress(src)
	if err != nil {
		return engine.UnpackStats{}, err
	}
	defer dec.Close()
	st, err := extract.Tar(ctx, dec, dir, opts)
	if err != nil {
		return engine.UnpackStats{}, err
	}
	return Stats(st, "tar+"+format), nil
}

// Stats reports what an extraction unpacked, as the engine records it.
func Stats(st extract.Stats, format string) engine.UnpackStats {
	return engine.UnpackStats{Files: st.Files, Bytes: st.Bytes, Skipped: st.SkippedCount, Roots: st.Roots, Format: format}
}
