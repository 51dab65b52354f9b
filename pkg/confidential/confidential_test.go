package confidential

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

const rid = "kbs:///default/model-key/llama"

// cdh is a stand-in for the Confidential Data Hub's resource endpoint: it
// serves body at /cdh/resource/default/model-key/llama and 404 elsewhere.
func cdh(t *testing.T, body []byte) (addr string, hits *atomic.Int32) {
	t.Helper()
	hits = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != "/cdh/resource/default/model-key/llama" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, hits
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func key32(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

func encrypt(t *testing.T, alg jose.KeyAlgorithm, key any, plain []byte) []byte {
	t.Helper()
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: alg, Key: key}, nil)
	require.NoError(t, err)
	obj, err := enc.Encrypt(plain)
	require.NoError(t, err)
	s, err := obj.CompactSerialize()
	require.NoError(t, err)
	return []byte(s)
}

func write(t *testing.T, dir, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, rel)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, data, 0o644))
}

// tree returns every file under dir with its content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got[filepath.ToSlash(rel)] = string(b)
		return nil
	}))
	return got
}

func TestDisabledDoesNothing(t *testing.T) {
	dest := t.TempDir()
	ct := encrypt(t, jose.DIRECT, key32(t), []byte("weights"))
	write(t, dest, "model.bin.jwe", ct)
	for _, v := range []string{"", "false", "1", "yes"} {
		require.NoError(t, Apply(context.Background(), dest, env(map[string]string{EnabledEnv: v}), zap.NewNop()), v)
	}
	assert.Equal(t, map[string]string{"model.bin.jwe": string(ct)}, tree(t, dest))
}

func TestResourceIDRequired(t *testing.T) {
	for _, v := range []string{"", "kbs://default/k/t", "kbs:///default/k", "kbs:///a/b/c/d", "kbs:///a b/c/d"} {
		err := Apply(context.Background(), t.TempDir(), env(map[string]string{EnabledEnv: "True", ResourceIDEnv: v}), zap.NewNop())
		require.Error(t, err, v)
		assert.Contains(t, err.Error(), "confidential mode: ")
		assert.Contains(t, err.Error(), ResourceIDEnv)
		assert.NotContains(t, err.Error(), "\n")
	}
}

func TestDecryptsWithKeyFromCDH(t *testing.T) {
	raw := key32(t)
	jwkJSON, err := json.Marshal(jose.JSONWebKey{Key: raw, KeyID: "k1"})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		body []byte // what CDH returns
		alg  jose.KeyAlgorithm
	}{
		{"base64url text with a newline", []byte(base64.RawURLEncoding.EncodeToString(raw) + "\n"), jose.DIRECT},
		{"JWK JSON, key wrap", jwkJSON, jose.A256KW},
		{"raw bytes", append([]byte{0xff, 0xfe}, raw[2:]...), jose.DIRECT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := raw
			if tc.name == "raw bytes" {
				k = tc.body
			}
			dest := t.TempDir()
			write(t, dest, "model.safetensors.jwe", encrypt(t, tc.alg, k, []byte("tensor bytes")))
			write(t, dest, "sub/tokenizer.JWE", encrypt(t, tc.alg, k, []byte(`{"tok":1}`)))
			// Content detection: JWE under a model name is replaced in place.
			write(t, dest, "sub/config.json", encrypt(t, tc.alg, k, []byte(`{"arch":"llama"}`)))
			write(t, dest, "README.md", []byte("plain"))
			addr, hits := cdh(t, tc.body)
			err := Apply(context.Background(), dest, env(map[string]string{
				EnabledEnv: "true", ResourceIDEnv: rid, CDHAddrEnv: addr + "/"}), zap.NewNop())
			require.NoError(t, err)
			assert.Equal(t, map[string]string{
				"model.safetensors": "tensor bytes",
				"sub/tokenizer":     `{"tok":1}`,
				"sub/config.json":   `{"arch":"llama"}`,
				"README.md":         "plain",
			}, tree(t, dest))
			assert.Equal(t, int32(1), hits.Load(), "one key request per DEST")
		})
	}
}

func TestNoEncryptedFilesAsksNothing(t *testing.T) {
	dest := t.TempDir()
	write(t, dest, "model.bin", []byte("plain"))
	addr, hits := cdh(t, []byte("x"))
	require.NoError(t, Apply(context.Background(), dest, env(map[string]string{
		EnabledEnv: "true", ResourceIDEnv: rid, CDHAddrEnv: addr}), zap.NewNop()))
	assert.Zero(t, hits.Load())
}

