package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

func sha256Value(b []byte) checksum.Value {
	s := sha256.Sum256(b)
	return checksum.Value{Algorithm: checksum.SHA256, Sum: s[:]}
}

func bytesLoader(b []byte) engine.Loader {
	return engine.LoaderFunc(func(_ context.Context, length, offset int64, fn func(io.Reader) error) error {
		if length < 0 {
			length = int64(len(b)) - offset
		}
		return fn(bytes.NewReader(b[offset : offset+length]))
	})
}

func TestParseVerificationDigest(t *testing.T) {
	good := strings.Repeat("ab", 32)
	v, err := parseVerificationDigest("sha256:" + good)
	require.NoError(t, err)
	assert.Equal(t, checksum.SHA256, v.Algorithm)
	assert.Equal(t, good, v.String())
	v, err = parseVerificationDigest("sha256:" + strings.ToUpper(good))
	require.NoError(t, err, "hex in either case")
	assert.Equal(t, good, v.String())
	for _, bad := range []string{good, "sha256:", "sha256:" + good[:62], "sha256:" + good + "00", "sha512:" + good,
		"SHA256:" + good, "sha256:" + good[:63] + "g", " sha256:" + good, "md5:" + good[:32]} {
		_, err := parseVerificationDigest(bad)
		assert.Error(t, err, bad)
	}
}

// The engine verifies the strongest checksum and keeps the given order
// among equals: the pinned SHA-256 put first must be the one enforced even
// when the source lists another SHA-256. This runs the real engine on a
// plan pinned by pinFirst, bypassing the early disagreement check.
func TestPinnedDigestWinsOverSourceSHA256(t *testing.T) {
	content := []byte("the weights the source really has")
	source := sha256Value(content)
	wrong := sha256Value([]byte("the weights the operator pinned"))
	eng := engine.New(engine.WithLogger(zap.NewNop()))
	plan := func(expect []checksum.Value) *engine.Plan {
		return &engine.Plan{Source: "test://model", Files: []engine.File{{Path: "model.bin", Size: int64(len(content)),
			Expect: expect, Identity: "v1", Source: bytesLoader(content)}}}
	}

	// The pin is wrong, the source's own SHA-256 right: the run fails on the pin.
	dest := t.TempDir()
	_, err := eng.Run(context.Background(), dest, plan(pinFirst([]checksum.Value{source}, wrong)))
	require.Error(t, err, "the pinned digest must be enforced, not the source's")
	assert.Contains(t, err.Error(), wrong.String())
	assert.Contains(t, err.Error(), source.String(), "the message names what the bytes have")
	assert.NoFileExists(t, filepath.Join(dest, "model.bin"))

	// The pin is right, the source lists a wrong SHA-256: the pin decides.
	dest = t.TempDir()
	rep, err := eng.Run(context.Background(), dest, plan(pinFirst([]checksum.Value{wrong}, source)))
	require.NoError(t, err)
	require.Len(t, rep.Files, 1)
	assert.Equal(t, "sha256", rep.Files[0].Verified)
	assert.Equal(t, source.String(), rep.Files[0].Digest)
	got, err := os.ReadFile(filepath.Join(dest, "model.bin"))
	require.NoError(t, err)
	assert.Equal(t, content, got)

	// A weaker checksum of the source (a CRC) never displaces it either.
	crc := checksum.Value{Algorithm: checksum.CRC64NVME, Sum: make([]byte, 8)}
	dest = t.TempDir()
	_, err = eng.Run(context.Background(), dest, plan(pinFirst([]checksum.Value{crc}, wrong)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), wrong.String())
}

