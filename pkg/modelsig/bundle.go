package modelsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// MaxBundleSize bounds the bundle we parse: a model-signing bundle of a million
// shards is well under it, and a hostile one cannot make us hold more.
const MaxBundleSize = 16 << 20

// The Sigstore bundle media types a model-signing bundle may carry (v0.3, both
// spellings the protobuf-specs allow).
var bundleMediaTypes = map[string]bool{
	"application/vnd.dev.sigstore.bundle.v0.3+json":          true,
	"application/vnd.dev.sigstore.bundle+json;version=0.3":   true,
	"application/vnd.dev.sigstore.bundle+json;version=0.3.0": true,
}

// bundleDoc is the part of a Sigstore bundle that key and certificate mode read.
// It is decoded leniently (unknown fields ignored) because the reference wrote older
// shapes (publicKey.rawBytes before v1.0.1); sigstore mode uses sigstore-go's
// strict parser instead.
type bundleDoc struct {
	MediaType            string `json:"mediaType"`
	VerificationMaterial struct {
		PublicKey *struct {
			Hint     string `json:"hint"`
			RawBytes string `json:"rawBytes"`
		} `json:"publicKey"`
		X509CertificateChain *struct {
			Certificates []struct {
				RawBytes string `json:"rawBytes"`
			} `json:"certificates"`
		} `json:"x509CertificateChain"`
		Certificate *struct {
			RawBytes string `json:"rawBytes"`
		} `json:"certificate"`
	} `json:"verificationMaterial"`
	DSSEEnvelope *struct {
		Payload     string `json:"payload"`
		PayloadType string `json:"payloadType"`
		Signatures  []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	} `json:"dsseEnvelope"`
}

// envelope is a decoded DSSE envelope with its one signature.
type envelope struct {
	payloadType string
	payload     []byte
	sig         []byte
}

func parseBundle(data []byte) (*bundleDoc, *envelope, error) {
	var b bundleDoc
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, nil, fmt.Errorf("signature: the bundle is not Sigstore bundle JSON: %v", err)
	}
	if !bundleMediaTypes[b.MediaType] {
		return nil, nil, fmt.Errorf("signature: bundle media type %q is not a v0.3 Sigstore bundle", b.MediaType)
	}
	e := b.DSSEEnvelope
	if e == nil {
		return nil, nil, fmt.Errorf("signature: the bundle has no DSSE envelope (a model signature signs an in-toto statement)")
	}
	if len(e.Signatures) != 1 {
		return nil, nil, fmt.Errorf("signature: the DSSE envelope has %d signatures, want 1", len(e.Signatures))
	}
	payload, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("signature: the DSSE payload is not base64: %v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signatures[0].Sig)
	if err != nil || len(sig) == 0 {
		return nil, nil, fmt.Errorf("signature: the DSSE signature is not base64")
	}
	return &b, &envelope{payloadType: e.PayloadType, payload: payload, sig: sig}, nil
}

// pae is DSSE's pre-authentication encoding, what the signature covers.
func pae(payloadType string, payload []byte) []byte {
	h := "DSSEv1 " + strconv.Itoa(len(payloadType)) + " " + payloadType + " " + strconv.Itoa(len(payload)) + " "
	return append([]byte(h), payload...)
}

// paeCompat is the encoding model_signing v0.2 signed by mistake (the reference's
// pae_compat): "DSSEV1", and the payload as Python's repr of bytes (b'...'). The
// reference still verifies such bundles; so do we, for the same key only.
func paeCompat(payloadType string, payload []byte) []byte {
	return []byte("DSSEV1 " + strconv.Itoa(len(payloadType)) + " " + payloadType + " " +
		strconv.Itoa(len(payload)) + " " + pyBytesRepr(payload))
}

// pyBytesRepr is Python 3's repr() of a bytes value.
func pyBytesRepr(b []byte) string {
	q := byte('\'')
	if strings.IndexByte(string(b), '\'') >= 0 && strings.IndexByte(string(b), '"') < 0 {
		q = '"'
	}
	var s strings.Builder
	s.WriteString("b")
	s.WriteByte(q)
	for _, c := range b {
		switch {
		case c == q || c == '\\':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c == '\t':
			s.WriteString(`\t`)
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\r':
			s.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&s, `\x%02x`, c)
		default:
			s.WriteByte(c)
		}
	}
	s.WriteByte(q)
	return s.String()
}

// curveHash is the digest the reference pairs with each curve (get_ec_key_hash).
func curveHash(k *ecdsa.PublicKey) (crypto.Hash, error) {
	switch k.Curve {
	case elliptic.P256():
		return crypto.SHA256, nil
	case elliptic.P384():
		return crypto.SHA384, nil
	case elliptic.P521():
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("curve %s is not supported (P-256, P-384, P-521)", k.Curve.Params().Name)
}

func digest(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(msg)
		return d[:]
	default:
		d := sha256.Sum256(msg)
		return d[:]
	}
}

// verifyDSSE checks the envelope's signature with an ECDSA key, as the reference's
// key and certificate verifiers do: PAE hashed with the curve's digest, then (older
// bundles) the v0.2 encoding, with compatHash.
func verifyDSSE(k *ecdsa.PublicKey, e *envelope, compatHash crypto.Hash) error {
	h, err := curveHash(k)
	if err != nil {
		return err
	}
	if ecdsa.VerifyASN1(k, digest(h, pae(e.payloadType, e.payload)), e.sig) {
		return nil
	}
	if compatHash == 0 {
		compatHash = h
	}
	if ecdsa.VerifyASN1(k, digest(compatHash, paeCompat(e.payloadType, e.payload)), e.sig) {
		return nil
	}
	return fmt.Errorf("the DSSE signature does not verify")
}
