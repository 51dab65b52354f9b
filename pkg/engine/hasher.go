package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// readBackBlock is how much the hasher reads back from the temp file at a
// time: large enough that mapping (or the read syscall) is noise, small
// enough that a chunk worker waiting to hash inline gets the lanes soon
// (a few milliseconds of SHA-256).
const readBackBlock = 4 << 20

// hotHasher computes a file's sequential digests (the source's SHA-256,
// SHA-1, git-sha1 or MD5, and the node cache's seal SHA-256: one lane
// each), which unlike CRCs cannot be combined from ranges, in one ordered
// pass that overlaps the download:
//
//   - the chunk at the hashed frontier hashes its bytes inline, from the
//     buffer it has just written, while they are hot (inlineHash);
//   - chunks that completed ahead of the frontier are read back from the
//     temp file (the page cache) by the hasher's goroutine once everything
//     before them is hashed.
//
// Only a successful attempt's bytes count: an attempt that hashed inline
// and then failed (a short body, a bad transactional checksum, a retry
// after fn returned) restarts every lane from offset 0 over what is on
// disk, so the digests always cover exactly the bytes that get the final
// name. A restart is rare and costs one read back of the prefix.
type hotHasher struct {
	r     io.ReaderAt
	lanes []*digestLane
	end   int64

	mu       sync.Mutex
	pos      int64 // bytes [0, pos) are hashed
	ready    int64 // bytes [0, ready) are complete on disk
	busy     bool  // the lanes are lent to one writer (inline or read-back); pos is theirs until it returns them
	err      error
	wake     chan struct{}
	finished chan struct{}

	// inlined and readBack count the bytes hashed each way (the debug log
	// and the tests read them).
	inlined, readBack atomic.Int64
}

// newHotHasher starts hashing the size bytes of r into lanes as advance
// reports them complete.
func newHotHasher(r io.ReaderAt, size int64, lanes ...*digestLane) *hotHasher {
	h := &hotHasher{r: r, lanes: lanes, end: size, wake: make(chan struct{}, 1), finished: make(chan struct{})}
	go h.run()
	return h
}

// hashReadBack computes the digest of the size bytes of r with the given
// part bounds, reading it front to back (a file already on disk).
func hashReadBack(r io.ReaderAt, lane *digestLane, size int64) ([][]byte, error) {
	h := newHotHasher(r, size, lane)
	h.advance(size)
	sums, err := h.result()
	if err != nil {
		return nil, err
	}
	return sums[0], nil
}

// advance tells the hasher bytes [0, n) are complete on disk.
func (h *hotHasher) advance(n int64) {
	h.mu.Lock()
	if n > h.ready {
		h.ready = n
	}
	h.mu.Unlock()
	h.poke()
}

func (h *hotHasher) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// result waits for the hasher and returns each lane's per-part sums.
func (h *hotHasher) result() ([][][]byte, error) {
	<-h.finished
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return nil, h.err
	}
	out := make([][][]byte, len(h.lanes))
	for i, l := range h.lanes {
		out[i] = l.sums
	}
	return out, nil
}

// stop abandons the hasher (the run failed).
func (h *hotHasher) stop() {
	h.mu.Lock()
	if h.err == nil {
		h.err = fmt.Errorf("hasher stopped")
	}
	h.mu.Unlock()
	h.poke()
}

// run reads back what completed ahead of the frontier whenever nobody
// hashes inline, until the whole file is hashed.
func (h *hotHasher) run() {
	defer close(h.finished)
	var buf []byte // only when the file cannot be mapped
	for {
		h.mu.Lock()
		switch {
		case h.err != nil:
			h.mu.Unlock()
			return
		case h.busy:
		case h.pos >= h.end:
			h.mu.Unlock()
			return
		case h.pos < h.ready:
			from, to := h.pos, min(h.pos+readBackBlock, h.ready)
			h.busy = true
			h.mu.Unlock()
			h.giveBack(to, h.hashFromDisk(&buf, from, to))
			continue
		}
		h.mu.Unlock()
		<-h.wake
	}
}

