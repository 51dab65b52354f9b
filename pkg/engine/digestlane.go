package engine

import (
	"hash"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// digestLane is one cryptographic digest (SHA-256, SHA-1, git-sha1, MD5)
// of a file, fed its bytes strictly in order. With parts it restarts at
// each part boundary and keeps one sum per part (composite checksums).
// It is not safe for concurrent use: hotHasher lends it to one writer at
// a time.
type digestLane struct {
	alg    checksum.Algorithm
	bounds []int64 // part end offsets; one entry (the size) without parts
	cur    hash.Hash
	part   int
	sums   [][]byte
}

func newDigestLane(alg checksum.Algorithm, bounds []int64) *digestLane {
	l := &digestLane{alg: alg, bounds: bounds}
	l.reset()
	return l
}

// reset starts the digest over from offset 0.
func (l *digestLane) reset() {
	l.cur = l.alg.NewSized(l.bounds[0]) // git-sha1 hashes need the size
	l.part, l.sums = 0, nil
	if l.bounds[len(l.bounds)-1] == 0 { // empty file: the digest of nothing
		l.sums = [][]byte{l.cur.Sum(nil)}
		l.part = len(l.bounds)
	}
}

// write hashes p, the bytes at offset pos of the file (pos is where the
// previous write ended), cutting at part boundaries.
func (l *digestLane) write(p []byte, pos int64) {
	for len(p) > 0 && l.part < len(l.bounds) {
		end := l.bounds[l.part]
		n := min(int64(len(p)), end-pos)
		if n <= 0 { // bytes beyond the planned size: never a match, never a panic
			l.part = len(l.bounds)
			l.sums = nil
			return
		}
		l.cur.Write(p[:n])
		p, pos = p[n:], pos+n
		if pos == end {
			l.sums = append(l.sums, l.cur.Sum(nil))
			l.part++
			l.cur = l.alg.New()
		}
	}
}
