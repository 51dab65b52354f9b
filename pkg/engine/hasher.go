package engine

import (
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// seqHasher computes a cryptographic digest (SHA-256, SHA-1, MD5), which
// unlike a CRC cannot be combined from ranges. It reads the temporary file
// back in order as the contiguous prefix of completed chunks grows, so
// hashing overlaps the download and the bytes come from the page cache.
// With parts it restarts at each part boundary and keeps per-part sums.
type seqHasher struct {
	alg    checksum.Algorithm
	r      io.ReaderAt
	bounds []int64 // part end offsets; one entry (size) without parts

	mu       sync.Mutex
	ready    int64 // bytes [0, ready) are on disk
	wake     chan struct{}
	finished chan struct{}
	sums     [][]byte
	err      error
}

func newSeqHasher(alg checksum.Algorithm, r io.ReaderAt, bounds []int64) *seqHasher {
	h := &seqHasher{alg: alg, r: r, bounds: bounds, wake: make(chan struct{}, 1), finished: make(chan struct{})}
	go h.run()
	return h
}

// advance tells the hasher bytes [0, n) are complete.
func (h *seqHasher) advance(n int64) {
	h.mu.Lock()
	if n > h.ready {
		h.ready = n
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// result waits for the hasher and returns the per-part sums.
func (h *seqHasher) result() ([][]byte, error) {
	<-h.finished
	return h.sums, h.err
}

// stop abandons the hasher (the run failed).
func (h *seqHasher) stop() {
	h.mu.Lock()
	if h.err == nil {
		h.err = fmt.Errorf("hasher stopped")
	}
	h.mu.Unlock()
	h.advance(-1)
}

func (h *seqHasher) run() {
	defer close(h.finished)
	buf := make([]byte, 1<<20)
	var pos int64
	var cur hash.Hash = h.alg.NewSized(h.bounds[0]) // git-sha1 hashes need the size
	part := 0
	end := h.bounds[len(h.bounds)-1]
	for {
		h.mu.Lock()
		ready, err := h.ready, h.err
		h.mu.Unlock()
		if err != nil {
			return
		}
		for pos < ready {
			n := min(int64(len(buf)), ready-pos, h.bounds[part]-pos)
			if _, err := h.r.ReadAt(buf[:n], pos); err != nil {
				h.mu.Lock()
				h.err = fmt.Errorf("read back for %s: %w", h.alg, err)
				h.mu.Unlock()
				return
			}
			cur.Write(buf[:n])
			pos += n
			if pos == h.bounds[part] {
				h.sums = append(h.sums, cur.Sum(nil))
				cur = h.alg.New()
				part++
			}
		}
		if pos >= end {
			if end == 0 && len(h.sums) == 0 {
				h.sums = append(h.sums, cur.Sum(nil))
			}
			return
		}
		<-h.wake
	}
}
