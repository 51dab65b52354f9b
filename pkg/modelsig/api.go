// Package modelsig verifies OpenSSF model-signing bundles (sigstore/model-transparency,
// in-toto predicate https://model_signing/signature/v1.0) and hands back the signed
// manifest: the per-file digests (whole files or shards) the engine must match while it
// downloads, and the listing rules (ignore_paths) the finished tree must satisfy.
//
// The format, as the reference implementation writes it:
//   - a Sigstore bundle v0.3 whose dsseEnvelope (payloadType application/vnd.in-toto+json)
//     signs an in-toto Statement v1 with one subject: the model's name and a root digest,
//     SHA-256 over the raw resource digests in the order the resources are listed;
//   - predicate.serialization: method "files" (one resource per file, name = path) or
//     "shards" (name = "path:start:end", [start,end) in shard_size steps, no resource for
//     an empty file), hash_type, allow_symlinks, ignore_paths (recorded by the signer:
//     the signature file, the git paths, its --ignore-paths);
//   - verification material: key mode names the key by hint (SHA-256 hex of its PEM);
//     certificate mode carries leaf + intermediates in x509CertificateChain; sigstore
//     mode a Fulcio certificate, Rekor entries and RFC 3161 timestamps.
//
// What a caller does with a verified Manifest: hash each downloaded file's segments
// (Segments) and compare with SHA256; run CheckListing over the finished tree (leaving
// the signature file out); only then give files their final names.
package modelsig

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// DefaultSignatureName is the bundle's name at the model root when no other is given
// (the reference CLI's default --signature).
const DefaultSignatureName = "model.sig"

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
	// Now is the clock certificate mode checks the chain at (tests); nil = time.Now.
	// Sigstore mode checks the certificate at the bundle's verified timestamps.
	Now func() time.Time
	// HTTPClient fetches the public-good trust root (sigstore mode without
	// TrustedRootJSON); nil = a default internal/httpx client.
	HTTPClient *http.Client
}

func (p Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
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

// Verify checks the bundle's signature against the policy, the in-toto statement, and
// the subject's root digest recomputed from the resources, and returns the manifest.
// Errors are one line, prefixed "signature:", saying what failed and what to pass.
func Verify(ctx context.Context, bundleJSON []byte, p Policy) (*Manifest, error) {
	if len(bundleJSON) > MaxBundleSize {
		return nil, fmt.Errorf("signature: the bundle is %d bytes, more than the %d a model signature needs", len(bundleJSON), MaxBundleSize)
	}
	var (
		signer Signer
		env    *envelope
		err    error
	)
	switch p.Method {
	case MethodKey, MethodCertificate:
		var b *bundleDoc
		if b, env, err = parseBundle(bundleJSON); err != nil {
			return nil, err
		}
		if p.Method == MethodKey {
			signer, err = verifyKey(b, env, p)
		} else {
			signer, err = verifyCertificate(b, env, p)
		}
	case MethodSigstore:
		signer, env, err = verifySigstore(ctx, bundleJSON, p)
	default:
		return nil, fmt.Errorf("signature: no verification method %q (key, certificate or sigstore)", p.Method)
	}
	if err != nil {
		return nil, err
	}
	if env.payloadType != inTotoPayloadType {
		return nil, fmt.Errorf("signature: the DSSE payload type is %q, want %s", env.payloadType, inTotoPayloadType)
	}
	m, err := parseStatement(env.payload)
	if err != nil {
		return nil, err
	}
	m.Signer = signer
	return m, nil
}