// hashFromDisk feeds bytes [from, to) of the temp file to the lanes, in
// place through a mapping when it can, else through *buf (allocated on
// first use, kept by the caller for the next call); the caller holds the
// lanes (busy).
func (h *hotHasher) hashFromDisk(bufp *[]byte, from, to int64) error {
	if f, ok := h.r.(*os.File); ok {
		// One window at a time: mapped pages count in the RSS.
		for ; from < to; from = min(from+readBackBlock, to) {
			end := min(from+readBackBlock, to)
			if err := hashMapped(f, from, end, h.write); errors.Is(err, errNoMap) {
				break
			} else if err != nil {
				return err
			}
			h.readBack.Add(end - from)
		}
	}
	if *bufp == nil && from < to {
		*bufp = make([]byte, readBackBlock)
	}
	buf := *bufp
	for from < to {
		n := min(int64(len(buf)), to-from)
		if _, err := h.r.ReadAt(buf[:n], from); err != nil {
			return fmt.Errorf("read back for the digest: %w", err)
		}
		h.write(buf[:n], from)
		h.readBack.Add(n)
		from += n
	}
	return nil
}

func (h *hotHasher) write(p []byte, pos int64) {
	for _, l := range h.lanes {
		l.write(p, pos)
	}
}

// giveBack returns the lanes with [0, pos) hashed, or with err.
func (h *hotHasher) giveBack(pos int64, err error) {
	h.mu.Lock()
	h.busy = false
	if err != nil && h.err == nil {
		h.err = err
	} else if err == nil {
		h.pos = pos
	}
	h.mu.Unlock()
	h.poke()
}

// restart gives the lanes back with nothing hashed: the bytes hashed
// inline were not the ones that stay on disk.
func (h *hotHasher) restart() {
	h.mu.Lock()
	for _, l := range h.lanes {
		l.reset()
	}
	h.pos, h.busy = 0, false
	h.mu.Unlock()
	h.poke()
}

// inlineHash lets one chunk's fetch hash its bytes as it writes them, when
// the chunk is at the hashed frontier. It spans the chunk's attempts; nil
// (no hasher) does nothing.
type inlineHash struct {
	h     *hotHasher
	start int64 // the chunk's offset
	at    int64 // where the current attempt writes next
	owned bool  // the lanes are ours, hashed up to at
}

// inline returns the inline hashing of the chunk at off, or nil.
func (h *hotHasher) inline(off int64) *inlineHash {
	if h == nil {
		return nil
	}
	return &inlineHash{h: h, start: off, at: off}
}

// attempt starts an attempt at the chunk: a Loader calls fn once per
// attempt, so a new call means the bytes hashed by the last one may be
// overwritten.
func (ih *inlineHash) attempt() {
	if ih == nil {
		return
	}
	if ih.owned {
		ih.owned = false
		ih.h.restart()
	}
	ih.at = ih.start
}

// wrote hashes p, which this attempt has just written at ih.at, when the
// chunk holds the frontier (taking it over when the hasher reached the
// chunk's start: what the attempt wrote so far is read back once).
func (ih *inlineHash) wrote(p []byte) {
	if ih == nil {
		return
	}
	if !ih.owned && !ih.claim() {
		ih.at += int64(len(p))
		return
	}
	ih.h.write(p, ih.at)
	ih.h.inlined.Add(int64(len(p)))
	ih.at += int64(len(p))
}

func (ih *inlineHash) claim() bool {
	h := ih.h
	h.mu.Lock()
	ok := !h.busy && h.err == nil && h.pos == ih.start && h.pos < h.end
	if ok {
		h.busy = true
	}
	h.mu.Unlock()
	if !ok {
		return false
	}
	if ih.at > ih.start {
		var buf []byte
		if err := h.hashFromDisk(&buf, ih.start, ih.at); err != nil {
			h.giveBack(0, err)
			return false
		}
	}
	ih.owned = true
	return true
}

// finish ends the chunk's fetch: ok means its last attempt succeeded and
// every byte it hashed is on disk for good.
func (ih *inlineHash) finish(ok bool) {
	if ih == nil || !ih.owned {
		return
	}
	ih.owned = false
	if !ok {
		ih.h.restart()
		return
	}
	ih.h.giveBack(ih.at, nil)
}
