package modelsig

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storage-initializer/storage-initializer/internal/signtest"
)

func model() map[string][]byte {
	return map[string][]byte{
		"config.json":           []byte(`{"a":1}`),
		"weights/part-1.bin":    []byte(strings.Repeat("x", 1000)),
		"weights/part-2.bin":    []byte(strings.Repeat("y", 1001)),
		"empty":                 {},
		"docs/README.md":        []byte("not signed"),
		".gitattributes":        []byte("*.bin lfs"),
		"weights.bin/inner.txt": []byte("sorted differently by components than by bytes"),
	}
}

func writeModel(t *testing.T, files map[string][]byte) string {
	dir := t.TempDir()
	for p, b := range files {
		fp := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fp, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func wantErr(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", substr)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not contain %q", err, substr)
	}
	if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "signature: ") {
		t.Fatalf("error is not one line starting with \"signature: \": %q", err)
	}
}

func keyPolicy(pub []byte) Policy { return Policy{Method: MethodKey, PublicKeyPEM: pub} }

func TestKeyFilesAndShards(t *testing.T) {
	for _, shard := range []int64{0, 1, 64, 1000, 1 << 20} {
		files := model()
		dir := writeModel(t, files)
		b, pub := signtest.SignKey(t, dir, signtest.Options{ShardSize: shard, IgnorePaths: []string{"docs"}})
		m, err := Verify(context.Background(), b, keyPolicy(pub))
		if err != nil {
			t.Fatalf("shard %d: %v", shard, err)
		}
		if want := map[bool]string{true: "shards", false: "files"}[shard > 0]; m.Serialization != want || (shard > 0 && m.ShardSize != shard) {
			t.Fatalf("shard %d: serialization %s/%d", shard, m.Serialization, m.ShardSize)
		}
		if m.Signer.Method != MethodKey || !strings.HasPrefix(m.Signer.KeyFingerprint, "sha256:") || !strings.HasPrefix(m.RootDigest, "sha256:") {
			t.Fatalf("signer %+v root %s", m.Signer, m.RootDigest)
		}
		if _, ok := m.Files["docs/README.md"]; ok || !m.Ignored("docs/README.md") || !m.Ignored(".gitattributes") {
			t.Fatalf("ignore_paths not honoured: %+v", m.IgnorePaths)
		}
		if err := checkTree(t, m, dir, "model.sig"); err != nil {
			t.Fatalf("shard %d: %v", shard, err)
		}
		if shard == 64 && len(m.Files["weights/part-2.bin"]) != 16 {
			t.Fatalf("1001 bytes in 64-byte shards: %d segments", len(m.Files["weights/part-2.bin"]))
		}
		// A changed byte is caught by the segment digests.
		os.WriteFile(filepath.Join(dir, "weights", "part-1.bin"), []byte(strings.Repeat("x", 999)+"z"), 0o644)
		if err := checkTree(t, m, dir, "model.sig"); err == nil || !strings.Contains(err.Error(), "weights/part-1.bin") {
			t.Fatalf("shard %d: changed byte: %v", shard, err)
		}
	}
}

func TestKeyWrongKey(t *testing.T) {
	b, _ := signtest.SignKey(t, model(), signtest.Options{})
	_, other := signtest.SignKey(t, model(), signtest.Options{})
	_, err := Verify(context.Background(), b, keyPolicy(other))
	wantErr(t, err, "but --signature-public-key is sha256:")

	// Without the hint, the signature itself is what fails.
	var doc map[string]any
	json.Unmarshal(b, &doc)
	doc["verificationMaterial"] = map[string]any{"publicKey": map[string]any{}}
	nohint, _ := json.Marshal(doc)
	_, err = Verify(context.Background(), nohint, keyPolicy(other))
	wantErr(t, err, "the DSSE signature does not verify")
}

