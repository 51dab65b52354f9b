package checksum

import (
	"encoding/binary"
	"fmt"
)

// Combining CRCs of consecutive ranges (zlib's crc32_combine, generalised to
// any reflected CRC with all-ones init and xor-out — true of CRC32, CRC32C and
// CRC64NVME). This lets the engine check a full-object CRC from per-chunk CRCs
// computed as chunks stream in, with no second pass over the file.

type crcParams struct {
	poly  uint64 // reflected polynomial
	width uint
}

var params = map[Algorithm]crcParams{
	CRC32:     {0xedb88320, 32},
	CRC32C:    {0x82f63b78, 32},
	CRC64NVME: {0x9a6c9329ac4bc9b5, 64},
}

func gf2Times(mat []uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat []uint64) {
	for n := range mat {
		square[n] = gf2Times(mat, mat[n])
	}
}

// CombineCRC returns the CRC of A||B given crcA, crcB and len(B).
func CombineCRC(alg Algorithm, crcA, crcB uint64, lenB int64) uint64 {
	p, ok := params[alg]
	if !ok {
		panic("checksum: CombineCRC on non-CRC algorithm " + string(alg))
	}
	if lenB <= 0 {
		return crcA
	}
	w := p.width
	even := make([]uint64, w)
	odd := make([]uint64, w)
	// odd = operator for one zero bit
	odd[0] = p.poly
	row := uint64(1)
	for n := uint(1); n < w; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(even, odd) // two zero bits
	gf2Square(odd, even) // four zero bits
	for {
		gf2Square(even, odd)
		if lenB&1 != 0 {
			crcA = gf2Times(even, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
		gf2Square(odd, even)
		if lenB&1 != 0 {
			crcA = gf2Times(odd, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
	}
	return crcA ^ crcB
}

// CRCFromSum decodes a big-endian CRC sum (as hash.Hash.Sum returns it).
func CRCFromSum(sum []byte) uint64 {
	switch len(sum) {
	case 4:
		return uint64(binary.BigEndian.Uint32(sum))
	case 8:
		return binary.BigEndian.Uint64(sum)
	}
	panic(fmt.Sprintf("checksum: CRC sum of %d bytes", len(sum)))
}

// CRCToSum encodes a CRC as the big-endian bytes S3 transmits.
func CRCToSum(alg Algorithm, crc uint64) []byte {
	if params[alg].width == 32 {
		return binary.BigEndian.AppendUint32(nil, uint32(crc))
	}
	return binary.BigEndian.AppendUint64(nil, crc)
}

// Composite computes an S3 COMPOSITE checksum from raw per-part sums.
func Composite(alg Algorithm, partSums [][]byte) Value {
	h := alg.New()
	for _, s := range partSums {
		h.Write(s)
	}
	return Value{Algorithm: alg, Sum: h.Sum(nil), Composite: true, Parts: len(partSums)}
}
