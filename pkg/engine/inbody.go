package engine

import (
	"hash"
	"io"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// checkFromBody picks the checksum to verify from the response's own
// checksums (File.ChecksumsInBody) and returns the hash to compute inline,
// nil for size only. A single range arrives in order, so any algorithm,
// cryptographic ones included, is hashed as the bytes stream in.
func (fr *fileRun) checkFromBody(body io.Reader, mode VerifyMode) (hash.Hash, error) {
	var vals []checksum.Value
	if bc, ok := body.(BodyChecksums); ok {
		vals = bc.Checksums()
	}
	f := fr.f
	f.Expect = vals
	chk, err := chooseCheck(f, mode)
	if err != nil {
		return nil, Permanent(err)
	}
	fr.chk = chk
	if chk.want == nil {
		return nil, nil
	}
	return chk.want.Algorithm.New(), nil
}
