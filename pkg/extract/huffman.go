package extract

import (
	"errors"
	"math/bits"
	"slices"
)

// A decoding table entry (uint32), libdeflate's layout in spirit: one
// lookup of the low bits of the bit buffer yields what to do and how many
// bits to drop, so the hot loop has no tree walk and no per-bit work.
//
//	bits  0..7   code length: bits to consume (the whole code, also in subtables)
//	bits  8..11  kind (entLiteral …)
//	bits 12..15  extra bits of a length/distance, or a subtable's index bits
//	bits 16..31  literal byte, length or distance base, or subtable offset
const (
	entLiteral = iota << 8
	entLength
	entEnd
	entLink
	entInvalid
	entKindMask = 0xf << 8
)

const (
	litTableBits  = 10 // primary table of the literal/length code
	distTableBits = 8  // primary table of the distance code
	maxCodeLen    = 15
)

var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

var errHuffman = errors.New("invalid Huffman code lengths")

// symbolEntry maps a symbol of code kind to its entry (without the length).
type symbolEntry func(sym int) uint32

func litLenEntry(sym int) uint32 {
	switch {
	case sym < 256:
		return entLiteral | uint32(sym)<<16
	case sym == 256:
		return entEnd
	case sym < 286:
		i := sym - 257
		return entLength | uint32(lengthExtra[i])<<12 | uint32(lengthBase[i])<<16
	}
	return entInvalid // 286 and 287: part of the fixed code, never valid
}

func distEntry(sym int) uint32 {
	if sym < 30 {
		return entLength | uint32(distExtra[sym])<<12 | uint32(distBase[sym])<<16
	}
	return entInvalid
}

// buildTable fills tab (reused across blocks) with the canonical Huffman
// code of lengths, tb bits in the primary table and subtables behind it
// for longer codes. Over-subscribed codes are refused; incomplete codes
// are accepted (their missing codes decode to entInvalid) only where
// RFC 1951 and zlib accept them: a code of one symbol, or no symbol.
func buildTable(tab []uint32, lengths []uint8, tb uint, entry symbolEntry) ([]uint32, error) {
	var count [maxCodeLen + 1]int
	for _, l := range lengths {
		count[l]++
	}
	count[0] = 0
	left := 1
	used := 0
	for l := 1; l <= maxCodeLen; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return tab, errHuffman
		}
		used += count[l]
	}
	if left > 0 && used > 0 && !(used == 1 && count[1] == 1) {
		return tab, errHuffman
	}
	var next [maxCodeLen + 2]int
	code := 0
	for l := 1; l <= maxCodeLen; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	size := 1 << tb
	tab = slices.Grow(tab[:0], size)[:size]
	if left > 0 {
		// Incomplete: the slots no code fills must decode as invalid.
		for i := range tab {
			tab[i] = entInvalid
		}
	}
	// Subtable sizes: for each primary slot, the longest code behind it.
	// Built per block (a dynamic block brings its own code), so nothing
	// here allocates.
	var subBits [1 << litTableBits]uint8
	var codes [288]uint16
	mask := size - 1
	long := false
	for sym, l := range lengths {
		if l == 0 {
			continue
		}
		c := next[l]
		next[l]++
		rev := int(bits.Reverse16(uint16(c)) >> (16 - uint(l)))
		codes[sym] = uint16(rev)
		if uint(l) > tb {
			p := rev & mask
			subBits[p] = max(subBits[p], l-uint8(tb))
			long = true
		}
	}
	for p := range size {
		if !long {
			break
		}
		if subBits[p] == 0 {
			continue
		}
		off := len(tab)
		for range 1 << subBits[p] {
			tab = append(tab, entInvalid)
		}
		tab[p] = entLink | uint32(subBits[p])<<12 | uint32(off)<<16
	}
	for sym, l := range lengths {
		if l == 0 {
			continue
		}
		e := entry(sym) | uint32(l)
		rev := int(codes[sym])
		if uint(l) <= tb {
			for i := rev; i < size; i += 1 << l {
				tab[i] = e
			}
			continue
		}
		link := tab[rev&mask]
		off, sb := int(link>>16), uint(link>>12&0xf)
		step := 1 << (uint(l) - tb)
		for i := rev >> tb; i < 1<<sb; i += step {
			tab[off+i] = e
		}
	}
	return tab, nil
}