// A wrong key fails and leaves neither plaintext nor ciphertext under a
// name a model server loads; *.jwe ciphertext stays for a rerun.
func TestWrongKeyFailsClosed(t *testing.T) {
	dest := t.TempDir()
	good := key32(t)
	jweCT := encrypt(t, jose.DIRECT, good, []byte("tensor bytes"))
	write(t, dest, "model.safetensors.jwe", jweCT)
	write(t, dest, "config.json", encrypt(t, jose.DIRECT, good, []byte(`{}`)))
	write(t, dest, "README.md", []byte("plain"))
	addr, _ := cdh(t, []byte(base64.RawURLEncoding.EncodeToString(key32(t))))
	err := Apply(context.Background(), dest, env(map[string]string{
		EnabledEnv: "true", ResourceIDEnv: rid, CDHAddrEnv: addr}), zap.NewNop())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "confidential mode: cannot decrypt")
	assert.Contains(t, err.Error(), "removed 1 encrypted file")
	assert.NotContains(t, err.Error(), "\n")
	assert.Equal(t, map[string]string{"model.safetensors.jwe": string(jweCT), "README.md": "plain"}, tree(t, dest))
}

func TestCDHUnreachableFailsClosed(t *testing.T) {
	dest := t.TempDir()
	write(t, dest, "model.bin", encrypt(t, jose.DIRECT, key32(t), []byte("w")))
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there any more
	err := Apply(context.Background(), dest, env(map[string]string{
		EnabledEnv: "true", ResourceIDEnv: rid, CDHAddrEnv: addr}), zap.NewNop())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "confidential mode: cannot get the key "+rid+" from the Confidential Data Hub at "+addr)
	assert.Empty(t, tree(t, dest), "the ciphertext under a model name is removed")
}

func TestCDHErrorStatus(t *testing.T) {
	dest := t.TempDir()
	write(t, dest, "model.bin.jwe", encrypt(t, jose.DIRECT, key32(t), []byte("w")))
	addr, _ := cdh(t, nil)
	err := Apply(context.Background(), dest, env(map[string]string{
		EnabledEnv: "true", ResourceIDEnv: "kbs:///default/other/key", CDHAddrEnv: addr}), zap.NewNop())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 404")
}

func TestLinkLeavingDestFails(t *testing.T) {
	dest, claim := t.TempDir(), t.TempDir()
	write(t, claim, "model.bin", []byte("x"))
	require.NoError(t, os.Symlink(filepath.Join(claim, "model.bin"), filepath.Join(dest, "model.bin")))
	err := Apply(context.Background(), dest, env(map[string]string{EnabledEnv: "true", ResourceIDEnv: rid}), zap.NewNop())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--pvc-mode=copy")
}

func TestParseKeyRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("not base64 !!"), []byte("  \n")} {
		_, err := parseKey(b)
		assert.Error(t, err, "%q", b)
	}
	k, err := parseKey([]byte("AAEC"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal([]byte{0, 1, 2}, k.([]byte)))
}

func TestStripJWE(t *testing.T) {
	for in, want := range map[string]string{"a.jwe": "a", "d/m.bin.JWE": "d/m.bin", ".jwe": "", "d/.jwe": "", "a.jwex": "", "a": ""} {
		got, ok := stripJWE(in)
		assert.Equal(t, want != "", ok, in)
		assert.Equal(t, want, got, in)
	}
}

func TestNoResourceIDStillRemovesLoadableCiphertext(t *testing.T) {
	dest := t.TempDir()
	jweCT := encrypt(t, jose.DIRECT, key32(t), []byte("w"))
	write(t, dest, "model.bin.jwe", jweCT)
	write(t, dest, "config.json", encrypt(t, jose.DIRECT, key32(t), []byte("{}")))
	err := Apply(context.Background(), dest, env(map[string]string{EnabledEnv: "true"}), zap.NewNop())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "confidential mode: "+ResourceIDEnv+" is not set")
	assert.Equal(t, map[string]string{"model.bin.jwe": string(jweCT)}, tree(t, dest))
}

func TestJSONSerialization(t *testing.T) {
	k := key32(t)
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.A256KW, Key: k}, nil)
	require.NoError(t, err)
	obj, err := enc.Encrypt([]byte("weights"))
	require.NoError(t, err)
	dest := t.TempDir()
	write(t, dest, "m.bin.jwe", []byte(obj.FullSerialize()))
	addr, _ := cdh(t, []byte(base64.RawURLEncoding.EncodeToString(k)))
	require.NoError(t, Apply(context.Background(), dest, env(map[string]string{
		EnabledEnv: "true", ResourceIDEnv: rid, CDHAddrEnv: addr}), zap.NewNop()))
	assert.Equal(t, map[string]string{"m.bin": "weights"}, tree(t, dest))
}
