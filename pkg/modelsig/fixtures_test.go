package modelsig

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storage-initializer/storage-initializer/internal/signtest"
)

const fixtures = "testdata/model-transparency"

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkTree does what the engine does with a manifest: the listing check, then every
// segment's SHA-256 over the bytes on disk.
func checkTree(t *testing.T, m *Manifest, dir, sigName string) error {
	t.Helper()
	files := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == sigName {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files[rel] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CheckListing(files); err != nil {
		return err
	}
	for rel := range files {
		segs, ok := m.Segments(rel)
		if !ok {
			continue // ignored
		}
		data := readFile(t, filepath.Join(dir, filepath.FromSlash(rel)))
		for _, s := range segs {
			end := s.End
			if end < 0 {
				end = int64(len(data))
			}
			d := sha256.Sum256(data[s.Start:end])
			if !bytes.Equal(d[:], s.SHA256) {
				return &digestErr{rel}
			}
		}
	}
	return nil
}

type digestErr struct{ rel string }

func (e *digestErr) Error() string { return "digest mismatch: " + e.rel }

func fixturePolicy(t *testing.T, kind string) Policy {
	keys := filepath.Join(fixtures, "keys", "certificate")
	switch kind {
	case "elliptic-key":
		return Policy{Method: MethodKey, PublicKeyPEM: readFile(t, filepath.Join(keys, "signing-key-pub.pem"))}
	case "certificate":
		return Policy{Method: MethodCertificate, CertChainPEM: readFile(t, filepath.Join(keys, "ca-cert.pem"))}
	default:
		return Policy{Method: MethodSigstore, Identity: "stefanb@us.ibm.com",
			IdentityProvider: "https://sigstore.verify.ibm.com/oauth2",
			TrustedRootJSON:  readFile(t, "testdata/sigstore-public-good-trusted_root.json")}
	}
}

// TestReferenceFixtures verifies every signed test model of the reference
// implementation, and checks the model's files against the manifest.
func TestReferenceFixtures(t *testing.T) {
	dirs, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		name := d.Name()
		if !d.IsDir() || !strings.HasPrefix(name, "v") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			kind := name[strings.IndexByte(name, '-')+1:]
			dir := filepath.Join(fixtures, name)
			m, err := Verify(context.Background(), readFile(t, filepath.Join(dir, "model.sig")), fixturePolicy(t, kind))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if m.Signer.Method != fixturePolicy(t, kind).Method {
				t.Fatalf("signer %+v", m.Signer)
			}
			// The reference's CLI test passes --ignore-paths ignore-me where the
			// statement has no ignore_paths yet (v1.0.1).
			if _, ok := m.Files["ignore-me"]; !ok && !m.Ignored("ignore-me") {
				m.IgnorePaths = append(m.IgnorePaths, "ignore-me")
			}
			if err := checkTree(t, m, dir, "model.sig"); err != nil {
				t.Fatalf("tree: %v (manifest %+v)", err, m)
			}
			t.Logf("%s: %d files, root %s, signer %+v", name, len(m.Files), m.RootDigest, m.Signer)
		})
	}
	if n < 12 {
		t.Fatalf("only %d fixtures", n)
	}
}

// The reference's certificate fixtures against the wrong anchor, an intermediate
// anchor, and a clock past the certificates' validity (2035).
func TestReferenceCertificateTrust(t *testing.T) {
	keys := filepath.Join(fixtures, "keys", "certificate")
	b := readFile(t, filepath.Join(fixtures, "v1.1.0-certificate", "model.sig"))
	p := Policy{Method: MethodCertificate, CertChainPEM: readFile(t, filepath.Join(keys, "int-ca-cert.pem"))}
	if _, err := Verify(context.Background(), b, p); err != nil {
		t.Fatalf("intermediate as the anchor: %v", err)
	}
	p.Now = func() time.Time { return time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC) }
	p.CertChainPEM = readFile(t, filepath.Join(keys, "ca-cert.pem"))
	_, err := Verify(context.Background(), b, p)
	wantErr(t, err, "expired")
	// A public key file is no CA chain.
	p.Now = nil
	p.CertChainPEM = readFile(t, filepath.Join(keys, "signing-key-pub.pem"))
	_, err = Verify(context.Background(), b, p)
	wantErr(t, err, "no PEM CERTIFICATE")
	// The fixtures' key bundles refuse another key: by hint (v1.1.0)…
	kb := readFile(t, filepath.Join(fixtures, "v1.1.0-elliptic-key", "model.sig"))
	_, err = Verify(context.Background(), kb, Policy{Method: MethodKey, PublicKeyPEM: otherKeyPEM(t)})
	wantErr(t, err, "but --signature-public-key is sha256:")
	// …and by the key itself, which v1.0.0 carried instead of a hint.
	kb = readFile(t, filepath.Join(fixtures, "v1.0.0-elliptic-key", "model.sig"))
	_, err = Verify(context.Background(), kb, Policy{Method: MethodKey, PublicKeyPEM: otherKeyPEM(t)})
	wantErr(t, err, "bundle signed by key sha256:")
}

// signtest serializes a folder as the reference does: its statement for a fixture
// model has the root digest the reference signed.
func TestSigntestMatchesReference(t *testing.T) {
	for _, name := range []string{"v1.1.0-elliptic-key", "v1.1.0-certificate", "v1.0.1-sigstore"} {
		dir := filepath.Join(fixtures, name)
		m, err := Verify(context.Background(), readFile(t, filepath.Join(dir, "model.sig")), fixturePolicy(t, name[strings.IndexByte(name, '-')+1:]))
		if err != nil {
			t.Fatal(err)
		}
		st, err := parseStatement(signtest.Statement(t, dir, signtest.Options{IgnorePaths: []string{"ignore-me"}}))
		if err != nil {
			t.Fatal(err)
		}
		if st.RootDigest != m.RootDigest {
			t.Errorf("%s: signtest root %s, reference %s", name, st.RootDigest, m.RootDigest)
		}
	}
}
