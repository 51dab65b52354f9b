package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// fileRun is the state of one file during a Fetch.
type fileRun struct {
	f         File
	rel       string // clean relative path
	base      string // state-folder name of the temp file and journal
	chk       check
	chunkSize int64
	chunks    []chunk // laid out when the file is opened

	// store holds the temp file and journal: DEST, or the node cache when
	// the file goes through it (cache != nil).
	store  *os.Root
	tmpDir string
	cache  *cacheUse

	// inBody: the checksum is chosen when the (single) range arrives, and
	// bodySum is the digest computed inline over it.
	inBody  bool
	bodySum []byte

	// recorded is the verification an existing file's stamp records.
	recorded string
	// blob: a unit's blob fetched whole before it is unpacked; the
	// progress counts its bytes, not it as a file of the model.
	blob bool

	tmp     *os.File
	writeMu sync.Mutex // see writeAt
	jr      *journal
	hasher  *seqHasher
	// sealHash computes, as the download goes, the SHA-256 a cache entry
	// is sealed with when the source's own checksum is not one.
	sealHash *seqHasher
	fetched  atomic.Int64

	mu        sync.Mutex
	done      []bool
	remaining int
	frontier  int
	crcs      []uint64
	resumed   bool
	retried   bool
}

func newFileRun(f File, rel string, chk check, chunkSize int64) *fileRun {
	return &fileRun{f: f, rel: rel, chk: chk, base: tmpBase(rel), chunkSize: chunkSize, tmpDir: StateDir}
}

// tmpBase names the temp file and journal of rel in DEST's state folder.
func tmpBase(rel string) string {
	sum := sha256.Sum256([]byte(rel))
	return hex.EncodeToString(sum[:16])
}

func (fr *fileRun) tmpName() string     { return path.Join(fr.tmpDir, fr.base+".part") }
func (fr *fileRun) journalName() string { return path.Join(fr.tmpDir, fr.base+".journal") }

// useStore points the temp file and journal at root/dir under name base.
func (fr *fileRun) useStore(root *os.Root, dir, base string) {
	fr.store, fr.tmpDir, fr.base = root, dir, base
}

// stamp identifies the verified content, recorded on the committed file.
func (fr *fileRun) stamp() string {
	want := "size"
	if fr.inBody {
		// Chosen per read: the identity (with its ETag) pins the content.
		want = "body"
	} else if fr.chk.want != nil {
		want = string(fr.chk.want.Algorithm) + ":" + fr.chk.want.String()
	}
	return fmt.Sprintf("v1 size=%d id=%s check=%s", fr.f.Size, fr.f.Identity, want)
}

// stampValue is the stamp plus how the file was verified, for reports of
// later runs that find it present.
func (fr *fileRun) stampValue() string { return fr.stamp() + " verified=" + fr.verified() }

// verified says how the file is verified: its checksum, else a per-range
// check its loader makes, else its size.
func (fr *fileRun) verified() string {
	if fr.chk.want == nil {
		if rc, ok := fr.f.Source.(RangeChecker); ok && rc.RangeCheck() != "" {
			return "size, " + rc.RangeCheck()
		}
	}
	return fr.chk.describe()
}

// matchStamp reports whether a recorded stamp is this file's, and the
// verification it records.
func (fr *fileRun) matchStamp(rec string) (string, bool) {
	prefix := fr.stamp() + " verified="
	if strings.HasPrefix(rec, prefix) {
		return strings.TrimPrefix(rec, prefix), true
	}
	return "", false
}

// bounds are the offsets where the digest restarts: part ends for a
// composite checksum, else only the end of the file.
func (fr *fileRun) bounds() []int64 {
	if fr.chk.want != nil && fr.chk.want.Composite {
		var out []int64
		var off int64
		for _, p := range fr.f.Parts {
			off += p.Size
			out = append(out, off)
		}
		return out
	}
	return []int64{fr.f.Size}
}

func (fr *fileRun) crcAlg() checksum.Algorithm {
	if fr.chk.want != nil && fr.chk.want.Algorithm.IsCRC() {
		return fr.chk.want.Algorithm
	}
	return ""
}

