// Package engine turns a provider's plan — the files to produce and a way to
// read any byte range of each — into verified files under DEST.
//
// It owns scheduling (one global bound on requests in flight), retries,
// resume (a journal beside each temporary file), verification and the atomic
// commit: no file ever has its final name before it is complete and verified.
// Providers own their protocol and nothing else.
package engine

import (
	"context"
	"io"
	"io/fs"
	"time"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// Loader reads byte ranges of one source file. It follows restic's backend
// contract: Load calls fn with a reader that yields exactly length bytes
// starting at offset. One call to Load is one attempt; the engine wraps
// loaders with its retry policy, so fn may be called more than once and must
// be idempotent. Errors that must not be retried are wrapped with Permanent.
type Loader interface {
	Load(ctx context.Context, length, offset int64, fn func(io.Reader) error) error
}

// LoaderFunc adapts a function to Loader.
type LoaderFunc func(ctx context.Context, length, offset int64, fn func(io.Reader) error) error

// Load implements Loader.
func (f LoaderFunc) Load(ctx context.Context, length, offset int64, fn func(io.Reader) error) error {
	return f(ctx, length, offset, fn)
}

// File is one file to produce under DEST.
type File struct {
	// Path is slash-separated and relative to DEST. Paths that are absolute,
	// contain "..", or would resolve through a symlink leaving DEST are rejected.
	Path string
	// Size in bytes; the engine fetches exactly this many.
	Size int64
	// Mode holds the permission bits to set (0 means 0644). Setuid, setgid and
	// sticky bits are always cleared.
	Mode fs.FileMode
	// ModTime, when set, becomes the file's mtime.
	ModTime time.Time
	// Expect lists the checksums the source vouches for; the engine verifies
	// the strongest one (see checksum.Strength) before commit.
	Expect []checksum.Value
	// Parts, when set, is the source's part layout (e.g. an S3 multipart
	// upload). Ranges never straddle a part; composite checksums in Expect are
	// checked from per-part sums and each part's own Expect is checked too.
	Parts []Part
	// Identity names the exact source version (ETag, version id, digest…).
	// A resume journal or an existing file recorded for another identity is
	// discarded; the node cache keys entries by it.
	Identity string
	// Source reads the bytes.
	Source Loader
	// ChecksumsInBody says Expect is unknown at planning and a whole-file
	// read reports it: the reader handed to fn implements BodyChecksums
	// (an S3 GET with ChecksumMode=ENABLED and no Range returns the object's
	// checksums). It saves a metadata request per small file. The engine
	// reads such a file in one range when it fits in a chunk, and hashes it
	// inline; a larger file needs Expect from planning.
	ChecksumsInBody bool
	// Unfiltered exempts the file from the include/exclude patterns: an
	// exact object the URI names (KServe fetches it whatever the patterns
	// say), or a blob whose contents the patterns apply to instead.
	Unfiltered bool
	// Origin names the file at its source in error messages ("layer 0
	// (sha256:…, file w.bin)"), for sources whose file names hide it.
	Origin string
	// Stream says the source cannot serve byte ranges: the engine reads the
	// whole file with Source.Load(ctx, -1, 0, fn) in one request (restarted
	// from the start after a failure, within the same retry policy). Size
	// may then be -1 (unknown): the length the body delivers is taken, and
	// the file must have an Expect or it is verified by nothing.
	Stream bool
}

// RangeChecker is implemented by a Loader that checks every range it
// delivers against a checksum the server sends with it (Azure's
// transactional MD5): a file with no whole-file checksum is then reported
// as verified that way rather than by size only. It catches corruption in
// transit, not at the source, so --verify=strict still refuses such a file.
type RangeChecker interface {
	RangeCheck() string // e.g. "transactional md5 per range"
}

// BodyChecksums is implemented by a reader a Loader passes to fn when the
// response carries the whole file's checksums (see File.ChecksumsInBody).
type BodyChecksums interface {
	Checksums() []checksum.Value
}

// Part is one part of a multipart source object.
type Part struct {
	Size   int64
	Expect []checksum.Value
}

// VerifyMode says how much integrity evidence the engine demands.
type VerifyMode string

const (
	// VerifyAuto checks the strongest checksum the source offers, else size.
	VerifyAuto VerifyMode = "auto"
	// VerifyStrict fails a file whose source offers nothing stronger than its size.
	VerifyStrict VerifyMode = "strict"
	// VerifySize checks sizes only.
	VerifySize VerifyMode = "size"
)

// Status says what happened to a file.
type Status string

const (
	StatusDownloaded Status = "downloaded" // fetched in full
	StatusResumed    Status = "resumed"    // continued from a journal
	StatusPresent    Status = "present"    // already complete in DEST, not fetched
	StatusCached     Status = "cached"     // materialised from the node cache, not fetched
	StatusPlanned    Status = "planned"    // --dry-run: would be fetched
)

// FileResult is the integrity record of one committed file.
type FileResult struct {
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	Status   Status `json:"status"`
	Verified string `json:"verified"`         // e.g. "crc64nvme", "sha256 (composite of 3 parts)", "size only"
	Digest   string `json:"digest,omitempty"` // the verified value as the source prints it
	Fetched  int64  `json:"fetched_bytes"`    // bytes read from the source for this file (retries included)
	Cache    string `json:"cache,omitempty"`  // node cache: "hit (hardlink|reflink|copy)", "miss" or "partial"
}

// Report summarises one Fetch.
type Report struct {
	Files    []FileResult  `json:"files"`
	Bytes    int64         `json:"bytes"`         // total size of the files
	Fetched  int64         `json:"fetched_bytes"` // bytes read from sources
	Duration time.Duration `json:"duration_ns"`
}

// Add appends another report's files and totals (several SRC DEST pairs).
func (r *Report) Add(o *Report) {
	if o == nil {
		return
	}
	r.Files = append(r.Files, o.Files...)
	r.Bytes += o.Bytes
	r.Fetched += o.Fetched
	r.Duration += o.Duration
}

// Observer receives progress; implementations must be cheap and safe for
// concurrent use (the CLI's progress line and periodic JSON logs use it).
type Observer interface {
	// Planned is called once per Fetch with the file count and total bytes.
	Planned(files int, bytes int64)
	// Transferred is called as bytes arrive (n may be negative when a failed
	// attempt's bytes are discarded before a retry).
	Transferred(n int64)
	// FileDone is called after a file is committed.
	FileDone(r FileResult)
}
