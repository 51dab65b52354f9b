package main

import (
	"encoding/hex"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// KServe's digest pinning (kserve#6051): the webhook copies the annotation
// internal.serving.kserve.io/verification-digest into VERIFICATION_DIGEST
// as "sha256:HEX", and the initializer fails closed unless the one file or
// archive it downloads has exactly that SHA-256. Here the digest becomes
// the first expected checksum of that file (or archive blob) in the plan,
// so the engine verifies it inline as the bytes arrive, before the file
// gets its final name or anything unpacked from the archive is committed,
// and before confidential decryption reads it.

// parseVerificationDigest reads "sha256:HEX" (64 hex digits, any case).
func parseVerificationDigest(s string) (checksum.Value, error) {
	hexSum, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hexSum) != 64 {
		return checksum.Value{}, fmt.Errorf("invalid VERIFICATION_DIGEST (--verification-digest) %q: want sha256: followed by 64 hex digits", s)
	}
	sum, err := hex.DecodeString(hexSum)
	if err != nil {
		return checksum.Value{}, fmt.Errorf("invalid VERIFICATION_DIGEST (--verification-digest) %q: want sha256: followed by 64 hex digits", s)
	}
	return checksum.Value{Algorithm: checksum.SHA256, Sum: sum}, nil
}

// pinDigest makes the plan's single file, or the single blob of its single
// unit (an http archive, a one-layer image), verified by want and nothing
// else. Any other shape cannot be pinned by one digest: an error says why,
// before anything is fetched. keep is the include/exclude filter.
func pinDigest(plan *engine.Plan, want checksum.Value, keep func(string) bool, log *zap.Logger) error {
	pinned := "sha256:" + want.String()
	refuse := func(what string) error {
		return fmt.Errorf("VERIFICATION_DIGEST is set but %s is %s: a digest pins a single file or archive; "+
			"point SRC at one file or archive, or remove the verification digest (annotation %s)",
			plan.Source, what, "internal.serving.kserve.io/verification-digest")
	}
	switch {
	case len(plan.Checked) > 0:
		return refuse(fmt.Sprintf("verified in place (--pvc-mode=verify, %d files): nothing is downloaded to hash; use --pvc-mode=copy", len(plan.Checked)))
	case len(plan.Links) > 0:
		return refuse(fmt.Sprintf("linked into DEST from a mounted claim (%d links): nothing is downloaded to hash; use --pvc-mode=copy", len(plan.Links)))
	case len(plan.Files) == 1 && len(plan.Units) == 0:
		f := &plan.Files[0]
		if rel, err := engine.CleanRel(f.Path); err == nil && !f.Unfiltered && keep != nil && !keep(rel) {
			return refuse(fmt.Sprintf("one file, %s, which the include/exclude patterns leave out", rel))
		}
		exp, err := pinSHA256(f.Path, f.Expect, want, digestPin)
		if err != nil {
			return err
		}
		f.Expect = exp
		log.Info("verification digest pins the file", zap.String("file", f.Path), zap.String("digest", pinned))
		return nil
	case len(plan.Units) == 1 && len(plan.Files) == 0 && len(plan.Units[0].Blobs) == 1:
		u := &plan.Units[0]
		b := &u.Blobs[0]
		exp, err := pinSHA256(b.Path, b.Expect, want, digestPin)
		if err != nil {
			return err
		}
		b.Expect = exp
		// The unit's ID keys its staging and its "already committed" record:
		// a tree committed under another digest (or none) is not this one.
		u.ID += " digest=" + pinned
		u.Verified = fmt.Sprintf("sha256 of %s (VERIFICATION_DIGEST %s)", b.Path, pinned)
		log.Info("verification digest pins the archive", zap.String("archive", b.Path), zap.String("digest", pinned))
		return nil
	case len(plan.Units) == 1 && len(plan.Files) == 0:
		return refuse(fmt.Sprintf("%s, made of %d blobs (image layers)", plan.Units[0].Name, len(plan.Units[0].Blobs)))
	case len(plan.Files) == 0 && len(plan.Units) == 0:
		return refuse("empty (nothing to download)")
	default:
		n := len(plan.Files)
		for _, u := range plan.Units {
			n += len(u.Blobs)
		}
		return refuse(fmt.Sprintf("a folder of %d files", n))
	}
}

// pinner names who pins a digest, in the error when the source disagrees.
type pinner struct{ who, hint string }

var digestPin = pinner{"VERIFICATION_DIGEST", "the digest pins another version of the file; check the verification digest or the source"}

// pinSHA256 makes want the checksum the engine verifies a file (or blob)
// by, ahead of the source's own: the one rule shared by VERIFICATION_DIGEST
// and signed models. A source that itself vouches for another full-object
// SHA-256 fails at once (the download could only fail the pin).
func pinSHA256(name string, expect []checksum.Value, want checksum.Value, by pinner) ([]checksum.Value, error) {
	if err := agrees(name, expect, want, by); err != nil {
		return nil, err
	}
	return pinFirst(expect, want), nil
}

// pinFirst puts want ahead of the source's own checksums. The engine
// verifies the strongest one, keeping the given order among equals (a
// stable sort), so a source SHA-256 never displaces the pinned one.
func pinFirst(expect []checksum.Value, want checksum.Value) []checksum.Value {
	return append([]checksum.Value{want}, expect...)
}

// agrees fails at once when the source itself vouches for a different
// full-object SHA-256: the download could only fail the pin, so it is not
// started.
func agrees(name string, expect []checksum.Value, want checksum.Value, by pinner) error {
	for _, v := range expect {
		if v.Algorithm == checksum.SHA256 && !v.Composite && !v.Equal(want) {
			return fmt.Errorf("checksum mismatch for %s: %s expects sha256:%s, the source lists sha256:%s: %s",
				name, by.who, want, v, by.hint)
		}
	}
	return nil
}
