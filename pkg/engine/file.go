package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// named adds the file's origin to an error about it.
func (fr *fileRun) named(err error) error {
	if fr.f.Origin == "" {
		return err
	}
	return fmt.Errorf("%s: %w", fr.f.Origin, err)
}

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

	// presence caches whether the file is already at its final name
	// (0 not asked yet, 1 yes, -1 no), see present.
	presence int8
	// dirs are the run's folder descriptors (nil outside a run).
	dirs *dirFDs

	// recorded is the verification an existing file's stamp records.
	recorded string
	// alloc reserves the temp file's blocks (the engine's; tests replace it).
	alloc func(f *os.File, size int64) error

	// blob: a unit's blob fetched whole before it is unpacked; the
	// progress counts its bytes, not it as a file of the model.
	blob bool

	// hold: the plan commits together (hold.go): the verified file is
	// renamed to its held name, and to its final name only by commitHeld.
	hold bool
	// status is how the file ended (set by finish), for commitHeld.
	status Status

	tmp     *os.File
	writeMu sync.Mutex // see writeAt
	jr      *journal
	// hasher computes the sequential digests as the download goes: the
	// source's SHA/MD5, and the SHA-256 a cache entry is sealed with when
	// the source's own checksum is not one (lanes says which is where).
	hasher *hotHasher
	lanes  hashLanes
	// parts hashes the parts of a composite non-CRC checksum side by side
	// (parthash.go), with the run's digests; the hasher then has no digest
	// lane, only the seal's.
	parts   *partHasher
	digests *partDigests
	fetched atomic.Int64

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

func (fr *fileRun) tmpName() string { return path.Join(fr.tmpDir, fr.base+".part") }

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

// inlineHash says the file's digest is computed as its one stream arrives
// (a single-stream source) rather than read back from the temp file.
func (fr *fileRun) inlineHash() bool {
	return fr.f.Stream && fr.chk.want != nil && !fr.chk.want.Algorithm.IsCRC()
}

// digestsOrOwn is the run's part digests, or plain ones for a fileRun
// outside a run.
func (fr *fileRun) digestsOrOwn() *partDigests {
	if fr.digests == nil {
		fr.digests = newPartDigests(false)
	}
	return fr.digests
}
