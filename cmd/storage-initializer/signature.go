package main

// Signed models (issue 16): per SRC DEST pair, the bundle is found and
// verified against the policy before anything is fetched, the signed
// listing is compared with the plan's, and the plan is transformed so the
// engine verifies every byte against the signed digests inline and
// commits the model's files together, only once every one matched
// (engine.Plan.CommitTogether). docs/signing.md has the threat model.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/modelsig"
)

// sigResult is the summary's record of one pair's signature check.
type sigResult struct {
	Source         string   `json:"source"`
	Dest           string   `json:"dest"`
	Bundle         string   `json:"bundle,omitempty"` // where the bundle was read
	Present        bool     `json:"present"`          // a bundle was found
	Verified       bool     `json:"verified"`         // signature, listing and every file's bytes checked out
	Mode           string   `json:"mode,omitempty"`   // enforce | warn; empty: no policy given
	Method         string   `json:"method,omitempty"` // key | certificate | sigstore
	Identity       string   `json:"identity,omitempty"`
	Issuer         string   `json:"issuer,omitempty"`
	KeyFingerprint string   `json:"key_fingerprint,omitempty"`
	RootDigest     string   `json:"root_digest,omitempty"`
	Serialization  string   `json:"serialization,omitempty"` // files | shards
	FilesChecked   int      `json:"files_checked"`
	FilteredOut    []string `json:"filtered_out,omitempty"` // signed files the include/exclude patterns left out
	Reason         string   `json:"reason,omitempty"`
}

// sigRun is the signature check of one pair.
type sigRun struct {
	sc   sigConfig
	log  *zap.Logger
	keep func(string) bool
	res  *sigResult
	m    *modelsig.Manifest
	// bundleRel is the bundle's path in the model ("" when read from
	// elsewhere): DEST gets it pinned to the bytes verified. A model.sig is
	// never a file of the signed listing, whichever bundle was verified.
	bundleRel string
	// inTree: the bundle is model.sig inside an image, read once unpacked.
	inTree bool
}

// prepareSignature runs before the pair's plan is fetched. It returns nil
// when there is nothing to check (no policy, no bundle), and an error that
// fails the pair in enforce mode.
func prepareSignature(ctx context.Context, cfg *config, log *zap.Logger, s engine.PlanSettings, reg registry,
	plan *engine.Plan, src, dest string) (*sigRun, error) {
	sc := cfg.signature
	if sc.policy != nil && (len(plan.Links) > 0 || len(plan.Checked) > 0) {
		return nil, &usageError{fmt.Sprintf("a signature is checked on downloaded files, but %s is linked or verified in place: use --pvc-mode=copy", redactURI(src))}
	}
	sr := &sigRun{sc: sc, log: log, keep: cfg.filter, res: &sigResult{Source: redactURI(src), Dest: dest, Mode: sc.mode}}
	if sc.policy != nil {
		sr.res.Method = string(sc.policy.Method)
	}
	var data []byte
	var err error
	switch bf := bundleFile(plan); {
	case sc.uri != "":
		sr.res.Bundle = redactURI(sc.uri)
		data, err = readBundleURI(ctx, s, reg, sc.uri, cfg.pvcRoot)
	case bf != nil:
		sr.res.Bundle, sr.bundleRel = defaultBundleName+" in "+redactURI(src), defaultBundleName
		if sc.policy == nil {
			break // reported, not read: nothing would trust it
		}
		data, err = readBundleFile(ctx, s, bf)
	case sc.policy != nil && len(plan.Files) == 0 && len(plan.Units) == 1:
		// An image: its model.sig exists only once the layers are unpacked.
		sr.res.Bundle, sr.bundleRel, sr.inTree = defaultBundleName+" in "+redactURI(src), defaultBundleName, true
	case sc.policy == nil && linkedBundle(plan):
		// A claim linked or verified in place: reported like any bundle found.
		sr.res.Bundle = defaultBundleName + " in " + redactURI(src)
	case sc.policy == nil:
		return nil, nil
	default:
		err = fmt.Errorf("%s has no %s at its root and no --signature was given", redactURI(src), defaultBundleName)
	}
	if sc.policy == nil {
		sr.res.Present = true
		sr.res.Reason = "signature present, not verified (no policy given)"
		log.Warn("signature present, not verified (no policy given): add --signature-public-key, --signature-certificate-chain or --signature-identity to verify it",
			zap.String("bundle", sr.res.Bundle))
		return sr, nil
	}
	if err != nil {
		return sr, sr.failed(sigErr("", err))
	}
	if sr.inTree {
		if sc.mode == sigEnforce {
			return sr, sr.pinUnit(ctx, plan, map[string]int64{})
		}
		return sr, nil // warn: read from DEST after the pull
	}
	sr.res.Present = true
	if err := sr.verify(ctx, data); err != nil {
		return sr, sr.failed(err)
	}
	if sc.mode == sigWarn {
		return sr, nil // checked after the pull (finish)
	}
	if err := sr.pin(ctx, plan, sha256.Sum256(data)); err != nil {
		return sr, sr.failed(err)
	}
	return sr, nil
}

