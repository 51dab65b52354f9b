package modelsig

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storage-initializer/storage-initializer/internal/signtest"
)

func sigstoreBundle(t *testing.T, v string) []byte {
	return readFile(t, filepath.Join(fixtures, "v"+v+"-sigstore", "model.sig"))
}

func TestSigstoreIdentity(t *testing.T) {
	b := sigstoreBundle(t, "1.1.0")
	p := fixturePolicy(t, "sigstore")
	p.Identity = "someone@example.com"
	_, err := Verify(context.Background(), b, p)
	wantErr(t, err, "identity stefanb@us.ibm.com (issuer https://sigstore.verify.ibm.com/oauth2) does not match --signature-identity someone@example.com")

	p = fixturePolicy(t, "sigstore")
	p.IdentityProvider = "https://accounts.google.com"
	_, err = Verify(context.Background(), b, p)
	wantErr(t, err, "does not match --signature-identity stefanb@us.ibm.com --signature-identity-provider https://accounts.google.com")

	p = fixturePolicy(t, "sigstore")
	p.Identity = ""
	_, err = Verify(context.Background(), b, p)
	wantErr(t, err, "needs both --signature-identity and --signature-identity-provider")
}

func TestSigstoreTampered(t *testing.T) {
	p := fixturePolicy(t, "sigstore")
	for _, v := range []string{"1.0.1", "1.1.0"} {
		b := sigstoreBundle(t, v)
		// A statement changed after signing.
		tampered := editBundle(t, b, func(doc map[string]any) {
			st := payloadOf(t, doc)
			st["predicate"].(map[string]any)["resources"].([]any)[0].(map[string]any)["digest"] = strings.Repeat("0", 64)
			setPayload(doc, st)
		})
		_, err := Verify(context.Background(), tampered, p)
		wantErr(t, err, "sigstore verification failed")
		// The transparency log entry's promise no longer matches its entry.
		tampered = editBundle(t, b, func(doc map[string]any) {
			e := doc["verificationMaterial"].(map[string]any)["tlogEntries"].([]any)[0].(map[string]any)
			e["integratedTime"] = "1700000000"
		})
		_, err = Verify(context.Background(), tampered, p)
		wantErr(t, err, "sigstore verification failed")
		// A key bundle is not a sigstore one.
		_, err = Verify(context.Background(), readFile(t, filepath.Join(fixtures, "v1.1.0-elliptic-key", "model.sig")), p)
		wantErr(t, err, "verify it with --signature-public-key")
	}
}

// A trust root that does not hold the bundle's Fulcio CA and Rekor key refuses it.
func TestSigstoreOtherTrustRoot(t *testing.T) {
	p := fixturePolicy(t, "sigstore")
	p.TrustedRootJSON = readFile(t, "testdata/sigstore-staging-trusted_root.json")
	_, err := Verify(context.Background(), sigstoreBundle(t, "1.1.0"), p)
	wantErr(t, err, "sigstore verification failed")
	p.TrustedRootJSON = []byte(`{"mediaType":"nope"}`)
	_, err = Verify(context.Background(), sigstoreBundle(t, "1.1.0"), p)
	wantErr(t, err, "--signature-trust-root is not a trusted_root.json")
}

type failingTransport struct{ calls int }

func (f *failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	f.calls++
	return nil, errors.New("dial tcp: lookup tuf-repo-cdn.sigstore.dev: no such host")
}

// Without --signature-trust-root and without network, the error says what to pass.
func TestSigstorePublicGoodOffline(t *testing.T) {
	p := fixturePolicy(t, "sigstore")
	p.TrustedRootJSON = nil
	ft := &failingTransport{}
	p.HTTPClient = &http.Client{Transport: ft}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Verify(ctx, sigstoreBundle(t, "1.1.0"), p)
	wantErr(t, err, "on an air-gapped cluster pass --signature-trust-root")
	if ft.calls == 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("%d requests in %s", ft.calls, time.Since(start))
	}
}

// A bundle made by signtest's offline Sigstore: full verification passes with its
// trusted root, and fails on another identity, another root, or a changed statement.
func TestSigstoreSigntest(t *testing.T) {
	dir := writeModel(t, model())
	b, tr := signtest.SignSigstore(t, dir, "ci@example.com", "https://token.actions.example.com", signtest.Options{ShardSize: 256})
	p := Policy{Method: MethodSigstore, Identity: "ci@example.com", IdentityProvider: "https://token.actions.example.com", TrustedRootJSON: tr}
	m, err := Verify(context.Background(), b, p)
	if err != nil {
		t.Fatal(err)
	}
	if m.Signer.Identity != "ci@example.com" || m.Signer.Issuer != "https://token.actions.example.com" || m.Serialization != "shards" {
		t.Fatalf("manifest %+v", m)
	}
	if err := checkTree(t, m, dir, "model.sig"); err != nil {
		t.Fatal(err)
	}
	p.Identity = "other@example.com"
	_, err = Verify(context.Background(), b, p)
	wantErr(t, err, "identity ci@example.com (issuer https://token.actions.example.com) does not match")

	p.Identity = "ci@example.com"
	_, tr2 := signtest.SignSigstore(t, model(), "ci@example.com", "https://token.actions.example.com", signtest.Options{})
	p.TrustedRootJSON = tr2
	_, err = Verify(context.Background(), b, p)
	wantErr(t, err, "sigstore verification failed")

	p.TrustedRootJSON = tr
	tampered := editBundle(t, b, func(doc map[string]any) {
		st := payloadOf(t, doc)
		st["subject"].([]any)[0].(map[string]any)["name"] = "renamed"
		setPayload(doc, st)
	})
	_, err = Verify(context.Background(), tampered, p)
	wantErr(t, err, "sigstore verification failed")

	// The SCT is checked: a root without the CT log refuses the certificate.
	var doc map[string]any
	json.Unmarshal(tr, &doc)
	delete(doc, "ctlogs")
	p.TrustedRootJSON, _ = json.Marshal(doc)
	_, err = Verify(context.Background(), b, p)
	wantErr(t, err, "signed certificate timestamp")

	// A URI identity (a CI workflow) works the same.
	wf := "https://github.com/org/repo/.github/workflows/sign.yml@refs/heads/main"
	b, tr = signtest.SignSigstore(t, model(), wf, "https://token.actions.githubusercontent.com", signtest.Options{})
	if _, err := Verify(context.Background(), b, Policy{Method: MethodSigstore, Identity: wf, IdentityProvider: "https://token.actions.githubusercontent.com", TrustedRootJSON: tr}); err != nil {
		t.Fatal(err)
	}
}