func TestKeyPolicyNotEC(t *testing.T) {
	b, _ := signtest.SignKey(t, model(), signtest.Options{})
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	_, err := Verify(context.Background(), b, keyPolicy(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	wantErr(t, err, "elliptic curve")
	_, err = Verify(context.Background(), b, keyPolicy([]byte("not a key")))
	wantErr(t, err, "--signature-public-key")
}

// editBundle changes a signed bundle's JSON without re-signing it.
func editBundle(t *testing.T, b []byte, edit func(doc map[string]any)) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	out, _ := json.Marshal(doc)
	return out
}

func payloadOf(t *testing.T, doc map[string]any) map[string]any {
	raw, _ := base64.StdEncoding.DecodeString(doc["dsseEnvelope"].(map[string]any)["payload"].(string))
	var st map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func setPayload(doc map[string]any, st map[string]any) {
	raw, _ := json.Marshal(st)
	doc["dsseEnvelope"].(map[string]any)["payload"] = base64.StdEncoding.EncodeToString(raw)
}

func TestStatementTamperedAfterSigning(t *testing.T) {
	b, pub := signtest.SignKey(t, model(), signtest.Options{})
	// A digest changed in the signed payload: the signature no longer covers it.
	tampered := editBundle(t, b, func(doc map[string]any) {
		st := payloadOf(t, doc)
		r := st["predicate"].(map[string]any)["resources"].([]any)[0].(map[string]any)
		r["digest"] = strings.Repeat("0", 64)
		setPayload(doc, st)
	})
	_, err := Verify(context.Background(), tampered, keyPolicy(pub))
	wantErr(t, err, "the DSSE signature does not verify")
	// The payload type is signed too.
	tampered = editBundle(t, b, func(doc map[string]any) {
		doc["dsseEnvelope"].(map[string]any)["payloadType"] = "application/json"
	})
	_, err = Verify(context.Background(), tampered, keyPolicy(pub))
	wantErr(t, err, "does not verify")
	// Two signatures, a missing envelope, another media type.
	for name, edit := range map[string]func(map[string]any){
		"2 signatures": func(doc map[string]any) {
			e := doc["dsseEnvelope"].(map[string]any)
			e["signatures"] = append(e["signatures"].([]any), e["signatures"].([]any)[0])
		},
		"no DSSE envelope": func(doc map[string]any) { delete(doc, "dsseEnvelope") },
		"not a v0.3":       func(doc map[string]any) { doc["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1" },
	} {
		_, err = Verify(context.Background(), editBundle(t, b, edit), keyPolicy(pub))
		wantErr(t, err, map[string]string{"2 signatures": "2 signatures", "no DSSE envelope": "no DSSE envelope", "not a v0.3": "not a v0.3"}[name])
	}
}

// signMutated signs a statement a hook changed: a well-signed but bad statement.
func signMutated(t *testing.T, shard int64, mutate func(st map[string]any)) ([]byte, []byte) {
	return signtest.SignKey(t, model(), signtest.Options{ShardSize: shard, Mutate: mutate})
}

func resources(st map[string]any) []any {
	return st["predicate"].(map[string]any)["resources"].([]any)
}

func TestStatementChecks(t *testing.T) {
	cases := []struct {
		name   string
		shard  int64
		mutate func(st map[string]any)
		want   string
	}{
		{"root digest", 0, func(st map[string]any) {
			resources(st)[0].(map[string]any)["digest"] = strings.Repeat("ab", 32)
		}, "the statement is inconsistent"},
		{"resource dropped", 0, func(st map[string]any) {
			p := st["predicate"].(map[string]any)
			p["resources"] = resources(st)[1:]
		}, "the statement is inconsistent"},
		{"statement type", 0, func(st map[string]any) { st["_type"] = "https://in-toto.io/Statement/v0.1" }, "_type"},
		{"predicate type", 0, func(st map[string]any) { st["predicateType"] = "https://slsa.dev/provenance/v1" }, "not a model signature"},
		{"two subjects", 0, func(st map[string]any) {
			st["subject"] = append(st["subject"].([]any), st["subject"].([]any)[0])
		}, "2 subjects"},
		{"blake2b", 0, func(st map[string]any) {
			st["predicate"].(map[string]any)["serialization"].(map[string]any)["hash_type"] = "blake2b"
		}, `hashed with "blake2b"; only sha256`},
		{"resource algorithm", 0, func(st map[string]any) { resources(st)[0].(map[string]any)["algorithm"] = "blake3" }, "only sha256"},
		{"method", 0, func(st map[string]any) {
			st["predicate"].(map[string]any)["serialization"].(map[string]any)["method"] = "digest"
		}, `method "digest" is not supported`},
		{"shard size", 64, func(st map[string]any) {
			delete(st["predicate"].(map[string]any)["serialization"].(map[string]any), "shard_size")
		}, "positive shard_size"},
		{"bad digest", 0, func(st map[string]any) { resources(st)[0].(map[string]any)["digest"] = "xyz" }, "not a hex SHA-256"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, pub := signMutated(t, c.shard, c.mutate)
			_, err := Verify(context.Background(), b, keyPolicy(pub))
			wantErr(t, err, c.want)
		})
	}
}

// hostile renames the first resource and fixes the root digest, so only the name
// check stands between the statement and the engine.
func TestHostileResourceNames(t *testing.T) {
	cases := []struct {
		shard int64
		names []string
		want  string
	}{
		{0, []string{"/etc/passwd"}, "absolute path"},
		{0, []string{"../../escape"}, "leaves the model root"},
		{0, []string{"a/../../b"}, "leaves the model root"},
		{0, []string{"a//b"}, "not clean"},
		{0, []string{"./a"}, "not clean"},
		{0, []string{""}, "empty path"},
		{0, []string{"dup", "dup"}, "listed twice"},
		{0, []string{".", "other"}, "one-file model"},
		{64, []string{"a:0"}, "not path:start:end"},
		{64, []string{"a:10:5"}, "no valid byte range"},
		{64, []string{"a:-1:5"}, "no valid byte range"},
		{64, []string{"a:0:64", "a:0:64"}, "listed twice"},
		{64, []string{"a:0:64", "a:65:100"}, "do not tile"},
		{64, []string{"a:0:32", "a:32:64"}, "do not tile"},
		{64, []string{"a:0:100"}, "do not tile"},
		{64, []string{"../x:0:64"}, "leaves the model root"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.names, ","), func(t *testing.T) {
			b, pub := signtest.SignKey(t, model(), signtest.Options{ShardSize: c.shard, Mutate: func(st map[string]any) {
				var rs []any
				for _, n := range c.names {
					rs = append(rs, map[string]any{"name": n, "algorithm": "sha256", "digest": strings.Repeat("11", 32)})
				}
				st["predicate"].(map[string]any)["resources"] = rs
				st["subject"].([]any)[0].(map[string]any)["digest"] = map[string]any{"sha256": rootOf(len(rs))}
			}})
			_, err := Verify(context.Background(), b, keyPolicy(pub))
			wantErr(t, err, c.want)
		})
	}
}

func rootOf(n int) string {
	h := sha256.New()
	for i := 0; i < n; i++ {
		h.Write(bytes.Repeat([]byte{0x11}, 32))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestBundleTooLarge(t *testing.T) {
	_, err := Verify(context.Background(), make([]byte, MaxBundleSize+1), Policy{Method: MethodKey})
	wantErr(t, err, "more than")
	_, err = Verify(context.Background(), []byte("{}"), Policy{Method: "gpg"})
	wantErr(t, err, `no verification method "gpg"`)
	_, err = Verify(context.Background(), []byte("not json"), Policy{Method: MethodKey})
	wantErr(t, err, "not Sigstore bundle JSON")
}

func TestCertificate(t *testing.T) {
	dir := writeModel(t, model())
	b, chain := signtest.SignCertificate(t, dir, signtest.Options{ShardSize: 100})
	p := Policy{Method: MethodCertificate, CertChainPEM: chain}
	m, err := Verify(context.Background(), b, p)
	if err != nil {
		t.Fatal(err)
	}
	if m.Signer.Identity != "signer@example.com" || !strings.Contains(m.Signer.Issuer, "signtest intermediate") {
		t.Fatalf("signer %+v", m.Signer)
	}
	if err := checkTree(t, m, dir, "model.sig"); err != nil {
		t.Fatal(err)
	}

	_, otherChain := signtest.SignCertificate(t, model(), signtest.Options{})
	_, err = Verify(context.Background(), b, Policy{Method: MethodCertificate, CertChainPEM: otherChain})
	wantErr(t, err, "certificate chain not trusted by --signature-certificate-chain")

	expired, chain2 := signtest.SignCertificate(t, model(), signtest.Options{Expired: true})
	_, err = Verify(context.Background(), expired, Policy{Method: MethodCertificate, CertChainPEM: chain2})
	wantErr(t, err, "expired")

	nouse, chain3 := signtest.SignCertificate(t, model(), signtest.Options{NoSigningUsage: true})
	_, err = Verify(context.Background(), nouse, Policy{Method: MethodCertificate, CertChainPEM: chain3})
	wantErr(t, err, "neither digitalSignature nor codeSigning")

	_, err = Verify(context.Background(), b, Policy{Method: MethodCertificate, CertChainPEM: []byte("junk")})
	wantErr(t, err, "no PEM CERTIFICATE")

	// A certificate bundle given a key policy, and the reverse, say which flag fits.
	_, pub := signtest.SignKey(t, model(), signtest.Options{})
	_, err = Verify(context.Background(), b, keyPolicy(pub))
	wantErr(t, err, "--signature-certificate-chain or --signature-identity")
	kb, _ := signtest.SignKey(t, model(), signtest.Options{})
	_, err = Verify(context.Background(), kb, p)
	wantErr(t, err, "use --signature-public-key")

	// A payload changed after signing.
	tampered := editBundle(t, b, func(doc map[string]any) {
		st := payloadOf(t, doc)
		st["predicate"].(map[string]any)["resources"] = []any{}
		setPayload(doc, st)
	})
	_, err = Verify(context.Background(), tampered, p)
	wantErr(t, err, "changed after signing")
}

func otherKeyPEM(t *testing.T) []byte {
	_, pub := signtest.SignKey(t, model(), signtest.Options{})
	return pub
}