// open prepares the temporary file and journal; it returns the indices of
// the chunks still to fetch.
func (fr *fileRun) open() ([]int, error) {
	root := fr.store
	fr.chunks = layoutChunks(fr.f, fr.chunkSize)
	hdr := journalHeader{Version: 1, Path: fr.rel, Size: fr.f.Size, Identity: fr.f.Identity, Layout: layoutID(fr.chunks)}
	// A single-range file has nothing to resume partially: no journal,
	// which saves two file operations per small file.
	var jr *journal
	done := make([]bool, len(fr.chunks))
	if len(fr.chunks) > 1 && !fr.f.Stream {
		var err error
		if jr, done, err = openJournal(root, fr.journalName(), hdr, len(fr.chunks)); err != nil {
			return nil, err
		}
	}
	tmp, err := root.OpenFile(fr.tmpName(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		jr.close()
		return nil, fmt.Errorf("create temporary file: %w", err)
	}
	fr.tmp, fr.jr, fr.done = tmp, jr, done
	fr.crcs = make([]uint64, len(fr.chunks))
	// Any failure below closes both descriptors (a full disk during
	// preallocation must not leak two per file).
	ok := false
	defer func() {
		if !ok {
			fr.closeFiles()
		}
	}()
	fi, err := tmp.Stat()
	if err != nil {
		return nil, err
	}
	var missing []int
	for i, d := range done {
		if !d {
			missing = append(missing, i)
		}
	}
	fr.remaining = len(missing)
	fr.resumed = len(missing) < len(fr.chunks) && fi.Size() == fr.f.Size && !fr.f.Stream
	if !fr.resumed {
		// A fresh start: drop any bytes from an earlier, different download.
		clear(fr.done)
		missing = missing[:0]
		for i := range fr.chunks {
			missing = append(missing, i)
		}
		fr.remaining = len(missing)
		if err := tmp.Truncate(0); err != nil {
			return nil, fmt.Errorf("reset temporary file: %w", err)
		}
		if err := preallocate(tmp, max(fr.f.Size, 0)); err != nil {
			return nil, err
		}
	} else if alg := fr.crcAlg(); alg != "" {
		// CRCs of the chunks written before the kill come from disk once.
		for i, d := range done {
			if d {
				c := fr.chunks[i]
				crc, err := crcOf(alg, io.NewSectionReader(tmp, c.off, c.length))
				if err != nil {
					return nil, fmt.Errorf("read back resumed chunk: %w", err)
				}
				fr.crcs[i] = crc
			}
		}
	}
	for fr.frontier < len(fr.done) && fr.done[fr.frontier] {
		fr.frontier++
	}
	if fr.chk.want != nil && !fr.chk.want.Algorithm.IsCRC() && !fr.inlineHash() {
		fr.hasher = newSeqHasher(fr.chk.want.Algorithm, tmp, fr.bounds())
		fr.hasher.advance(fr.readyBytes())
	}
	if fr.cache != nil && !fr.sealedBySource() {
		fr.sealHash = newSeqHasher(checksum.SHA256, tmp, []int64{fr.f.Size})
		fr.sealHash.advance(fr.readyBytes())
	}
	ok = true
	return missing, nil
}

// inlineHash says the file's digest is computed as its one stream arrives
// (a single-stream source) rather than read back from the temp file.
func (fr *fileRun) inlineHash() bool {
	return fr.f.Stream && fr.chk.want != nil && !fr.chk.want.Algorithm.IsCRC()
}

// streamDone records the length a single stream delivered: a stream of
// unknown size takes it, one of known size must match it. The temp file is
// cut there (an earlier, longer attempt may have left bytes beyond).
func (fr *fileRun) streamDone(n int64) error {
	if fr.f.Size >= 0 && n != fr.f.Size {
		return fmt.Errorf("%s: the server sent %d bytes, %d expected: the file changed or the server is broken", fr.rel, n, fr.f.Size)
	}
	if err := fr.tmp.Truncate(n); err != nil {
		return fmt.Errorf("write %s: %w", fr.rel, err)
	}
	fr.mu.Lock()
	fr.f.Size = n
	if len(fr.chunks) == 1 {
		fr.chunks[0].length = n
	}
	fr.mu.Unlock()
	return nil
}

// readyBytes is the length of the contiguous completed prefix. Callers hold mu
// or own fr exclusively.
func (fr *fileRun) readyBytes() int64 {
	if fr.frontier >= len(fr.chunks) {
		return fr.f.Size
	}
	return fr.chunks[fr.frontier].off
}

// chunkDone records a written chunk; it reports whether the file is complete.
func (fr *fileRun) chunkDone(i int, crc uint64) (bool, error) {
	fr.mu.Lock()
	// The journal line is written under the lock, before the chunk counts
	// as done: once the last chunk is counted the file may be finalised and
	// its journal closed, so no journal write may come after that.
	if err := fr.jr.markDone(i); err != nil {
		fr.mu.Unlock()
		return false, err
	}
	fr.crcs[i] = crc
	fr.done[i] = true
	fr.remaining--
	for fr.frontier < len(fr.done) && fr.done[fr.frontier] {
		fr.frontier++
	}
	// The hasher is read under the lock too: a refetch after a mismatch
	// replaces it while a slower worker may still be leaving here.
	ready, complete, h, sh := fr.readyBytes(), fr.remaining == 0, fr.hasher, fr.sealHash
	fr.mu.Unlock()
	if h != nil {
		h.advance(ready)
	}
	if sh != nil {
		sh.advance(ready)
	}
	return complete, nil
}

// writeAt writes one buffer of a range. Writers to one file are
// serialised here because the kernel serialises them anyway (ext4 and xfs
// take the inode lock for a buffered write), and a goroutine parked on a
// mutex costs nothing while a thread spinning on the inode lock burns CPU
// the server and the other ranges need.
func (fr *fileRun) writeAt(p []byte, off int64) error {
	fr.writeMu.Lock()
	defer fr.writeMu.Unlock()
	_, err := fr.tmp.WriteAt(p, off)
	return err
}

// close releases the file handles and any cache lock, keeping the temp
// file and journal for resume.
func (fr *fileRun) close() {
	fr.closeFiles()
	fr.cache.release()
	fr.cache = nil
}

func (fr *fileRun) closeFiles() {
	if fr.hasher != nil {
		fr.hasher.stop()
	}
	if fr.sealHash != nil {
		fr.sealHash.stop()
		fr.sealHash = nil
	}
	if fr.tmp != nil {
		fr.tmp.Close()
		fr.tmp = nil
	}
	if fr.jr != nil {
		fr.jr.close()
		fr.jr = nil
	}
}

// reset discards everything written so the file is fetched again from scratch.
func (fr *fileRun) reset() ([]int, error) {
	fr.closeFiles()
	_ = fr.store.Remove(fr.journalName())
	_ = fr.store.Remove(fr.tmpName())
	fr.mu.Lock()
	fr.frontier, fr.resumed, fr.hasher = 0, false, nil
	fr.mu.Unlock()
	fr.fetched.Store(0)
	return fr.open()
}

// computed returns the checksum of what was written, from per-chunk CRCs or
// the sequential hasher, as per-digest-segment sums.
func (fr *fileRun) computed() ([][]byte, error) {
	want := fr.chk.want
	if want == nil {
		return nil, nil
	}
	if fr.inBody || fr.inlineHash() {
		return [][]byte{fr.bodySum}, nil
	}
	if !want.Algorithm.IsCRC() {
		return fr.hasher.result()
	}
	alg := want.Algorithm
	var sums [][]byte
	var acc uint64
	var started bool
	bounds := fr.bounds()
	seg := 0
	for i, c := range fr.chunks {
		if !started {
			acc, started = fr.crcs[i], true
		} else {
			acc = checksum.CombineCRC(alg, acc, fr.crcs[i], c.length)
		}
		if c.off+c.length == bounds[seg] {
			sums = append(sums, checksum.CRCToSum(alg, acc))
			started = false
			seg++
		}
	}
	if len(fr.chunks) == 0 { // empty file
		sums = append(sums, alg.New().Sum(nil))
	}
	return sums, nil
}

// errMismatch reports a checksum that does not match the source's.
type errMismatch struct {
	path, what, want, got string
}

func (e *errMismatch) Error() string {
	return fmt.Sprintf("checksum mismatch for %s: %s expected %s, got %s", e.path, e.what, e.want, e.got)
}

// compare checks per-segment sums against the chosen checksum (and, for
// composites, each part's own checksum when the source listed one).
func (fr *fileRun) compare(sums [][]byte) (string, error) {
	want := fr.chk.want
	if want == nil {
		return "", nil
	}
	var got checksum.Value
	if want.Composite {
		for i, p := range fr.f.Parts {
			for _, pe := range p.Expect {
				if pe.Algorithm == want.Algorithm && !pe.Composite && i < len(sums) {
					if pv := (checksum.Value{Algorithm: pe.Algorithm, Sum: sums[i]}); !pv.Equal(pe) {
						return "", &errMismatch{fr.rel, fmt.Sprintf("%s of part %d", pe.Algorithm, i+1), pe.String(), pv.String()}
					}
				}
			}
		}
		got = checksum.Composite(want.Algorithm, sums)
	} else {
		if len(sums) != 1 {
			return "", fmt.Errorf("internal: %d digest segments for a full-object checksum", len(sums))
		}
		got = checksum.Value{Algorithm: want.Algorithm, Sum: sums[0]}
	}
	if !got.Equal(*want) {
		return "", &errMismatch{fr.rel, want.Kind(), want.String(), got.String()}
	}
	return got.String(), nil
}

// verifyExisting checks a file already at its final name against the
// source's checksum; it reports whether it can be kept as is.
func (fr *fileRun) verifyExisting(ctx context.Context, root *os.Root) bool {
	f, err := root.Open(fr.rel)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() != fr.f.Size {
		return false
	}
	if rec, ok := fr.matchStamp(stampContent(f)); ok {
		fr.recorded = rec
		return true
	}
	if fr.chk.want == nil || ctx.Err() != nil {
		return false
	}
	h := newSeqHasher(fr.chk.want.Algorithm, f, fr.bounds())
	h.advance(fr.f.Size)
	sums, err := h.result()
	if err != nil {
		return false
	}
	if _, err := fr.compare(sums); err != nil {
		return false
	}
	sealStamp(f, fr.stampValue())
	return true
}

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
	if err := replace(dest, fr.tmpName(), fr.rel); err != nil {
		return fmt.Errorf("commit %s (a symlink in DEST pointing outside it is refused): %w", fr.rel, err)
	}
	return nil
}

func crcOf(alg checksum.Algorithm, r io.Reader) (uint64, error) {
	h := alg.New()
	if _, err := io.Copy(h, r); err != nil {
		return 0, err
	}
	return checksum.CRCFromSum(h.Sum(nil)), nil
}