// verify checks the bundle against the policy and records the signer.
func (sr *sigRun) verify(ctx context.Context, data []byte) error {
	m, err := modelsig.Verify(ctx, data, *sr.sc.policy)
	if err != nil {
		return sigErr(sr.res.Bundle, err)
	}
	sr.m = m
	r := sr.res
	r.Method, r.Identity, r.Issuer, r.KeyFingerprint = string(m.Signer.Method), m.Signer.Identity, m.Signer.Issuer, m.Signer.KeyFingerprint
	r.RootDigest, r.Serialization = m.RootDigest, m.Serialization
	sr.log.Info("signature verified; checking every file against it", zap.String("bundle", r.Bundle), zap.String("method", r.Method),
		zap.String("identity", r.Identity), zap.String("issuer", r.Issuer), zap.String("key", r.KeyFingerprint),
		zap.String("root_digest", r.RootDigest), zap.Int("files", len(m.Files)))
	return nil
}

// failed records a failed check: in enforce mode it is the pair's error;
// in warn mode a one-line warning, and the pull goes on.
func (sr *sigRun) failed(err error) error {
	sr.res.Verified = false
	sr.res.Reason = err.Error()
	if sr.sc.mode == sigWarn {
		sr.log.Warn("signature check failed (--signature-mode=warn: the pull goes on)", zap.String("error", err.Error()))
		return nil
	}
	return err
}

// finish runs after the pair's pull: enforce mode verified everything on
// the way in; warn mode checks the committed files now (a read-back).
func (sr *sigRun) finish(ctx context.Context, dest string, rep *engine.Report) error {
	if sr == nil || sr.sc.policy == nil {
		return nil
	}
	if sr.sc.mode == sigEnforce {
		if sr.inTree && sr.m == nil {
			// The image was committed by an earlier run, checked against
			// this policy then (its record is keyed by it), and its files
			// are unchanged since (the record says so): the bundle is
			// verified again, for a signer revoked or expired since.
			if err := sr.verifyCommitted(ctx, dest); err != nil {
				return sr.failed(err)
			}
			sr.res.FilesChecked = countListed(sr.m, reportPaths(rep))
		}
		sr.res.Verified = sr.res.Reason == ""
		return nil
	}
	if sr.res.Reason != "" {
		return nil // already failed and logged
	}
	if sr.inTree {
		if err := sr.verifyCommitted(ctx, dest); err != nil {
			return sr.failed(err)
		}
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return sr.failed(fmt.Errorf("signature: open %s: %w", dest, err))
	}
	defer root.Close()
	listing := map[string]int64{}
	var paths []string
	for _, f := range reportFiles(rep) {
		if f.Path != defaultBundleName { // the signature file is not part of the model
			listing[f.Path] = f.Size
			paths = append(paths, f.Path)
		}
	}
	sr.addFilteredOut(listing)
	if err := sr.m.CheckListing(listing); err != nil {
		return sr.failed(sigErr("", err))
	}
	if err := hashTree(ctx, root, sr.m, paths); err != nil {
		return sr.failed(err)
	}
	sr.res.FilesChecked = countListed(sr.m, paths)
	sr.res.Verified = true
	sr.log.Info("signature check passed (read back after the pull)", zap.Int("files", sr.res.FilesChecked))
	return nil
}

