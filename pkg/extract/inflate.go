package extract

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// inflater decodes raw DEFLATE (RFC 1951) from a large input buffer into a
// large output buffer, libdeflate's way: a 64-bit bit buffer refilled 8
// bytes at a time, one table lookup per symbol, and no per-symbol check of
// the input or output bounds inside a block (the loop stops while there is
// room for a longest match). It is about twice as fast as
// compress/flate's decoder on model weights, where nearly every symbol is
// a literal; a modelcar layer's unpacking is bound by it.
//
// Output lands in out after the 32 KiB of history the back-references may
// reach; the gzip reader hands it out from there and then slides the
// window. A stream cut short fails with io.ErrUnexpectedEOF, and invalid
// data with a CorruptError: never a silent truncation.
type inflater struct {
	r   io.Reader
	in  []byte // in[ip:iend] not yet consumed
	ip  int
	end int
	eof bool  // r reported io.EOF
	rer error // r's error other than io.EOF, returned once the input runs out

	bits    uint64 // bits above nbits are zero or the stream's next bits
	nbits   uint
	virtual uint // zero bytes appended past the end of the input

	out  []byte
	op   int // out[:op] decoded
	hist int // out[hist:op] may be referenced (a new gzip member starts afresh)

	final   bool
	block   int // blockHeader, blockHuffman, blockStored
	stored  int // bytes left in a stored block
	lit     []uint32
	dist    []uint32
	fixed   bool // lit and dist hold the fixed code
	lengths [286 + 30]uint8
	total   int64 // input bytes consumed, for error offsets
}

const (
	blockHeader = iota
	blockHuffman
	blockStored
	blockDone // the final block ended
)

const (
	windowSize = 32 << 10
	maxMatch   = 258
	inBufSize  = 256 << 10
	// lookBehind bytes of input are kept when the buffer is refilled: the
	// bit buffer may hold up to 8 bytes that are given back (unread) when
	// the stream turns byte-aligned (stored blocks, the gzip trailer).
	lookBehind = 8
)

// CorruptError reports invalid compressed data at an input offset.
type CorruptError struct {
	Offset int64
	Why    string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt deflate data at compressed byte %d: %s", e.Offset, e.Why)
}

func newInflater(r io.Reader, outSize int) *inflater {
	return &inflater{
		r:    r,
		in:   make([]byte, inBufSize+lookBehind),
		out:  make([]byte, windowSize+outSize),
		lit:  make([]uint32, 0, 2048),
		dist: make([]uint32, 0, 1024),
	}
}

func (f *inflater) corrupt(why string) error {
	return &CorruptError{Offset: f.total + int64(f.ip), Why: why}
}

// fill reads more input, keeping the unconsumed bytes and lookBehind bytes
// before them. It returns false at the end of the input.
func (f *inflater) fill() bool {
	if f.eof || f.rer != nil {
		return false
	}
	keep := max(f.ip-lookBehind, 0)
	if keep > 0 {
		n := copy(f.in, f.in[keep:f.end])
		f.total += int64(keep)
		f.ip -= keep
		f.end = n
	}
	for f.end < len(f.in) {
		n, err := f.r.Read(f.in[f.end:])
		f.end += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				f.eof = true
			} else {
				f.rer = err
			}
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	return true
}

// inputErr is the error for input that ended (or failed) too early.
func (f *inflater) inputErr() error {
	if f.rer != nil {
		return f.rer
	}
	return io.ErrUnexpectedEOF
}

// refillSlow tops the bit buffer up byte by byte near the end of the
// buffered input, reading more, and past the end of the input with zero
// bytes (counted in virtual: consuming them is an error).
func (f *inflater) refillSlow() {
	for f.nbits < 56 {
		if f.ip < f.end {
			f.bits |= uint64(f.in[f.ip]) << f.nbits
			f.ip++
		} else if !f.fill() {
			if f.virtual >= 8 {
				return
			}
			f.virtual++
		} else {
			continue
		}
		f.nbits += 8
	}
}