func TestPinDigestShapes(t *testing.T) {
	want := sha256Value([]byte("x"))
	other := sha256Value([]byte("y"))
	keepAll := func(string) bool { return true }
	file := func(p string) engine.File { return engine.File{Path: p, Size: 1} }
	blob := func(p string) engine.Blob { b := engine.Blob{}; b.Path = p; return b }

	p := &engine.Plan{Source: "s3://b/m.bin", Files: []engine.File{file("m.bin")}}
	p.Files[0].Expect = []checksum.Value{{Algorithm: checksum.CRC32C, Sum: make([]byte, 4)}}
	require.NoError(t, pinDigest(p, want, keepAll, zap.NewNop()))
	assert.Equal(t, want, p.Files[0].Expect[0], "the digest comes first")
	assert.Len(t, p.Files[0].Expect, 2, "the source's checksums stay")

	p = &engine.Plan{Source: "https://h/m.tar.gz", Units: []engine.Unit{{ID: "u", Name: "https://h/m.tar.gz", Blobs: []engine.Blob{blob("m.tar.gz")}}}}
	require.NoError(t, pinDigest(p, want, keepAll, zap.NewNop()))
	assert.Equal(t, []checksum.Value{want}, p.Units[0].Blobs[0].Expect)
	assert.Contains(t, p.Units[0].ID, want.String(), "a tree committed under another digest is not this one")
	assert.Contains(t, p.Units[0].Verified, "sha256:"+want.String())

	// The source vouches for another SHA-256: refused before any download.
	p = &engine.Plan{Source: "hf://o/m", Files: []engine.File{file("m.bin")}}
	p.Files[0].Expect = []checksum.Value{other}
	err := pinDigest(p, want, keepAll, zap.NewNop())
	require.Error(t, err)
	assert.Contains(t, err.Error(), want.String())
	assert.Contains(t, err.Error(), other.String())
	p.Files[0].Expect = []checksum.Value{want}
	assert.NoError(t, pinDigest(p, want, keepAll, zap.NewNop()), "an agreeing source checksum is fine")

	refused := map[string]*engine.Plan{
		"a folder of 2 files":      {Source: "s3://b/f", Files: []engine.File{file("a"), file("b")}},
		"made of 3 blobs":          {Source: "oci://r/i", Units: []engine.Unit{{Name: "oci://r/i", Blobs: []engine.Blob{blob("1"), blob("2"), blob("3")}}}},
		"a folder of 3 files":      {Source: "oci://r/a", Files: []engine.File{file("a")}, Units: []engine.Unit{{Blobs: []engine.Blob{blob("1"), blob("2")}}}},
		"linked into DEST":         {Source: "pvc://c/m", Links: []engine.Link{{Path: "m"}}},
		"verified in place":        {Source: "pvc://c/m", Checked: []engine.FileResult{{Path: "m"}}},
		"empty":                    {Source: "pvc://c/none"},
		"the include/exclude patt": {Source: "hf://o/m", Files: []engine.File{file("m.bin")}},
	}
	for what, p := range refused {
		keep := keepAll
		if strings.HasPrefix(what, "the include") {
			keep = func(string) bool { return false }
		}
		err := pinDigest(p, want, keep, zap.NewNop())
		require.Error(t, err, what)
		assert.Contains(t, err.Error(), what)
		assert.Contains(t, err.Error(), "VERIFICATION_DIGEST is set but "+p.Source)
		assert.Contains(t, err.Error(), "a digest pins a single file or archive")
		assert.NotContains(t, err.Error(), "\n")
	}
}

func TestVerificationDigestConfig(t *testing.T) {
	d := "sha256:" + hex.EncodeToString(make([]byte, 32))
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	cfg, err := parseConfig([]string{"s3://b/m", "/tmp/d"}, env(map[string]string{"VERIFICATION_DIGEST": d}), io.Discard)
	require.NoError(t, err)
	require.NotNil(t, cfg.verificationDigest)
	assert.Equal(t, d, "sha256:"+cfg.verificationDigest.String())

	cfg, err = parseConfig([]string{"--verification-digest", d, "s3://b/m", "/tmp/d"}, env(map[string]string{"STORAGE_INITIALIZER_VERIFY": "size"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, engine.VerifyAuto, cfg.verify, "--verify=size does not turn a pinned digest off")

	cfg, err = parseConfig([]string{"s3://b/m", "/tmp/d"}, env(nil), io.Discard)
	require.NoError(t, err)
	assert.Nil(t, cfg.verificationDigest)

	_, err = parseConfig([]string{"s3://b/m", "/tmp/d"}, env(map[string]string{"VERIFICATION_DIGEST": "sha256:abc"}), io.Discard)
	var ue *usageError
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, err.Error(), "64 hex digits")

	_, err = parseConfig([]string{"s3://b/m", "/tmp/d", "s3://b/n", "/tmp/e"}, env(map[string]string{"VERIFICATION_DIGEST": d}), io.Discard)
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, err.Error(), "2 SRC DEST pairs")
}
