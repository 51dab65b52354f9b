package signtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
)

// The certificate extensions a Fulcio leaf carries.
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidSCTList  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
)

// SignSigstore signs model as `model_signing sign sigstore` would, but against a
// Sigstore made up for the test: its own Fulcio (root, intermediate, a leaf for
// identity/issuer with an embedded SCT from its own CT log), sigstore-go's
// VirtualSigstore for the Rekor entry (inclusion proof and signed entry timestamp)
// and the RFC 3161 timestamp. It returns the bundle and the trusted_root.json that
// verifies it offline. (VirtualSigstore alone cannot: its leaf certificates carry
// no SCT, and full verification requires one.)
func SignSigstore(t testing.TB, model any, identity, issuer string, o Options) (bundleJSON, trustedRootJSON []byte) {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	fulcioRoot := NewCA(t) // root → intermediate; the leaf is issued below
	ctKey := NewKey(t)
	ctDER, _ := x509.MarshalPKIXPublicKey(&ctKey.PublicKey)
	ctID := sha256.Sum256(ctDER)

	leafKey := NewKey(t)
	tmpl := &x509.Certificate{
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(10 * time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidIssuerV1, Value: []byte(issuer)}},
	}
	if strings.Contains(identity, "://") {
		u, err := parseURL(identity)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	} else {
		tmpl.EmailAddresses = []string{identity}
	}
	// The SCT signs the certificate as it is without the SCT list (RFC 6962's
	// precertificate TBS); then the same template is issued again with the list.
	pre := issue(t, tmpl, fulcioRoot.Intermediate, &leafKey.PublicKey, fulcioRoot.intermediateKey)
	sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: ctID}, Timestamp: uint64(now.UnixMilli())}
	issuerKeyHash := sha256.Sum256(fulcioRoot.Intermediate.RawSubjectPublicKeyInfo)
	input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: ct.MerkleTreeLeaf{
		Version: ct.V1, LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{Timestamp: sct.Timestamp, EntryType: ct.PrecertLogEntryType,
			PrecertEntry: &ct.PreCert{IssuerKeyHash: issuerKeyHash, TBSCertificate: pre.RawTBSCertificate}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, ctKey, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sct.Signature = ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: sig}
	sctBytes, err := cttls.Marshal(sct)
	if err != nil {
		t.Fatal(err)
	}
	list := binary.BigEndian.AppendUint16(nil, uint16(len(sctBytes)+2))
	list = binary.BigEndian.AppendUint16(list, uint16(len(sctBytes)))
	list = append(list, sctBytes...)
	listExt, _ := asn1.Marshal(list)
	tmpl.SerialNumber = pre.SerialNumber
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidSCTList, Value: listExt})
	leaf := issueSerial(t, tmpl, fulcioRoot.Intermediate, &leafKey.PublicKey, fulcioRoot.intermediateKey)
	if tbs, err := ctx509.RemoveSCTList(leaf.RawTBSCertificate); err != nil || string(tbs) != string(pre.RawTBSCertificate) {
		t.Fatalf("signtest: the SCT does not cover the leaf (%v)", err)
	}

	// DSSE over the statement, logged in the virtual Rekor, timestamped by its TSA.
	statement := Statement(t, model, o)
	dsig, err := ecdsa.SignASN1(rand.Reader, leafKey, hashFor(leafKey, PAE(PayloadType, statement)))
	if err != nil {
		t.Fatal(err)
	}
	env := &dsse.Envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString(statement),
		Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(dsig)}}}
	entry, err := vs.GenerateTlogEntry(leaf, env, dsig, now.Unix(), true)
	if err != nil {
		t.Fatal(err)
	}
	logID, _ := vs.RekorLogID()
	set, err := vs.RekorSignPayload(tlog.RekorPayload{Body: entry.Body(), IntegratedTime: now.Unix(), LogIndex: entry.LogIndex(), LogID: logID})
	if err != nil {
		t.Fatal(err)
	}
	tle := entry.TransparencyLogEntry()
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	tsr, err := vs.TimestampResponse(dsig)
	if err != nil {
		t.Fatal(err)
	}
	pb := &protobundle.Bundle{
		MediaType: BundleType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw}},
			TlogEntries:               []*protorekor.TransparencyLogEntry{tle},
			TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: statement, PayloadType: PayloadType, Signatures: []*protodsse.Signature{{Sig: dsig}}}},
	}
	if bundleJSON, err = protojson.Marshal(pb); err != nil {
		t.Fatal(err)
	}

	// The trusted root: our Fulcio and CT log, the virtual Rekor and TSA. Log IDs
	// are the raw key digests, as a real trusted_root.json holds them.
	rekor := map[string]*root.TransparencyLog{}
	for _, l := range vs.RekorLogs() {
		c := *l
		c.ID, _ = hex.DecodeString(string(l.ID))
		rekor[hex.EncodeToString(c.ID)] = &c
	}
	ctlogs := map[string]*root.TransparencyLog{hex.EncodeToString(ctID[:]): {
		BaseURL: "https://ct.localhost", ID: ctID[:], ValidityPeriodStart: now.Add(-time.Hour),
		HashFunc: crypto.SHA256, PublicKey: &ctKey.PublicKey, SignatureHashFunc: crypto.SHA256,
	}}
	fulcio := &root.FulcioCertificateAuthority{Root: fulcioRoot.Root, Intermediates: []*x509.Certificate{fulcioRoot.Intermediate},
		ValidityPeriodStart: now.Add(-time.Hour), URI: "https://fulcio.localhost"}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{fulcio}, ctlogs, vs.TimestampingAuthorities(), rekor)
	if err != nil {
		t.Fatal(err)
	}
	if trustedRootJSON, err = tr.MarshalJSON(); err != nil {
		t.Fatal(err)
	}
	return bundleJSON, trustedRootJSON
}