// need ensures n (≤ 56) bits are in the bit buffer.
func (f *inflater) need(n uint) error {
	if f.nbits < n {
		f.refillSlow()
	}
	if f.nbits < n+8*f.virtual {
		return f.inputErr()
	}
	return nil
}

func (f *inflater) take(n uint) uint32 {
	v := uint32(f.bits & (1<<n - 1))
	f.bits >>= n
	f.nbits -= n
	return v
}

// align drops the bits up to the next byte boundary and gives the whole
// bytes left in the bit buffer back to the input.
func (f *inflater) align() error {
	f.take(f.nbits & 7)
	back := int(f.nbits >> 3)
	if back < int(f.virtual) {
		return f.inputErr()
	}
	f.ip -= back - int(f.virtual)
	f.bits, f.nbits, f.virtual = 0, 0, 0
	return nil
}

// readByte reads one byte of the input (byte-aligned, bit buffer empty).
func (f *inflater) readByte() (byte, error) {
	if f.ip >= f.end && !f.fill() {
		if f.ip >= f.end {
			return 0, f.inputErr()
		}
	}
	b := f.in[f.ip]
	f.ip++
	return b, nil
}

// atEOF reports whether the input is exhausted (byte-aligned state).
func (f *inflater) atEOF() (bool, error) {
	for f.ip >= f.end {
		if !f.fill() {
			if f.ip < f.end {
				return false, nil
			}
			return f.rer == nil, f.rer
		}
	}
	return false, nil
}

// reset starts a new DEFLATE stream (a gzip member) after the current one.
func (f *inflater) reset() {
	f.final, f.block, f.hist = false, blockHeader, f.op
}

// slide moves the last windowSize bytes of output to the front.
func (f *inflater) slide() {
	keep := max(f.op-windowSize, 0)
	if keep == 0 {
		return
	}
	copy(f.out, f.out[keep:f.op])
	f.op -= keep
	f.hist = max(f.hist-keep, 0)
}

// outSlack is the room a step of huffman needs: two literals and a
// longest match after them (and one byte to spare).
const outSlack = maxMatch + 3

// room reports whether a block step can make progress in out.
func (f *inflater) room() bool { return f.op <= len(f.out)-outSlack }

