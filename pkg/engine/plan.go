package engine

import (
	"context"
	"io"
	"os"

	"go.uber.org/zap"
)

// Plan is a provider's description of one source: what to produce under
// DEST and how to read each byte of it. Providers build plans and run
// nothing; Engine.Run executes a plan under the engine's rules (one request
// bound, retries, stall watchdog, verification, resume, staging, atomic
// commit, cache, dry-run, include/exclude, disk pre-flight).
type Plan struct {
	// Source names the source in logs and messages. It must already be
	// redacted (no user info, query or fragment).
	Source string
	// Resolved says what the source resolved to (an image digest, a Hub
	// commit), for the log and --dry-run; may be empty.
	Resolved string
	// Files are plain files, each read with ranged (or single-stream)
	// reads, verified and committed on its own.
	Files []File
	// Units are trees unpacked from blobs (OCI tar layers, an http
	// archive) and committed together once every blob is verified.
	Units []Unit
	// Links are symlinks to create in DEST (a claim already mounted in the
	// pod): nothing is read. Each carries its integrity record.
	Links []Link
	// Checked are files verified in place and reported; nothing is written
	// (pvc verify mode).
	Checked []FileResult
	// Skipped lists what the provider left out on purpose (a layer of an
	// unknown media type), for the log and --dry-run.
	Skipped []string
	// Close, when set, releases what planning opened; Run calls it.
	Close func()
	// CommitTogether holds every file and unit of the plan until all of
	// them are verified (hold.go): then they get their final names; on any
	// failure none does, and the verified ones wait for a rerun. Links are
	// made as usual (nothing is read for them).
	CommitTogether bool
}

// Unit is a tree built from blobs and committed into DEST at once: files of
// a unit never get their final names before every blob of the unit has
// been fetched, verified and unpacked. Its state lives in DEST's state
// folder with an explicit marker per phase, so a rerun after a failure or
// a kill at any point resumes or starts the unit over, never commits a
// half-built tree.
type Unit struct {
	// ID is stable across reruns for the same content (an image digest, an
	// archive's URL and validator); it names the unit's stage.
	ID string
	// Name is the unit in messages ("oci://reg/repo@sha256:…").
	Name string
	// Blobs are fetched, verified and unpacked, several at once, each into
	// a folder of its own.
	Blobs []Blob
	// Merge stacks the unpacked blob folders (relative to root, in Blobs
	// order) onto the folder into, the unit's tree, consuming them (OCI
	// layers with whiteouts). Nil: the folders are moved in order, later
	// files replacing earlier ones, without whiteouts.
	Merge func(ctx context.Context, root *os.Root, dirs []string, into string) error
	// Check, when set, inspects the merged tree before it is committed (a
	// modelcar with nothing under /models fails here).
	Check func(root *os.Root, stats []UnpackStats) error
	// Verified describes, in the summary, how the unit's files were
	// verified ("sha256 (OCI layer digest)"); default: the blobs' check.
	Verified string
}

// Blob is one input of a unit. Its bytes are verified against File.Expect
// as they are unpacked: Unpack's reader returns an error instead of io.EOF
// when the blob does not match, so nothing unpacked from a bad blob is ever
// committed.
type Blob struct {
	// File describes the blob (Path is only a name for messages; Size,
	// Expect, Identity and Source as for files).
	File
	// Note says, in --dry-run, what the blob is and becomes.
	Note string
	// Seekable asks for the whole verified blob on disk before Unpack runs
	// (zip archives): UnpackSource.File is then set.
	Seekable bool
	// Unpack writes the blob's content into dir. It must be confined to
	// dir and honour opts (caps, include/exclude).
	Unpack func(ctx context.Context, src UnpackSource, dir *os.Root, opts UnpackOptions) (UnpackStats, error)
}

// UnpackSource is what Unpack reads: a stream of the blob's bytes, and for
// a Seekable blob the verified file itself.
type UnpackSource struct {
	io.Reader
	// File is the whole blob, already verified (Seekable blobs only).
	File *os.File
	// Size is the blob's size (-1 when unknown).
	Size int64
}

// UnpackOptions are the engine's rules an unpacker applies.
type UnpackOptions struct {
	// Keep says whether a path (relative to DEST) is wanted
	// (include/exclude); never nil.
	Keep func(rel string) bool
	// MaxBytes and MaxEntries cap what one unit may unpack (tar bombs).
	MaxBytes   int64
	MaxEntries int64
	// FreeBytes reports the space left on DEST's filesystem (-1 unknown),
	// for unpackers that check it while they write.
	FreeBytes func() int64
	// Log receives a line per entry left out (never nil).
	Log *zap.Logger
}

// UnpackStats is what one blob unpacked.
type UnpackStats struct {
	Files   int
	Bytes   int64
	Skipped int
	// Roots are the top-level names seen (for an error that says what an
	// image holds instead of a model).
	Roots []string
	// Format names what was unpacked ("tar+gzip", "zip").
	Format string
}

// Link is a symlink Run creates at Path (relative to DEST) to Target (an
// absolute path outside DEST, already checked by the provider), or with
// Dir a real folder for links below it. An entry already present in DEST
// is left alone (a folder left alone skips the links below it); a symlink
// already pointing at Target counts as made.
type Link struct {
	Path   string
	Target string
	Dir    bool
	// Results are reported for the files the link exposes; LeftAlone
	// instead when DEST already had something else at Path.
	Results   []FileResult
	LeftAlone []FileResult
}
