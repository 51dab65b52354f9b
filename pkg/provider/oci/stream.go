package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// ErrDigest is wrapped by errors about a blob whose content does not match
// its digest.
var ErrDigest = errors.New("digest mismatch")

// layerStream reads one blob front to back for extraction, fetching up to
// ahead ranges in parallel and handing them over in order. The sha256 is
// computed in its own goroutine as ranges arrive (so hashing overlaps
// decompression), and the end of the stream is io.EOF only when the digest
// matched: otherwise the last Read returns ErrDigest, so whatever consumed
// the bytes fails before anything it wrote can be committed.
type layerStream struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	extra  chan struct{}
	tokens int // taken from extra, returned by Close
	out    chan piece
	free   chan []byte
	cur    piece
	off    int
	err    error
}

type piece struct {
	buf []byte
	n   int
	err error
}

// streamSpec describes the blob to stream.
type streamSpec struct {
	eng      *engine.Engine // its retry policy: attempts, backoff, Retry-After, stall watchdog
	src      engine.Loader
	digest   string // "sha256:<hex>", for messages
	want     []byte // raw sha256
	size     int64
	chunk    int64
	ahead    int
	progress func(n int64)
	log      *zap.Logger
	// extra, when set, is shared by the streams of one Fetch: a stream
	// always has two buffers and takes more (up to ahead+2) only while
	// tokens are left, so several large layers in flight together stay
	// within one memory budget.
	extra chan struct{}
}

func openStream(ctx context.Context, sp streamSpec) *layerStream {
	ctx, cancel := context.WithCancelCause(ctx)
	nbuf := sp.ahead + 2 // ahead fetching, one hashed, one read by the consumer
	s := &layerStream{ctx: ctx, cancel: cancel, out: make(chan piece, 1), free: make(chan []byte, nbuf), extra: sp.extra}
	chunks := int((sp.size + sp.chunk - 1) / sp.chunk)
	slots := make([]chan piece, chunks)
	for i := range slots {
		slots[i] = make(chan piece, 1)
	}
	s.wg.Add(2)
	go s.schedule(sp, slots, nbuf)
	go s.sequence(sp, slots)
	return s
}

// schedule starts the fetch of each range once a buffer is free.
func (s *layerStream) schedule(sp streamSpec, slots []chan piece, nbuf int) {
	defer s.wg.Done()
	allocated := 0
	for i := range slots {
		var buf []byte
		if allocated < 2 || allocated < nbuf && s.takeToken() {
			buf = make([]byte, min(sp.chunk, sp.size))
			allocated++
		} else {
			select {
			case buf = <-s.free:
			case <-s.ctx.Done():
				return
			}
		}
		off := int64(i) * sp.chunk
		length := min(sp.chunk, sp.size-off)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := sp.eng.Load(s.ctx, sp.src, "layer "+sp.digest, length, off, func(r io.Reader) error {
				_, err := io.ReadFull(r, buf[:length])
				return err
			})
			slots[i] <- piece{buf: buf, n: int(length), err: err}
		}()
	}
}

// takeToken takes a token for one more buffer, without waiting.
func (s *layerStream) takeToken() bool {
	if s.extra == nil {
		return true
	}
	select {
	case s.extra <- struct{}{}:
		s.tokens++
		return true
	default:
		return false
	}
}

// sequence hashes the ranges in order and passes them to the reader.
func (s *layerStream) sequence(sp streamSpec, slots []chan piece) {
	defer s.wg.Done()
	h := sha256.New()
	send := func(p piece) bool {
		select {
		case s.out <- p:
			return true
		case <-s.ctx.Done():
			return false
		}
	}
	for _, slot := range slots {
		var p piece
		select {
		case p = <-slot:
		case <-s.ctx.Done():
			return
		}
		if p.err != nil {
			send(piece{err: p.err})
			return
		}
		h.Write(p.buf[:p.n])
		if sp.progress != nil {
			sp.progress(int64(p.n))
		}
		if !send(p) {
			return
		}
	}
	end := io.EOF
	if got := h.Sum(nil); !bytes.Equal(got, sp.want) {
		end = fmt.Errorf("%w: layer %s has sha256:%x (the registry served corrupt or different data)", ErrDigest, sp.digest, got)
	}
	send(piece{err: end})
}

func (s *layerStream) Read(p []byte) (int, error) {
	for {
		if s.off < s.cur.n {
			n := copy(p, s.cur.buf[s.off:s.cur.n])
			s.off += n
			return n, nil
		}
		if s.cur.buf != nil {
			s.free <- s.cur.buf // never blocks: free holds every buffer there is
			s.cur, s.off = piece{}, 0
		}
		if s.err != nil {
			return 0, s.err
		}
		select {
		case pc := <-s.out:
			if pc.err != nil {
				s.err = pc.err
				continue
			}
			s.cur, s.off = pc, 0
		case <-s.ctx.Done():
			s.err = context.Cause(s.ctx)
		}
	}
}

// verified reports whether the whole blob was read and matched its digest.
func (s *layerStream) verified() bool { return s.err == io.EOF && s.cur.n == s.off }

// Close stops the fetches and waits for them.
func (s *layerStream) Close() error {
	s.cancel(errors.New("layer stream closed"))
	s.wg.Wait()
	for ; s.tokens > 0; s.tokens-- {
		<-s.extra
	}
	return nil
}
