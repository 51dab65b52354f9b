// Package extract unpacks tar and zip archives (and OCI image layers) into a
// folder without ever writing outside it.
//
// Every write goes through an *os.Root, so nothing can be opened outside the
// destination even through a symlink planted by an earlier entry; on top of
// that the extractor refuses to write through any symlink at all, keeps
// symlinks only when their target stays inside the destination, masks modes
// (no setuid/setgid/sticky, group-readable), never chowns, keeps mtimes, and
// caps the bytes and entries an archive may produce.
//
// Policy for hostile or unusual entries:
//
//   - error (the archive is refused): absolute names, ".." components, NUL,
//     CR or LF in a name, an entry that would be written through a symlink,
//     a hardlink whose target is unsafe or was not extracted before it, more
//     bytes or entries than the caps, a file larger than the space left on
//     the destination's filesystem, an archive that inflates more than
//     MaxRatio times its stored size, a sparse tar entry (GNU or PAX):
//     its holes would be written as real zeros, so a 2 KiB archive could
//     claim a terabyte; models are never sparse, and refusing is simpler
//     and safer than recreating holes from a sparse map.
//   - skipped (logged at warn, listed in Stats.Skipped): devices, FIFOs,
//     sockets and unknown entry types, symlinks whose target leaves the
//     destination (or, with Prefix, the kept folder), symlink targets that
//     are not in canonical form ("a/../b"), hardlinks to entries outside
//     Prefix or rejected by Keep.
//   - rewritten: an absolute symlink target that points inside the kept tree
//     becomes the equivalent relative target, so it still resolves once the
//     tree is mounted elsewhere (e.g. /models/a → a for a modelcar mounted at
//     /mnt/models).
package extract

import (
	"errors"

	"go.uber.org/zap"
)

// Defaults for Options.MaxBytes and Options.MaxEntries: generous enough for
// the largest models, small enough to stop a decompression bomb before it
// fills a node's disk.
const (
	DefaultMaxBytes   int64 = 1 << 40 // 1 TiB
	DefaultMaxEntries int64 = 1_000_000
	// DefaultMaxRatio bounds bytes inflated per byte of the stored
	// archive, over the whole archive. Model weights compress 1–2×; gzip
	// cannot exceed about 1030× even on pure zeros, so 1000× is reached
	// only by an archive more than 99.9% zero runs (a file of zeros next
	// to real weights averages far below it). zstd can inflate zeros
	// further: set MaxRatio < 0 for such archives.
	DefaultMaxRatio int64 = 1000
)

// ratioGrace is inflated without a ratio check: small archives (configs,
// tokenizers) may compress extremely well and can do no harm.
const ratioGrace = 16 << 20

// spaceCheckEvery is how often (in bytes written) a large file re-checks
// the free space left for the rest of it.
const spaceCheckEvery = 64 << 20

// maxSkippedListed bounds Stats.Skipped; the count goes on in SkippedCount.
const maxSkippedListed = 1000

// ErrUnsafe is wrapped by every error about an entry that could escape the
// destination or damage it.
var ErrUnsafe = errors.New("unsafe archive entry")

// ErrLimit is wrapped when an archive exceeds MaxBytes, MaxEntries or
// MaxRatio.
var ErrLimit = errors.New("archive too large")

// ErrNoSpace is wrapped when a file would not fit in the space left on the
// destination's filesystem.
var ErrNoSpace = errors.New("not enough space")

// ErrSparse is wrapped when a tar holds a sparse entry (refused, see the
// package documentation).
var ErrSparse = errors.New("sparse archive entry")

// Options controls an extraction.
type Options struct {
	// Prefix keeps only entries under this folder of the archive (e.g.
	// "models" for a modelcar image) and strips it from their names; ""
	// keeps everything.
	Prefix string
	// Base places entries under this folder of the destination unless their
	// name (after Prefix) already starts with it. OCI artifact layers name
	// their files either relative to the model root ("dir/a") or relative
	// to the folder they describe ("a"); both land at dir/a.
	Base string
	// Whiteouts applies OCI whiteouts (.wh.NAME removes NAME,
	// .wh..wh..opq empties the folder) to what is already in the
	// destination, as when layers are applied one after another in place.
	Whiteouts bool
	// KeepWhiteouts stores whiteouts as empty marker files instead of
	// applying them, for layers extracted in parallel into folders of their
	// own and merged in order later with ApplyLayer. A whiteout of Prefix
	// itself (or of a folder above it) becomes an opaque marker at the root.
	KeepWhiteouts bool
	// MaxBytes caps the uncompressed bytes of the archive's regular files
	// (entries outside Prefix included: they still have to be inflated);
	// 0 means DefaultMaxBytes. The CLI sets it from --max-extract-bytes.
	MaxBytes int64
	// MaxEntries caps the number of entries; 0 means DefaultMaxEntries.
	// The CLI sets it from --max-extract-entries.
	MaxEntries int64
	// MaxRatio caps bytes inflated per byte of the stored archive, checked
	// over the whole archive once more than 16 MiB have been inflated;
	// 0 means DefaultMaxRatio, < 0 no bound. Tar measures it when r comes
	// from Decompress or InputBytes is set; Zip against the archive size.
	MaxRatio int64
	// InputBytes reports how many bytes of the stored (compressed) archive
	// Tar has consumed so far, for MaxRatio. Not needed when Tar reads
	// what Decompress returned: that reader counts its input itself.
	InputBytes func() int64
	// FreeBytes reports the space left for files on the destination's
	// filesystem (< 0: unknown, no check). Before each file the announced
	// size is checked against it ("need X, available Y"), and again every
	// 64 MiB while a large file is written. nil uses statfs on the
	// destination; pass func() int64 { return -1 } to disable.
	FreeBytes func() int64
	// Keep, when set, filters entries by their destination-relative path
	// (STORAGE_ALLOW_PATTERNS and friends). Folders are always created.
	Keep func(rel string) bool
	// Logger receives one warning per skipped entry.
	Logger *zap.Logger
}

// Stats summarises an extraction.
type Stats struct {
	Files, Dirs, Symlinks, Hardlinks int
	// Bytes is the size of the regular files written.
	Bytes int64
	// Skipped lists entries left out on purpose, with the reason (at most
	// 1000; SkippedCount has the total).
	Skipped      []string
	SkippedCount int
	// Whiteouts counts whiteout entries applied or stored.
	Whiteouts int
	// Roots lists the archive's top-level names (at most 100), so a caller
	// can say what an image holds when Prefix matched nothing.
	Roots []string
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.MaxRatio == 0 {
		o.MaxRatio = DefaultMaxRatio
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}
