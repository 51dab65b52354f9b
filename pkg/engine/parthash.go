package engine

// Per-part digests of a composite checksum that is not a CRC — an S3
// multipart ETag (the MD5 of each part's MD5) or a composite SHA-256/SHA-1 —
// computed side by side across parts rather than by one sequential read-back
// of the file.
//
// MD5 goes through md5-simd, which hashes 16 streams in one pass of AVX-512
// (8 with AVX2) but only when 16 hashes have data at the same moment: fed
// from the network, each stream waits on its socket and the lanes run
// nearly empty (measured: 5.1 s of CPU for 3 GiB, more than crypto/md5).
// So complete parts are queued and read back from the page cache 16 at a
// time (a file's last parts as soon as it is complete), which keeps every
// lane busy. Other algorithms hash a part that is one range as it streams
// in, and read back the others once complete.

import (
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"sync"

	md5simd "github.com/minio/md5-simd"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// MD5 always goes through md5-simd's lanes (it falls back to crypto/md5
// without AVX2). Measured on the 2-core AVX-512 bench machine, GB hashed
// per CPU second: crypto/md5 0.54 whatever the streams; md5-simd 0.42 with
// 1 stream writing, 0.46 with 2, 0.90 with 4, 2.4 with 8, 3.0 with 16; fed
// from the network inside the engine (16 requests in flight) it spent 5.1 s
// of CPU on 3 GiB, read back 16 parts at a time 0.68 s per GiB, through a
// mapping 0.57 s per GiB.

// simdLanes is how many MD5 streams md5-simd hashes in one pass.
const simdLanes = 16

// partDigests is one run's means of hashing parts: an md5-simd server
// (started on first use, closed with the run) fed by a queue of complete
// parts, and a bound on other parts read back at once.
type partDigests struct {
	simd  bool
	slots chan struct{}
	wg    sync.WaitGroup // read-backs in flight

	mu      sync.Mutex
	srv     md5simd.Server
	closed  bool
	queue   []partJob // complete MD5 parts waiting for a lane
	running int       // MD5 parts being read back
}

type partJob struct {
	h    *partHasher
	part int
}

// newPartDigests returns a run's part digests; simd false hashes MD5 with
// crypto/md5 (a fileRun outside a run has no server to close).
func newPartDigests(simd bool) *partDigests {
	return &partDigests{simd: simd, slots: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

// batched says parts of alg wait in the queue for md5-simd lanes.
func (d *partDigests) batched(alg checksum.Algorithm) bool { return d.simd && alg == checksum.MD5 }

// enqueue queues a complete MD5 part, and starts read-backs when a full
// set of lanes is waiting.
func (d *partDigests) enqueue(j partJob) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queue = append(d.queue, j)
	if len(d.queue) >= simdLanes {
		d.startLocked()
	}
}

// flush starts every queued part there is a lane for: a file waits for them.
func (d *partDigests) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.startLocked()
}

func (d *partDigests) startLocked() {
	for d.running < simdLanes && len(d.queue) > 0 {
		j := d.queue[0]
		d.queue = d.queue[1:]
		d.running++
		d.wg.Add(1)
		go d.runJob(j)
	}
}

// runJob reads back one part, then takes the next queued one: once lanes
// are busy they stay busy while parts wait.
func (d *partDigests) runJob(j partJob) {
	defer d.wg.Done()
	for {
		sum, err := j.h.hashPart(j.part)
		j.h.set(j.part, sum, err)
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.running--
			d.mu.Unlock()
			return
		}
		j = d.queue[0]
		d.queue = d.queue[1:]
		d.mu.Unlock()
	}
}

// digest is a hash that must be closed after use.
type digest interface {
	hash.Hash
	Close()
}

type stdDigest struct{ hash.Hash }

func (stdDigest) Close() {}

// newHash returns a fresh hash for alg; MD5 goes through md5-simd.
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
	return h != nil && !h.d.batched(h.alg) && c.part >= 0 && c.part < len(h.len) &&
		c.off == h.off[c.part] && c.length == h.len[c.part]
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
	if h.d.batched(h.alg) {
		h.d.enqueue(partJob{h, p})
		return
	}
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
	if f, ok := h.r.(*os.File); ok {
		sum, err := h.hashPartMapped(f, p, dg)
		if !errors.Is(err, errNoMap) {
			return sum, err
		}
		dg.Reset()
	}
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

// mapWindow is how much of a part is mapped at once: the mapped pages
// count in the process's RSS, so 16 lanes hold at most 16 windows.
const mapWindow = 1 << 20

// hashPartMapped hashes part p straight from the page cache through
// read-only mappings of a window at a time (hasher_mmap.go), saving the
// copy a read makes; errNoMap when the file cannot be mapped.
func (h *partHasher) hashPartMapped(f *os.File, p int, dg digest) ([]byte, error) {
	for pos, end := h.off[p], h.off[p]+h.len[p]; pos < end; {
		if h.stopped() {
			return nil, errHasherStopped
		}
		n := min(end-pos, mapWindow)
		if err := hashMapped(f, pos, pos+n, func(b []byte, _ int64) { dg.Write(b) }); err != nil {
			return nil, err
		}
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
	h.d.flush()
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
