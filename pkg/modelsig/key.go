package modelsig

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// verifyKey is key mode: the bundle names its key by hint (SHA-256 of the PEM
// SubjectPublicKeyInfo, as the reference writes it) or, before v1.0.1, carries the
// PEM itself; either must be the policy's key, and the DSSE signature must verify
// with it.
func verifyKey(b *bundleDoc, e *envelope, p Policy) (Signer, error) {
	k, der, err := parsePublicKey(p.PublicKeyPEM)
	if err != nil {
		return Signer{}, fmt.Errorf("signature: --signature-public-key: %v", err)
	}
	fp := fingerprint(der)
	if pk := b.VerificationMaterial.PublicKey; pk != nil {
		ourPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		hint := sha256.Sum256(ourPEM)
		if pk.Hint != "" && pk.Hint != hex.EncodeToString(hint[:]) {
			return Signer{}, fmt.Errorf("signature: bundle signed by key with hint %.16s… but --signature-public-key is %s (hint %.16x…)", pk.Hint, fp, hint[:])
		}
		if pk.Hint == "" && pk.RawBytes != "" {
			raw, err := base64.StdEncoding.DecodeString(pk.RawBytes)
			if err != nil {
				return Signer{}, fmt.Errorf("signature: the bundle's public key is not base64")
			}
			_, theirs, err := parsePublicKey(raw)
			if err != nil {
				return Signer{}, fmt.Errorf("signature: the bundle's public key: %v", err)
			}
			if !bytes.Equal(theirs, der) {
				return Signer{}, fmt.Errorf("signature: bundle signed by key %s but --signature-public-key is %s", fingerprint(theirs), fp)
			}
		}
	} else if b.VerificationMaterial.X509CertificateChain != nil || b.VerificationMaterial.Certificate != nil {
		return Signer{}, fmt.Errorf("signature: the bundle is signed with a certificate; verify it with --signature-certificate-chain or --signature-identity, not --signature-public-key")
	}
	if err := verifyDSSE(k, e, 0); err != nil {
		return Signer{}, fmt.Errorf("signature: %v with --signature-public-key %s: the bundle was signed by another key or changed after signing", err, fp)
	}
	return Signer{Method: MethodKey, KeyFingerprint: fp}, nil
}

// parsePublicKey reads one PEM SubjectPublicKeyInfo holding an ECDSA key, the only
// kind the reference signs with.
func parsePublicKey(data []byte) (*ecdsa.PublicKey, []byte, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, nil, fmt.Errorf("holds no PEM PUBLIC KEY block")
	}
	if blk.Type != "PUBLIC KEY" {
		return nil, nil, fmt.Errorf("PEM block %q is not a PUBLIC KEY", blk.Type)
	}
	der := blk.Bytes
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, nil, fmt.Errorf("not a public key: %v", oneLine(err))
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, nil, fmt.Errorf("a %T key; model signing keys are elliptic curve (P-256, P-384, P-521)", pub)
	}
	if _, err := curveHash(k); err != nil {
		return nil, nil, err
	}
	return k, der, nil
}

// fingerprint is "sha256:HEX" of a SubjectPublicKeyInfo DER.
func fingerprint(spkiDER []byte) string {
	d := sha256.Sum256(spkiDER)
	return "sha256:" + hex.EncodeToString(d[:])
}
