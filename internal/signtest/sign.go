package signtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// SignKey signs model (folder path or map of slash path → content) with a fresh
// P-256 key, as `model_signing sign key` does, and returns the bundle and the
// public key PEM to verify it with.
func SignKey(t testing.TB, model any, o Options) (bundleJSON, pubPEM []byte) {
	t.Helper()
	k := NewKey(t)
	return SignStatementKey(t, Statement(t, model, o), k), PublicKeyPEM(t, &k.PublicKey)
}

// SignCertificate signs model with a fresh leaf certificate issued by a fresh
// root → intermediate CA, as `model_signing sign certificate` does (the bundle
// carries leaf and intermediate), and returns the bundle and the CA chain PEM (the
// root) to verify it with.
func SignCertificate(t testing.TB, model any, o Options) (bundleJSON, caChainPEM []byte) {
	t.Helper()
	ca := NewCA(t)
	k, leaf := ca.Leaf(t, o)
	return SignStatementCertificate(t, Statement(t, model, o), k, leaf, ca.Intermediate), ca.RootPEM()
}

// NewKey is a fresh P-256 signing key.
func NewKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// PublicKeyPEM is the PEM SubjectPublicKeyInfo of k.
func PublicKeyPEM(t testing.TB, k crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// SignStatementKey wraps a statement in a DSSE envelope signed by k and a bundle
// whose verification material is the key's hint (SHA-256 hex of its PEM).
func SignStatementKey(t testing.TB, statement []byte, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	hint := sha256.Sum256(PublicKeyPEM(t, &k.PublicKey))
	vm := map[string]any{"publicKey": map[string]any{"hint": hex.EncodeToString(hint[:])}, "tlogEntries": []any{}}
	return bundle(t, vm, statement, k)
}

// SignStatementCertificate wraps a statement in a DSSE envelope signed by k and a
// bundle carrying the leaf certificate and then chain.
func SignStatementCertificate(t testing.TB, statement []byte, k *ecdsa.PrivateKey, leaf *x509.Certificate, chain ...*x509.Certificate) []byte {
	t.Helper()
	certs := []any{map[string]any{"rawBytes": base64.StdEncoding.EncodeToString(leaf.Raw)}}
	for _, c := range chain {
		certs = append(certs, map[string]any{"rawBytes": base64.StdEncoding.EncodeToString(c.Raw)})
	}
	vm := map[string]any{"x509CertificateChain": map[string]any{"certificates": certs}, "tlogEntries": []any{}}
	return bundle(t, vm, statement, k)
}

func bundle(t testing.TB, vm map[string]any, statement []byte, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	sig, err := ecdsa.SignASN1(rand.Reader, k, hashFor(k, PAE(PayloadType, statement)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{
		"mediaType":            BundleType,
		"verificationMaterial": vm,
		"dsseEnvelope": map[string]any{
			"payload":     base64.StdEncoding.EncodeToString(statement),
			"payloadType": PayloadType,
			"signatures":  []any{map[string]any{"sig": base64.StdEncoding.EncodeToString(sig), "keyid": ""}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// PAE is DSSE's pre-authentication encoding.
func PAE(payloadType string, payload []byte) []byte {
	return append([]byte("DSSEv1 "+strconv.Itoa(len(payloadType))+" "+payloadType+" "+strconv.Itoa(len(payload))+" "), payload...)
}

// hashFor digests msg with the hash the reference pairs with k's curve.
func hashFor(k *ecdsa.PrivateKey, msg []byte) []byte {
	switch k.Curve {
	case elliptic.P384():
		d := sha512.Sum384(msg)
		return d[:]
	case elliptic.P521():
		d := sha512.Sum512(msg)
		return d[:]
	}
	d := sha256.Sum256(msg)
	return d[:]
}

// CA is a root and an intermediate certificate authority.
type CA struct {
	Root, Intermediate       *x509.Certificate
	rootKey, intermediateKey *ecdsa.PrivateKey
}

// NewCA makes a root CA and an intermediate it issued, valid from an hour ago for
// a year.
func NewCA(t testing.TB) *CA {
	t.Helper()
	ca := &CA{rootKey: NewKey(t), intermediateKey: NewKey(t)}
	now := time.Now()
	ca.Root = issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "signtest root"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, &ca.rootKey.PublicKey, ca.rootKey)
	ca.Intermediate = issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "signtest intermediate"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, ca.Root, &ca.intermediateKey.PublicKey, ca.rootKey)
	return ca
}

// Leaf issues a signing certificate (email SAN signer@example.com, digitalSignature
// and codeSigning) from the intermediate, and returns its key.
func (ca *CA) Leaf(t testing.TB, o Options) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k := NewKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: "signtest signer"}, EmailAddresses: []string{"signer@example.com"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 1, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	if o.Expired {
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	}
	if o.NoSigningUsage {
		tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageKeyEncipherment, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	return k, issue(t, tmpl, ca.Intermediate, &k.PublicKey, ca.intermediateKey)
}

// RootPEM is the root certificate in PEM, what --signature-certificate-chain takes.
func (ca *CA) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})
}

func issue(t testing.TB, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = n
	return issueSerial(t, tmpl, parent, pub, signer)
}

// issueSerial issues tmpl with the serial number it has.
func issueSerial(t testing.TB, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }
