package main

// Turning a verified manifest into the plan's checks: each signed file's
// expected checksum becomes its signed SHA-256 (one per shard for a
// shard-serialized signature: the shards become the file's parts, checked
// one by one by the engine's composite machinery), the bundle itself is
// pinned to the bytes that were verified, an image's merged tree is read
// back against the manifest before it is committed, and the plan commits
// together.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/modelsig"
)

// policyID fingerprints what a policy trusts.
func policyID(p *modelsig.Policy) string {
	h := sha256.New()
	for _, b := range [][]byte{[]byte(p.Method), p.PublicKeyPEM, p.CertChainPEM, []byte(p.Identity), []byte(p.IdentityProvider), p.TrustedRootJSON} {
		fmt.Fprintf(h, "%d:%s;", len(b), b)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

var signaturePin = pinner{"the signature", "the signature is for another version of the file; check the bundle or the source"}

// pin transforms a plan of files (and at most one unit) for enforce mode.
func (sr *sigRun) pin(ctx context.Context, plan *engine.Plan, bundleSum [32]byte) error {
	listing := map[string]int64{}
	for i := range plan.Files {
		f := &plan.Files[i]
		rel, err := engine.CleanRel(f.Path)
		if err != nil {
			continue // the engine refuses it with its reason
		}
		if rel == sr.bundleRel {
			// What DEST gets is the bundle that was verified, byte for byte.
			exp, err := pinSHA256(rel, f.Expect, checksum.Value{Algorithm: checksum.SHA256, Sum: bundleSum[:]}, signaturePin)
			if err != nil {
				return sigErr("", err)
			}
			f.Expect = exp
			continue
		}
		if rel == defaultBundleName {
			continue // a model.sig beside a bundle named by --signature: a signature file, not the model's
		}
		segs, listed := sr.m.Segments(rel)
		if !f.Unfiltered && sr.keep != nil && !sr.keep(rel) {
			continue // left out by the user's patterns (addFilteredOut)
		}
		size := f.Size
		if size < 0 && listed { // a stream of unknown length: the signature says
			size = signedSize(segs)
		}
		listing[rel] = size
		if !listed {
			continue // ignored by the signature (else CheckListing refuses it)
		}
		if err := pinSegments(f, rel, segs); err != nil {
			return err
		}
		sr.res.FilesChecked++
	}
	plan.CommitTogether = true
	if len(plan.Units) > 0 {
		return sr.pinUnit(ctx, plan, listing)
	}
	sr.addFilteredOut(listing)
	if err := sr.m.CheckListing(listing); err != nil {
		return sigErr("", err)
	}
	return nil
}

// pinSegments makes a file verified by its signed digests.
func pinSegments(f *engine.File, rel string, segs []modelsig.Segment) error {
	if len(segs) == 1 && segs[0].Start == 0 {
		exp, err := pinSHA256(rel, f.Expect, checksum.Value{Algorithm: checksum.SHA256, Sum: segs[0].SHA256}, signaturePin)
		if err != nil {
			return sigErr("", err)
		}
		f.Expect = exp
		return nil
	}
	if f.Stream {
		return fmt.Errorf("signature: %s is signed in shards but its source cannot serve byte ranges: sign it with the files serialization", rel)
	}
	var off int64
	parts := make([]engine.Part, 0, len(segs))
	sums := make([][]byte, 0, len(segs))
	for _, s := range segs {
		if s.Start != off || s.End <= s.Start {
			return fmt.Errorf("signature: the shards of %s do not cover it from 0 without gaps (bytes %d-%d after %d): the bundle is malformed", rel, s.Start, s.End, off)
		}
		parts = append(parts, engine.Part{Size: s.End - s.Start, Expect: []checksum.Value{{Algorithm: checksum.SHA256, Sum: s.SHA256}}})
		sums = append(sums, s.SHA256)
		off = s.End
	}
	if off != f.Size {
		return fmt.Errorf("signature: %s is %d bytes at the source, the signature covers %d: the file changed after signing", rel, f.Size, off)
	}
	// The source's own checksums were computed over its own part layout
	// (or are weaker than these): only the signed shards count.
	f.Parts = parts
	f.Expect = []checksum.Value{checksum.Composite(checksum.SHA256, sums)}
	return nil
}

// pinUnit makes the plan's one unit check its merged tree against the
// manifest before it is committed (files, the plan's plain files beside
// it, are pinned already and listed in plain). With the bundle inside the
// image, the manifest is read from the tree first.
func (sr *sigRun) pinUnit(ctx context.Context, plan *engine.Plan, plain map[string]int64) error {
	if len(plan.Units) != 1 {
		return fmt.Errorf("signature: %s has %d parts committed apart (units); a signed pull supports one image or archive", plan.Source, len(plan.Units))
	}
	plan.CommitTogether = true
	u := &plan.Units[0]
	// The unit's id keys its staging and its "already committed" record: a
	// tree checked against another signature (or none) is not this one.
	// The policy is in it too: a tree committed as signed by one signer
	// is not taken as present for a run that trusts another.
	u.ID += " signed-by=" + policyID(sr.sc.policy)
	if sr.m != nil {
		u.ID += " root=" + sr.m.RootDigest
	}
	u.Verified = "sha256 (signed, read back before commit)"
	orig := u.Check
	u.Check = func(root *os.Root, stats []engine.UnpackStats) error {
		if orig != nil {
			if err := orig(root, stats); err != nil {
				return err
			}
		}
		return sr.checkTree(ctx, root, plain)
	}
	return nil
}

// checkTree is the unit's signature check, on its merged tree.
func (sr *sigRun) checkTree(ctx context.Context, root *os.Root, plain map[string]int64) error {
	if sr.inTree {
		if err := sr.verifyTreeBundle(ctx, root); err != nil {
			return err
		}
	}
	tree, err := listTree(root, sr.m.AllowSymlinks)
	if err != nil {
		return sigErr("the unpacked image", err)
	}
	listing := map[string]int64{}
	var paths []string
	for p, n := range tree {
		if p != defaultBundleName { // the signature file is not part of the model
			listing[p], paths = n, append(paths, p)
		}
	}
	for p, n := range plain {
		listing[p] = n
	}
	sr.addFilteredOut(listing)
	if err := sr.m.CheckListing(listing); err != nil {
		return sigErr("", err)
	}
	if err := hashTree(ctx, root, sr.m, paths); err != nil {
		return err
	}
	sr.res.FilesChecked += countListed(sr.m, paths)
	return nil
}
