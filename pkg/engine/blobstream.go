package engine

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// ErrBlobMismatch is wrapped by errors about a blob whose content does not
// match its checksum.
var ErrBlobMismatch = errors.New("digest mismatch")

// blobStream reads one blob front to back for unpacking, fetching up to
// ahead ranges in parallel (each within the engine's request bound) and
// handing them over in order. The checksum is computed in its own
// goroutine as ranges arrive (so hashing overlaps decompression), and the
// end of the stream is io.EOF only when it matched: otherwise the last Read
// returns ErrBlobMismatch, so whatever consumed the bytes fails before
// anything it wrote can be committed.
type blobStream struct {
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
	e        *Engine
	src      Loader
	name     string
	want     checksum.Value
	size     int64
	chunk    int64
	ahead    int
	progress func(n int64)
	// extra is shared by the streams of one unit: a stream always has two
	// buffers and takes more (up to ahead+2) only while tokens are left, so
	// several large blobs in flight together stay within one memory budget.
	extra chan struct{}
}

func openBlobStream(ctx context.Context, sp streamSpec) *blobStream {
	ctx, cancel := context.WithCancelCause(ctx)
	nbuf := sp.ahead + 2 // ahead fetching, one hashed, one read by the consumer
	s := &blobStream{ctx: ctx, cancel: cancel, out: make(chan piece, 1), free: make(chan []byte, nbuf), extra: sp.extra}
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

// schedule starts the fetch of each range once a buffer is free. The
// buffer is taken before the request token, and the token is returned as
// soon as the range is in memory: a slow consumer holds buffers, never
// requests.
func (s *blobStream) schedule(sp streamSpec, slots []chan piece, nbuf int) {
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
			err := sp.e.load(s.ctx, sp.src, sp.name, length, off, func(r io.Reader) error {
				_, err := io.ReadFull(r, buf[:length])
				return err
			})
			slots[i] <- piece{buf: buf, n: int(length), err: err}
		}()
	}
}

// takeToken takes a token for one more buffer, without waiting.
func (s *blobStream) takeToken() bool {
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
func (s *blobStream) sequence(sp streamSpec, slots []chan piece) {
	defer s.wg.Done()
	h := newHash(sp.want.Algorithm, sp.size)
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
	if got := (checksum.Value{Algorithm: sp.want.Algorithm, Sum: h.Sum(nil)}); !got.Equal(sp.want) {
		end = fmt.Errorf("%w: %s has %s, %s expected (the server sent corrupt or different data)", ErrBlobMismatch, sp.name, got, sp.want)
	}
	send(piece{err: end})
}

func (s *blobStream) Read(p []byte) (int, error) {
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

// verified reports whether the whole blob was read and matched.
func (s *blobStream) verified() bool { return s.err == io.EOF && s.cur.n == s.off }

// Close stops the fetches and waits for them.
func (s *blobStream) Close() error {
	s.cancel(errors.New("blob stream closed"))
	s.wg.Wait()
	for ; s.tokens > 0; s.tokens-- {
		<-s.extra
	}
	return nil
}

// newHash returns the hash of alg for a file of size bytes (a git blob
// SHA-1 is seeded with the size).
func newHash(alg checksum.Algorithm, size int64) hash.Hash { return alg.NewSized(size) }
