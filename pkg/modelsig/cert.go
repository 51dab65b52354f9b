package modelsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
)

// verifyCertificate is certificate mode: the bundle's leaf certificate (first of its
// x509CertificateChain, the rest intermediates) must chain to a certificate of the
// policy's CA chain, be usable for signing (key usage digitalSignature or extended
// key usage codeSigning, as the reference requires), and verify the DSSE signature.
//
// The chain is checked at the verification time (Policy.Now). The reference checks it
// at the leaf's notBefore, which never refuses an expired leaf; a certificate-mode
// bundle has no trusted signing time, so we do not trust one either.
func verifyCertificate(b *bundleDoc, e *envelope, p Policy) (Signer, error) {
	roots := x509.NewCertPool()
	n := 0
	for rest := p.CertChainPEM; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return Signer{}, fmt.Errorf("signature: --signature-certificate-chain: %v", err)
		}
		roots.AddCert(c)
		n++
	}
	if n == 0 {
		return Signer{}, fmt.Errorf("signature: --signature-certificate-chain holds no PEM CERTIFICATE")
	}
	var raws []string
	vm := b.VerificationMaterial
	switch {
	case vm.X509CertificateChain != nil:
		for _, c := range vm.X509CertificateChain.Certificates {
			raws = append(raws, c.RawBytes)
		}
	case vm.Certificate != nil:
		raws = []string{vm.Certificate.RawBytes}
	default:
		return Signer{}, fmt.Errorf("signature: the bundle carries no certificate (signed with a key? use --signature-public-key)")
	}
	if len(raws) == 0 || len(raws) > 10 {
		return Signer{}, fmt.Errorf("signature: the bundle's certificate chain has %d certificates", len(raws))
	}
	var certs []*x509.Certificate
	for _, r := range raws {
		der, err := base64.StdEncoding.DecodeString(r)
		if err != nil {
			return Signer{}, fmt.Errorf("signature: a bundle certificate is not base64")
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Signer{}, fmt.Errorf("signature: a bundle certificate: %v", err)
		}
		certs = append(certs, c)
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	now := p.now()
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return Signer{}, fmt.Errorf("signature: certificate chain not trusted by --signature-certificate-chain: %v", oneLine(err))
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 && !hasEKU(leaf, x509.ExtKeyUsageCodeSigning) {
		return Signer{}, fmt.Errorf("signature: the signing certificate %q allows neither digitalSignature nor codeSigning", leaf.Subject.String())
	}
	k, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return Signer{}, fmt.Errorf("signature: the signing certificate holds a %T key; model signing keys are elliptic curve", leaf.PublicKey)
	}
	// v0.2 signed the compat encoding with SHA-256 whatever the curve (see the
	// reference's sign_certificate.Verifier).
	if err := verifyDSSE(k, e, crypto.SHA256); err != nil {
		return Signer{}, fmt.Errorf("signature: %v with the key of certificate %q: the bundle changed after signing", err, leaf.Subject.String())
	}
	id := leaf.Subject.String()
	if san := certSAN(leaf); san != "" {
		id = san
	}
	return Signer{Method: MethodCertificate, Identity: id, Issuer: leaf.Issuer.String(), KeyFingerprint: fingerprint(leaf.RawSubjectPublicKeyInfo)}, nil
}

func hasEKU(c *x509.Certificate, want x509.ExtKeyUsage) bool {
	for _, u := range c.ExtKeyUsage {
		if u == want {
			return true
		}
	}
	return false
}

// certSAN is the certificate's first subject alternative name, the identity a
// signing certificate is issued for.
func certSAN(c *x509.Certificate) string {
	switch {
	case len(c.EmailAddresses) > 0:
		return c.EmailAddresses[0]
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	}
	return ""
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