// step decodes until the output is (almost) full or the final block ends.
// The caller slides the window when !f.room().
func (f *inflater) step() error {
	for f.room() {
		var err error
		switch f.block {
		case blockHeader:
			err = f.blockHeader()
		case blockHuffman:
			err = f.huffman()
		case blockStored:
			err = f.copyStored()
		case blockDone:
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *inflater) blockHeader() error {
	if f.final {
		f.block = blockDone
		return nil
	}
	if err := f.need(3); err != nil {
		return err
	}
	f.final = f.take(1) == 1
	switch f.take(2) {
	case 0:
		if err := f.align(); err != nil {
			return err
		}
		var hdr [4]byte
		for i := range hdr {
			b, err := f.readByte()
			if err != nil {
				return err
			}
			hdr[i] = b
		}
		n, nn := binary.LittleEndian.Uint16(hdr[:2]), binary.LittleEndian.Uint16(hdr[2:])
		if n != ^nn {
			return f.corrupt("stored block length check failed")
		}
		f.stored, f.block = int(n), blockStored
	case 1:
		if !f.fixed {
			var l [288 + 32]uint8
			fixLengths(l[:288])
			for i := 288; i < len(l); i++ {
				l[i] = 5
			}
			var err error
			if f.lit, err = buildTable(f.lit, l[:288], litTableBits, litLenEntry); err != nil {
				return f.corrupt("fixed code: " + err.Error())
			}
			if f.dist, err = buildTable(f.dist, l[288:], distTableBits, distEntry); err != nil {
				return f.corrupt("fixed code: " + err.Error())
			}
			f.fixed = true
		}
		f.block = blockHuffman
	case 2:
		if err := f.dynamic(); err != nil {
			return err
		}
		f.fixed, f.block = false, blockHuffman
	default:
		return f.corrupt("reserved block type")
	}
	return nil
}

// fixLengths sets the fixed literal/length code lengths of RFC 1951 3.2.6.
func fixLengths(l []uint8) {
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
}

var clOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

func clEntry(sym int) uint32 { return entLiteral | uint32(sym)<<16 }

// dynamic reads the code lengths of a dynamic block and builds its tables.
func (f *inflater) dynamic() error {
	if err := f.need(14); err != nil {
		return err
	}
	nlit := int(f.take(5)) + 257
	ndist := int(f.take(5)) + 1
	nclen := int(f.take(4)) + 4
	if nlit > 286 || ndist > 30 {
		return f.corrupt("too many length or distance codes")
	}
	var cl [19]uint8
	for i := range nclen {
		if err := f.need(3); err != nil {
			return err
		}
		cl[clOrder[i]] = uint8(f.take(3))
	}
	clTab, err := buildTable(make([]uint32, 0, 128), cl[:], 7, clEntry)
	if err != nil {
		return f.corrupt("code length code: " + err.Error())
	}
	lengths := f.lengths[:nlit+ndist]
	for i := 0; i < len(lengths); {
		if err := f.need(7 + 7); err != nil {
			return err
		}
		e := clTab[f.bits&127]
		if e&entKindMask != entLiteral {
			return f.corrupt("invalid code length code")
		}
		f.take(uint(e & 0xff))
		sym := int(e >> 16)
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return f.corrupt("repeated code length with no previous length")
			}
			val, rep = lengths[i-1], 3+int(f.take(2))
		case 17:
			rep = 3 + int(f.take(3))
		default:
			rep = 11 + int(f.take(7))
		}
		if i+rep > len(lengths) {
			return f.corrupt("code lengths overflow")
		}
		for range rep {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 {
		return f.corrupt("no end-of-block code")
	}
	if f.lit, err = buildTable(f.lit, lengths[:nlit], litTableBits, litLenEntry); err != nil {
		return f.corrupt("literal/length code: " + err.Error())
	}
	if f.dist, err = buildTable(f.dist, lengths[nlit:], distTableBits, distEntry); err != nil {
		return f.corrupt("distance code: " + err.Error())
	}
	return nil
}

func (f *inflater) copyStored() error {
	for f.stored > 0 && f.op < len(f.out) {
		if f.ip >= f.end && !f.fill() && f.ip >= f.end {
			return f.inputErr()
		}
		n := copy(f.out[f.op:min(len(f.out), f.op+f.stored)], f.in[f.ip:f.end])
		f.op += n
		f.ip += n
		f.stored -= n
	}
	if f.stored == 0 {
		f.block = blockHeader
	}
	return nil
}

// huffman decodes symbols of the current block until its end or until the
// output has less room than a longest match (and a literal before it).
// Locals keep the hot state in registers; every exit writes it back.
//
// Bit budget: a refill leaves 56 or more bits while 16 bytes of input are
// buffered; three literals take at most 45, a match (length code, its
// extra bits, distance code, its extra bits) at most 15+5+15+13 = 48, so
// the loop refills once per three literals and at most twice per match.
// Shift counts are masked with 63: Go then emits a plain shift.
func (f *inflater) huffman() error {
	bitbuf, nbits := f.bits, f.nbits
	in, ip, end := f.in, f.ip, f.end
	out, op := f.out, f.op
	lit, dist := f.lit, f.dist
	lt := (*[1 << litTableBits]uint32)(lit)
	dt := (*[1 << distTableBits]uint32)(dist)
	limit := len(out) - outSlack
	const litMask, distMask = 1<<litTableBits - 1, 1<<distTableBits - 1
	var err error
	for op <= limit {
		if end-ip >= 16 {
			bitbuf |= binary.LittleEndian.Uint64(in[ip:]) << (nbits & 63)
			ip += int((63 - nbits) >> 3)
			nbits |= 56
		} else if nbits < 48 {
			// Near the end of the buffered input, or past the end of
			// the input, where zeros are counted in f.virtual (consuming
			// them fails the check on exit).
			f.bits, f.nbits, f.ip = bitbuf, nbits, ip
			f.refillSlow()
			bitbuf, nbits, in, ip, end = f.bits, f.nbits, f.in, f.ip, f.end
		}
		e := lt[bitbuf&litMask]
		if e&entKindMask == entLink {
			e = lit[int(e>>16)+int(bitbuf>>litTableBits)&(1<<(e>>12&0xf)-1)]
		}
		bitbuf >>= e & 63
		nbits -= uint(e & 63)
		if e&entKindMask == entLiteral {
			out[op] = byte(e >> 16)
			op++
			e = lt[bitbuf&litMask]
			if e&entKindMask == entLink {
				e = lit[int(e>>16)+int(bitbuf>>litTableBits)&(1<<(e>>12&0xf)-1)]
			}
			bitbuf >>= e & 63
			nbits -= uint(e & 63)
			if e&entKindMask == entLiteral {
				out[op] = byte(e >> 16)
				op++
				e = lt[bitbuf&litMask]
				if e&entKindMask == entLink {
					e = lit[int(e>>16)+int(bitbuf>>litTableBits)&(1<<(e>>12&0xf)-1)]
				}
				bitbuf >>= e & 63
				nbits -= uint(e & 63)
				if e&entKindMask == entLiteral {
					out[op] = byte(e >> 16)
					op++
					continue
				}
			}
			if nbits < 33 {
				if end-ip >= 8 {
					bitbuf |= binary.LittleEndian.Uint64(in[ip:]) << (nbits & 63)
					ip += int((63 - nbits) >> 3)
					nbits |= 56
				} else {
					f.bits, f.nbits, f.ip = bitbuf, nbits, ip
					f.refillSlow()
					bitbuf, nbits, in, ip, end = f.bits, f.nbits, f.in, f.ip, f.end
				}
			}
		}
		switch e & entKindMask {
		case entLength:
		case entEnd:
			f.block = blockHeader
			goto done
		default:
			err = f.corruptAt(ip, "invalid literal/length code")
			goto done
		}
		n := e >> 12 & 0xf
		length := int(e>>16) + int(bitbuf&(1<<n-1))
		bitbuf >>= n & 63
		nbits -= uint(n)
		d := dt[bitbuf&distMask]
		if d&entKindMask == entLink {
			d = dist[int(d>>16)+int(bitbuf>>distTableBits)&(1<<(d>>12&0xf)-1)]
		}
		if d&entKindMask != entLength {
			err = f.corruptAt(ip, "invalid distance code")
			goto done
		}
		bitbuf >>= d & 63
		nbits -= uint(d & 63)
		n = d >> 12 & 0xf
		distance := int(d>>16) + int(bitbuf&(1<<n-1))
		bitbuf >>= n & 63
		nbits -= uint(n)
		if distance > op-f.hist {
			err = f.corruptAt(ip, "distance too far back")
			goto done
		}
		src := op - distance
		if distance >= length {
			copy(out[op:op+length], out[src:src+length])
		} else {
			// Overlapping: the copied run repeats; each copy doubles it.
			for k := 0; k < length; {
				k += copy(out[op+k:op+length], out[src:op+k])
			}
		}
		op += length
	}
done:
	f.bits, f.nbits, f.ip, f.op = bitbuf, nbits, ip, op
	if err == nil && (f.nbits > 64 || f.nbits < 8*f.virtual) {
		err = f.inputErr()
	}
	return err
}

func (f *inflater) corruptAt(ip int, why string) error {
	return &CorruptError{Offset: f.total + int64(ip), Why: why}
}
