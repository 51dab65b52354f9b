package engine

// Verifying what was written (or what is already in DEST) against the
// source's checksum.

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// computed returns the checksum of what was written, from per-chunk CRCs or
// the sequential hasher, as per-digest-segment sums.
func (fr *fileRun) computed() ([][]byte, error) {
	want := fr.chk.want
	if want == nil {
		return nil, nil
	}
	if fr.inBody || fr.inlineHash() {
		return [][]byte{fr.bodySum}, nil
	}
	if fr.parts != nil {
		return fr.parts.result()
	}
	if !want.Algorithm.IsCRC() {
		return fr.digestSums()
	}
	alg := want.Algorithm
	var sums [][]byte
	var acc uint64
	var started bool
	bounds := fr.bounds()
	seg := 0
	for i, c := range fr.chunks {
		if !started {
			acc, started = fr.crcs[i], true
		} else {
			acc = checksum.CombineCRC(alg, acc, fr.crcs[i], c.length)
		}
		if c.off+c.length == bounds[seg] {
			sums = append(sums, checksum.CRCToSum(alg, acc))
			started = false
			seg++
		}
	}
	if len(fr.chunks) == 0 { // empty file
		sums = append(sums, alg.New().Sum(nil))
	}
	return sums, nil
}

// errMismatch reports a checksum that does not match the source's.
type errMismatch struct {
	path, what, want, got string
}

func (e *errMismatch) Error() string {
	return fmt.Sprintf("checksum mismatch for %s: %s expected %s, got %s", e.path, e.what, e.want, e.got)
}

// compare checks per-segment sums against the chosen checksum (and, for
// composites, each part's own checksum when the source listed one).
func (fr *fileRun) compare(sums [][]byte) (string, error) {
	want := fr.chk.want
	if want == nil {
		return "", nil
	}
	var got checksum.Value
	if want.Composite {
		for i, p := range fr.f.Parts {
			for _, pe := range p.Expect {
				if pe.Algorithm == want.Algorithm && !pe.Composite && i < len(sums) {
					if pv := (checksum.Value{Algorithm: pe.Algorithm, Sum: sums[i]}); !pv.Equal(pe) {
						return "", &errMismatch{fr.rel, fmt.Sprintf("%s of part %d", pe.Algorithm, i+1), pe.String(), pv.String()}
					}
				}
			}
		}
		got = checksum.Composite(want.Algorithm, sums)
	} else {
		if len(sums) != 1 {
			return "", fmt.Errorf("internal: %d digest segments for a full-object checksum", len(sums))
		}
		got = checksum.Value{Algorithm: want.Algorithm, Sum: sums[0]}
	}
	if !got.Equal(*want) {
		return "", &errMismatch{fr.rel, want.Kind(), want.String(), got.String()}
	}
	return got.String(), nil
}

// verifyExisting checks a file already at its final name (or held, see
// hold.go) against the source's checksum; it reports whether it can be
// kept as is.
func (fr *fileRun) verifyExisting(ctx context.Context, root *os.Root, name string) bool {
	f, err := root.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() != fr.f.Size {
		return false
	}
	if rec, ok := fr.matchStamp(stampContent(f)); ok {
		fr.recorded = rec
		return true
	}
	if fr.chk.want == nil || ctx.Err() != nil {
		return false
	}
	sums, err := hashReadBack(f, newDigestLane(fr.chk.want.Algorithm, fr.bounds()), fr.f.Size)
	if err != nil {
		return false
	}
	if _, err := fr.compare(sums); err != nil {
		return false
	}
	sealStamp(f, fr.stampValue())
	return true
}

func crcOf(alg checksum.Algorithm, r io.Reader) (uint64, error) {
	h := alg.New()
	if _, err := io.Copy(h, r); err != nil {
		return 0, err
	}
	return checksum.CRCFromSum(h.Sum(nil)), nil
}
