package extract

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// gunzipOut is the output buffer of the gzip reader: large, so each Read
// hands the tar reader a long run and the window slides rarely.
const gunzipOut = 1 << 20

var errGzipHeader = errors.New("gzip: invalid header")

// gunzip reads a gzip stream (RFC 1952) of one or more members with the
// inflater. Every member's CRC-32 and length are checked: io.EOF is
// returned only after the last member's trailer matched, so a decoding bug
// or a corrupt layer can never pass for a clean end.
type gunzip struct {
	f     *inflater
	rp    int // out[rp:f.op] not yet read
	crc   uint32
	size  uint32
	state int
	err   error
}

const (
	gzHeader = iota
	gzBody
	gzNext // a member ended: another one, or the end of the stream
)

// newGunzip reads the first member's header, so a stream that is not gzip
// fails here as compress/gzip's NewReader does.
func newGunzip(r io.Reader) (*gunzip, error) {
	z := &gunzip{f: newInflater(r, gunzipOut)}
	if err := z.header(); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	z.state = gzBody
	return z, nil
}

func (z *gunzip) Close() error { return nil }

func (z *gunzip) Read(p []byte) (int, error) {
	for {
		if z.rp < z.f.op {
			n := copy(p, z.f.out[z.rp:z.f.op])
			z.rp += n
			return n, nil
		}
		if z.err != nil {
			return 0, z.err
		}
		z.err = z.advance()
	}
}

// WriteTo hands out whole runs of the output buffer without a copy into a
// caller's buffer (io.Copy uses it).
func (z *gunzip) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if z.rp < z.f.op {
			n, err := w.Write(z.f.out[z.rp:z.f.op])
			z.rp += n
			total += int64(n)
			if err != nil {
				return total, err
			}
			continue
		}
		if z.err != nil {
			if errors.Is(z.err, io.EOF) {
				return total, nil
			}
			return total, z.err
		}
		z.err = z.advance()
	}
}

// advance decodes the next run of output (everything before it was read).
func (z *gunzip) advance() error {
	f := z.f
	for {
		switch z.state {
		case gzHeader:
			eof, err := f.atEOF()
			if err != nil {
				return err
			}
			if eof {
				return io.EOF
			}
			if err := z.header(); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
			f.reset()
			z.state = gzBody
		case gzBody:
			if !f.room() {
				f.slide()
				z.rp = f.op
			}
			start := f.op
			if err := f.safeStep(); err != nil {
				z.rp = f.op // never hand out what a failed step decoded
				return fmt.Errorf("gzip: %w", err)
			}
			z.crc = crc32.Update(z.crc, crc32.IEEETable, f.out[start:f.op])
			z.size += uint32(f.op - start)
			if f.block == blockDone {
				if err := z.trailer(); err != nil {
					z.rp = f.op
					return err
				}
				z.state = gzHeader
			}
			if f.op > start {
				return nil
			}
		}
	}
}

func (z *gunzip) trailer() error {
	f := z.f
	if err := f.align(); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	var t [8]byte
	for i := range t {
		b, err := f.readByte()
		if err != nil {
			return fmt.Errorf("gzip trailer: %w", err)
		}
		t[i] = b
	}
	crc := uint32(t[0]) | uint32(t[1])<<8 | uint32(t[2])<<16 | uint32(t[3])<<24
	size := uint32(t[4]) | uint32(t[5])<<8 | uint32(t[6])<<16 | uint32(t[7])<<24
	if crc != z.crc || size != z.size {
		return fmt.Errorf("gzip: checksum error: the layer's CRC-32 or length does not match its content")
	}
	z.crc, z.size = 0, 0
	return nil
}

// header reads a member header (RFC 1952 2.3), its optional fields skipped
// (and its CRC-16 checked when present).
func (z *gunzip) header() error {
	f := z.f
	crc := uint32(0)
	next := func() (byte, error) {
		b, err := f.readByte()
		if err == nil {
			crc = crc32.Update(crc, crc32.IEEETable, []byte{b})
		} else if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
		return b, err
	}
	var h [10]byte
	for i := range h {
		b, err := next()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		h[i] = b
	}
	if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 {
		return errGzipHeader
	}
	flg := h[3]
	if flg&0xe0 != 0 {
		return errGzipHeader
	}
	skip := func() error { _, err := next(); return err }
	if flg&0x04 != 0 { // FEXTRA
		lo, err := next()
		if err != nil {
			return err
		}
		hi, err := next()
		if err != nil {
			return err
		}
		for range int(lo) | int(hi)<<8 {
			if err := skip(); err != nil {
				return err
			}
		}
	}
	for _, bit := range []byte{0x08, 0x10} { // FNAME, FCOMMENT: zero-terminated
		if flg&bit == 0 {
			continue
		}
		for {
			b, err := next()
			if err != nil {
				return err
			}
			if b == 0 {
				break
			}
		}
	}
	if flg&0x02 != 0 { // FHCRC
		want := uint16(crc)
		lo, err := f.readByte()
		if err != nil {
			return err
		}
		hi, err := f.readByte()
		if err != nil {
			return err
		}
		if uint16(lo)|uint16(hi)<<8 != want {
			return errGzipHeader
		}
	}
	return nil
}

// safeStep runs one decoding step. The decoder reads hostile input (a
// layer is unpacked as it streams, before its digest is known to match): a
// fault no fuzzer found (an index out of range) becomes a corrupt-stream
// error naming it, not a crash of the whole pull with a stack trace.
func (f *inflater) safeStep() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = f.corrupt(fmt.Sprintf("decoder fault (%v)", p))
		}
	}()
	return f.step()
}
