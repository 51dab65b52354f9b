package engine

// Per-part digests of a composite checksum that is not a CRC — an S3
// multipart ETag (the MD5 of each part's MD5) or a composite SHA-256/SHA-1 —
// computed side by side across parts rather than by one sequential read-back
// of the file: a part fetched in one range is hashed as it streams in; a
// part of several ranges (or one written before a resume) is read back from
// the temporary file once all of it is there, several parts at once.

import (
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"

	md5simd "github.com/minio/md5-simd"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// minSIMDStreams is the concurrency from which MD5 goes through md5-simd.
// Measured on the 2-core AVX-512 bench machine, GB hashed per CPU second:
// crypto/md5 0.54 whatever the streams; md5-simd 0.42 with 1 stream, 0.46
// with 2, 0.90 with 4, 2.4 with 8 and 3.0 with 16 (its lanes fill only
// when that many hashes write at once).
const minSIMDStreams = 4

// partDigests is one run's means of hashing parts: an md5-simd server
// (started on first use, closed with the run) and a bound on the parts
// read back at once.
type partDigests struct {
	simd  bool
	slots chan struct{}
	wg    sync.WaitGroup // read-backs in flight

	mu     sync.Mutex
	srv    md5simd.Server
	closed bool
}

func newPartDigests(concurrency int) *partDigests {
	simd := concurrency >= minSIMDStreams
	n := runtime.GOMAXPROCS(0)
	if simd {
		n = max(n, min(concurrency, 16)) // md5-simd hashes 16 streams at once
	}
	return &partDigests{simd: simd, slots: make(chan struct{}, n)}
}

// digest is a hash that must be closed after use.
type digest interface {
	hash.Hash
	Close()
}

type stdDigest struct{ hash.Hash }

func (stdDigest) Close() {}

// newHash returns a fresh hash for alg; MD5 goes through md5-simd when the
// run has the concurrency to fill its lanes.
func (d *partDigests) newHash(alg checksum.Algorithm) digest {
	if alg != checksum.MD5 || d == nil || !d.simd {
		return stdDigest{alg.New()}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return stdDigest{alg.New()} // a straggler after the run: never a closed server
	}
	if d.srv == nil {
		d.srv = md5simd.NewServer()
	}
	return d.srv.NewHash()
}

// close waits for read-backs and stops the md5-simd server. Workers are
// done by then, so no hash of it is still open.
func (d *partDigests) close() {
	if d == nil {
		return
	}
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.srv != nil {
		d.srv.Close()
		d.srv = nil
	}
}

// partHasher collects the per-part sums of one temporary file.
type partHasher struct {
	alg checksum.Algorithm
	d   *partDigests
	r   io.ReaderAt
	off []int64 // per part
	len []int64

	mu       sync.Mutex
	left     []int    // chunks of each part not yet written
	inline   [][]byte // sums computed as single-range parts streamed in
	sums     [][]byte
	missing  int
	err      error
	finished chan struct{}
}

// newPartHasher starts hashing parts of f (laid out as chunks) in r; done
// marks the chunks already on disk (a resume), whose parts are read back.
func newPartHasher(d *partDigests, alg checksum.Algorithm, r io.ReaderAt, f File, chunks []chunk, done []bool) *partHasher {
	n := len(f.Parts)
	h := &partHasher{alg: alg, d: d, r: r, off: make([]int64, n), len: make([]int64, n),
		left: make([]int, n), inline: make([][]byte, n), sums: make([][]byte, n), missing: n,
		finished: make(chan struct{})}
	var off int64
	for i, p := range f.Parts {
		h.off[i], h.len[i] = off, p.Size
		off += p.Size
	}
	for i, c := range chunks {
		if !done[i] {
			h.left[c.part]++
		}
	}
	if n == 0 {
		close(h.finished)
	}
	for p := range n {
		if h.left[p] == 0 {
			h.readBack(p)
		}
	}
	return h
}

// inlinePart says chunk c is a whole part, hashed as it streams in.
func (h *partHasher) inlinePart(c chunk) bool {
	return h != nil && c.part >= 0 && c.part < len(h.len) && c.off == h.off[c.part] && c.length == h.len[c.part]
}

// put records the sum of a whole part computed as it streamed in; the
// chunk's written() follows.
func (h *partHasher) put(part int, sum []byte) {
	h.mu.Lock()
	h.inline[part] = sum
	h.mu.Unlock()
}

// written records chunk c as on disk: the last chunk of a part completes
// it, from its inline sum or by reading the part back.
func (h *partHasher) written(c chunk) {
	h.mu.Lock()
	h.left[c.part]--
	last, sum := h.left[c.part] == 0, h.inline[c.part]
	h.mu.Unlock()
	switch {
	case last && sum != nil:
		h.set(c.part, sum, nil)
	case last:
		h.readBack(c.part)
	}
}

func (h *partHasher) readBack(p int) {
	h.d.wg.Add(1)
	go func() {
		defer h.d.wg.Done()
		h.d.slots <- struct{}{}
		defer func() { <-h.d.slots }()
		sum, err := h.hashPart(p)
		h.set(p, sum, err)
	}()
}

func (h *partHasher) hashPart(p int) ([]byte, error) {
	dg := h.d.newHash(h.alg)
	defer dg.Close()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for pos, end := h.off[p], h.off[p]+h.len[p]; pos < end; {
		if h.stopped() {
			return nil, errHasherStopped
		}
		n := min(int64(len(buf)), end-pos)
		if _, err := h.r.ReadAt(buf[:n], pos); err != nil {
			return nil, fmt.Errorf("read back part %d for %s: %w", p+1, h.alg, err)
		}
		dg.Write(buf[:n])
		pos += n
	}
	return dg.Sum(nil), nil
}

var errHasherStopped = errors.New("hasher stopped")

func (h *partHasher) stopped() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err != nil
}

// set records part p's sum (or the failure to get it).
func (h *partHasher) set(p int, sum []byte, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.missing == 0 || (h.err != nil && err == nil) {
		return
	}
	if err != nil {
		if h.err == nil {
			h.err = err
			close(h.finished)
		}
		return
	}
	if h.sums[p] == nil {
		h.sums[p] = sum
		h.missing--
		if h.missing == 0 {
			close(h.finished)
		}
	}
}

// result waits for every part's sum.
func (h *partHasher) result() ([][]byte, error) {
	<-h.finished
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return nil, h.err
	}
	return h.sums, nil
}

// stop abandons the hasher (the run failed, or the file is fetched again).
func (h *partHasher) stop() {
	h.set(0, nil, errHasherStopped)
}