// verifyCommitted verifies the image's bundle as committed in DEST.
func (sr *sigRun) verifyCommitted(ctx context.Context, dest string) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return sigErr("", err)
	}
	defer root.Close()
	return sr.verifyTreeBundle(ctx, root)
}

// verifyTreeBundle verifies the model.sig at the model root of an image's
// tree (unpacked, or committed in DEST), read through root so a link in
// the tree cannot point the read elsewhere.
func (sr *sigRun) verifyTreeBundle(ctx context.Context, root *os.Root) error {
	fh, err := root.Open(defaultBundleName)
	if err != nil {
		return fmt.Errorf("signature: the image has no %s at its model root and no --signature was given", defaultBundleName)
	}
	data, err := readBounded(fh, defaultBundleName)
	fh.Close()
	if err != nil {
		return sigErr("", err)
	}
	sr.res.Present = true
	return sr.verify(ctx, data)
}

func reportFiles(rep *engine.Report) []engine.FileResult {
	if rep == nil {
		return nil
	}
	return rep.Files
}

func reportPaths(rep *engine.Report) []string {
	var out []string
	if rep != nil {
		for _, f := range rep.Files {
			out = append(out, f.Path)
		}
	}
	return out
}

// addFilteredOut counts the signed files the include/exclude patterns left
// out as present (they exist at the source and are not downloaded, on the
// user's request) and reports them. Without patterns nothing is left out:
// a signed file not in the listing is missing.
func (sr *sigRun) addFilteredOut(listing map[string]int64) {
	if sr.keep == nil {
		return
	}
	for p, segs := range sr.m.Files {
		if _, ok := listing[p]; ok || p == "." || sr.keep(p) {
			continue
		}
		listing[p] = signedSize(segs)
		sr.res.FilteredOut = append(sr.res.FilteredOut, p)
	}
}

// signedSize is the size the signature gives a file (-1: not signed).
func signedSize(segs []modelsig.Segment) int64 {
	if len(segs) == 0 {
		return -1
	}
	return segs[len(segs)-1].End
}

func countListed(m *modelsig.Manifest, paths []string) int {
	n := 0
	for _, p := range paths {
		if _, ok := m.Segments(p); ok {
			n++
		}
	}
	return n
}

// result is the record for the summary (nil without a check).
func (sr *sigRun) result() *sigResult {
	if sr == nil {
		return nil
	}
	return sr.res
}

// refused records a pull the engine failed: with a signature in enforce
// mode, a file that did not match its signed digest is the reason.
func (sr *sigRun) refused(err error) *sigResult {
	if sr == nil {
		return nil
	}
	if sr.sc.policy != nil && sr.res.Reason == "" {
		sr.res.Reason = "not verified: the pull failed: " + err.Error()
		if e := sr.explain(err); e != err {
			sr.res.Reason = e.Error()
		}
	}
	return sr.res
}

// explain says that a signed pull that failed a check (a file's signed
// digest, an image's tree) left nothing under a final name; other failures
// (a server down) are reported as they are.
func (sr *sigRun) explain(err error) error {
	if sr == nil || sr.sc.policy == nil || sr.sc.mode != sigEnforce || sr.m == nil && !sr.inTree {
		return err
	}
	if msg := err.Error(); !strings.Contains(msg, "signature: ") && !strings.Contains(msg, "checksum mismatch") {
		return err
	}
	if rest, ok := strings.CutPrefix(err.Error(), "signature: "); ok {
		return fmt.Errorf("signature check failed, no model file committed: %s", rest)
	}
	return fmt.Errorf("signature check failed, no model file committed: %w", err)
}

// sigErr says "signature:" once (the verifier's errors say it already),
// and where, when given.
func sigErr(where string, err error) error {
	msg, had := strings.CutPrefix(err.Error(), "signature: ")
	switch {
	case where != "":
		return fmt.Errorf("signature: %s: %s", where, msg)
	case had:
		return err
	}
	return fmt.Errorf("signature: %w", err)
}
