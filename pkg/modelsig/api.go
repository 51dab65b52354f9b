// Package modelsig verifies OpenSSF model-signing bundles (sigstore/model-transparency,
// in-toto predicate https://model_signing/signature/v1.0) and hands back the signed
// manifest: the per-file digests (whole files or shards) the engine must match while it
// downloads, and the listing rules (ignore_paths) the finished tree must satisfy.
package modelsig

import (
	"context"
	"errors"
	"time"
)

// Method is how the bundle's verification material is trusted.
type Method string

// The three signing methods of the reference CLI (model_signing verify key|certificate|sigstore).
const (
	MethodKey         Method = "key"
	MethodCertificate Method = "certificate"
	MethodSigstore    Method = "sigstore"
)

// Policy says what signer is trusted. Exactly the fields of its Method are used.
type Policy struct {
	Method Method
	// PublicKeyPEM is the signer's public key (key mode).
	PublicKeyPEM []byte
	// CertChainPEM is the PEM CA chain, roots and intermediates (certificate mode).
	CertChainPEM []byte
	// Identity (certificate SAN) and IdentityProvider (OIDC issuer) for sigstore mode.
	Identity, IdentityProvider string
	// TrustedRootJSON is a trusted_root.json (sigstore mode); nil = Sigstore public-good via TUF (network).
	TrustedRootJSON []byte
	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
}

// Segment is one signed digest of a file: the bytes [Start, End). A files-serialized
// manifest has one segment 0..size per file, with End = -1 when the size is not signed.
type Segment struct {
	Start, End int64
	SHA256     []byte
}

// Signer is who signed, as verified: the method, and the certificate identity and
// issuer or the public key fingerprint ("sha256:HEX" of the SPKI DER).
type Signer struct {
	Method                           Method
	Identity, Issuer, KeyFingerprint string
}

// Manifest is the verified content of a bundle.
type Manifest struct {
	ModelName, HashAlgorithm, Serialization string // Serialization: "files" | "shards"
	ShardSize                               int64
	AllowSymlinks                           bool
	// IgnorePaths are as in the statement: slash paths relative to the model root.
	IgnorePaths []string
	// RootDigest is "sha256:HEX" of the statement's subject.
	RootDigest string
	// Files maps a clean slash path relative to the model root to its segments, sorted by Start.
	Files  map[string][]Segment
	Signer Signer
}

var errNotImplemented = errors.New("signature: verification not implemented yet")

// Verify checks the bundle's signature against the policy, the in-toto statement, and
// the subject's root digest recomputed from the resources, and returns the manifest.
func Verify(ctx context.Context, bundleJSON []byte, p Policy) (*Manifest, error) {
	return nil, errNotImplemented
}

// Ignored reports whether rel (a slash path relative to the model root) is covered by
// the statement's ignore_paths; an entry naming a directory ignores everything under it.
// The signature file itself is the caller's to skip.
func (m *Manifest) Ignored(rel string) bool {
	return false
}

// CheckListing compares the downloaded tree (rel slash path → size) with the manifest:
// a listed file missing, an unlisted file present (and not ignored), or a size other
// than the last segment's end is an error naming the first offending path and the counts.
func (m *Manifest) CheckListing(files map[string]int64) error {
	return errNotImplemented
}
