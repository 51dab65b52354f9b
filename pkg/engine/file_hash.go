package engine

// A file's sequential digests during its download: which lanes its
// hotHasher computes, and where their sums are read.

import (
	"errors"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// hashLanes says which of the hasher's lanes holds what (-1: none).
type hashLanes struct{ digest, seal int }

// startHasher starts the one hasher of the temp file when the file needs a
// sequential digest: the source's (a SHA or MD5; CRCs are combined per
// chunk instead), and the node cache's seal SHA-256 when the source's is
// not one. Both lanes are fed by one pass over the bytes.
func (fr *fileRun) startHasher(tmp *os.File) {
	fr.lanes = hashLanes{-1, -1}
	fr.hasher = nil
	if fr.f.Size < 0 { // a stream of unknown length is hashed inline as it arrives
		return
	}
	var lanes []*digestLane
	if fr.chk.want != nil && !fr.chk.want.Algorithm.IsCRC() && !fr.inlineHash() && fr.parts == nil {
		fr.lanes.digest = len(lanes)
		lanes = append(lanes, newDigestLane(fr.chk.want.Algorithm, fr.bounds()))
	}
	if fr.cache != nil && !fr.sealedBySource() {
		fr.lanes.seal = len(lanes)
		lanes = append(lanes, newDigestLane(checksum.SHA256, []int64{fr.f.Size}))
	}
	if len(lanes) > 0 {
		fr.hasher = newHotHasher(tmp, fr.f.Size, lanes...)
		fr.hasher.advance(fr.readyBytes())
	}
}

var errNoLane = errors.New("internal: no hasher for this digest")

// digestSums waits for the source digest's per-part sums.
func (fr *fileRun) digestSums() ([][]byte, error) { return fr.laneSums(fr.lanes.digest) }

// sealSums waits for the seal SHA-256 computed during the download.
func (fr *fileRun) sealSums() ([][]byte, error) { return fr.laneSums(fr.lanes.seal) }

func (fr *fileRun) laneSums(i int) ([][]byte, error) {
	fr.mu.Lock()
	h := fr.hasher
	fr.mu.Unlock()
	if h == nil || i < 0 {
		return nil, errNoLane
	}
	sums, err := h.result()
	if err != nil {
		return nil, err
	}
	return sums[i], nil
}

// stopHasher abandons the hasher (the file is closed or fetched again).
func (fr *fileRun) stopHasher() {
	if fr.hasher != nil {
		fr.hasher.stop()
	}
}

// logHashing reports how the file's digests got their bytes: inline from
// the download's buffers, or read back from the temp file, and how long
// the file waited for them after its last byte arrived (a serial tail).
func (fr *fileRun) logHashing(log *zap.Logger, waited time.Duration) {
	fr.mu.Lock()
	h := fr.hasher
	fr.mu.Unlock()
	if h != nil && log.Core().Enabled(zap.DebugLevel) {
		log.Debug("digests computed", zap.String("path", fr.rel), zap.Int64("inline_bytes", h.inlined.Load()),
			zap.Int64("read_back_bytes", h.readBack.Load()), zap.Duration("waited", waited))
	}
}
