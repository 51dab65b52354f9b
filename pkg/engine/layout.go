package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// chunk is one ranged read.
type chunk struct {
	off, length int64
	part        int // index into File.Parts, or -1
}

// layoutChunks cuts a file into ranges of at most size bytes that never
// straddle a part boundary, so per-part checksums can be computed.
func layoutChunks(f File, size int64) []chunk {
	var out []chunk
	if f.Stream {
		if f.Size == 0 {
			return nil
		}
		return []chunk{{0, f.Size, -1}} // one request for the whole body; -1: unknown length
	}
	cut := func(off, n int64, part int) {
		for n > 0 {
			l := min(n, size)
			out = append(out, chunk{off, l, part})
			off, n = off+l, n-l
		}
	}
	if partsUsable(f) {
		var off int64
		for i, p := range f.Parts {
			cut(off, p.Size, i)
			off += p.Size
		}
		return out
	}
	cut(0, f.Size, -1)
	return out
}

func partsUsable(f File) bool {
	if len(f.Parts) == 0 {
		return false
	}
	var sum int64
	for _, p := range f.Parts {
		if p.Size <= 0 {
			return false
		}
		sum += p.Size
	}
	return sum == f.Size
}

// layoutID fingerprints a chunk layout for the resume journal.
func layoutID(chunks []chunk) string {
	h := sha256.New()
	for _, c := range chunks {
		fmt.Fprintf(h, "%d:%d:%d;", c.off, c.length, c.part)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// check is the verification chosen for one file.
type check struct {
	want *checksum.Value // nil: size only
}

func (c check) describe() string {
	if c.want == nil {
		return "size only"
	}
	return c.want.Kind()
}

// chooseCheck picks the strongest checksum the engine can verify for f.
// A composite checksum is usable only when the part layout is known.
func chooseCheck(f File, mode VerifyMode) (check, error) {
	if mode == VerifySize {
		return check{}, nil
	}
	cands := slices.Clone(f.Expect)
	slices.SortStableFunc(cands, func(a, b checksum.Value) int { return checksum.Strength(b) - checksum.Strength(a) })
	for i := range cands {
		v := cands[i]
		if v.Composite && (!partsUsable(f) || v.Parts != len(f.Parts)) {
			continue
		}
		return check{want: &v}, nil
	}
	if mode == VerifyStrict {
		return check{}, fmt.Errorf("%s: the source offers no checksum stronger than the size and --verify=strict is set: "+
			"upload it with a checksum (e.g. CRC64NVME or SHA-256) or use --verify=auto", f.Path)
	}
	return check{}, nil
}
