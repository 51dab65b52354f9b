package pvc

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// assertNothingLinked fails when DEST holds anything after a refused source.
func assertNothingLinked(t *testing.T, dest string) {
	t.Helper()
	ents, err := os.ReadDir(dest)
	if err == nil {
		assert.Empty(t, ents, "nothing may be linked before the source is checked")
	}
}

func TestMissingSourceNamesTheClaim(t *testing.T) {
	e := newClaim(t)
	_, err := newProvider(e.root, ModeSymlink).Fetch(t.Context(), "pvc://claim/nope", e.dest)
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "PVC path "+filepath.Join(e.claim, "nope")+" does not exist — is claim claim mounted at "+e.claim+"?")
	assertNothingLinked(t, e.dest)
}

func TestEmptyFolderIsRefused(t *testing.T) {
	e := newClaim(t)
	require.NoError(t, os.MkdirAll(filepath.Join(e.claim, "m/empty-sub"), 0o755))
	write(t, e.claim, "m/.hidden", "x")
	_, err := newProvider(e.root, ModeSymlink).Fetch(t.Context(), "pvc://claim/m", e.dest)
	assert.ErrorContains(t, err, "holds no files")
	assertNothingLinked(t, e.dest)
}

func TestBadLinksAreRefused(t *testing.T) {
	outside := write(t, t.TempDir(), "secret", "token")
	for name, setup := range map[string]func(t *testing.T, src string){
		"dangling": func(t *testing.T, src string) {
			require.NoError(t, os.Symlink("missing.bin", filepath.Join(src, "sub/model.bin")))
		},
		"absolute outside": func(t *testing.T, src string) {
			require.NoError(t, os.Symlink(outside, filepath.Join(src, "sub/model.bin")))
		},
		"relative outside": func(t *testing.T, src string) {
			rel, err := filepath.Rel(filepath.Join(src, "sub"), outside)
			require.NoError(t, err)
			require.NoError(t, os.Symlink(rel, filepath.Join(src, "sub/model.bin")))
		},
		"loop": func(t *testing.T, src string) {
			require.NoError(t, os.Symlink("..", filepath.Join(src, "sub/again")))
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newClaim(t)
			src := filepath.Join(e.claim, "m")
			write(t, src, "config.json", "{}")
			require.NoError(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
			setup(t, src)
			_, err := newProvider(e.root, ModeSymlink).Fetch(t.Context(), "pvc://claim/m", e.dest)
			require.Error(t, err)
			switch name {
			case "dangling":
				assert.Contains(t, err.Error(), "symlink sub/model.bin points to missing.bin, which does not exist")
			case "loop":
				assert.Contains(t, err.Error(), "symlink loop at sub/again")
			default:
				assert.Contains(t, err.Error(), "symlink sub/model.bin points to "+outside+", outside "+e.claim)
			}
			assertNothingLinked(t, e.dest)
		})
	}
}

func TestSourceLinkLeavingTheClaimIsRefused(t *testing.T) {
	e := newClaim(t)
	other := filepath.Join(e.root, "other-claim", "m")
	write(t, other, "a.bin", "a")
	require.NoError(t, os.Symlink(other, filepath.Join(e.claim, "m")))
	_, err := newProvider(e.root, ModeVerify).Fetch(t.Context(), "pvc://claim/m", e.dest)
	assert.ErrorContains(t, err, "resolves to "+other+", outside "+e.claim)
}

func TestFIFOIsRefused(t *testing.T) {
	e := newClaim(t)
	write(t, e.claim, "m/a.bin", "a")
	require.NoError(t, syscall.Mkfifo(filepath.Join(e.claim, "m/pipe"), 0o644))
	_, err := newProvider(e.root, ModeSymlink).Fetch(t.Context(), "pvc://claim/m", e.dest)
	assert.ErrorContains(t, err, "pipe is a FIFO, not a file or folder")
	assertNothingLinked(t, e.dest)
}

func TestLargeFileVerifiedByManifest(t *testing.T) {
	e := newClaim(t)
	src := filepath.Join(e.claim, "m")
	big := filepath.Join(src, "big.bin")
	require.NoError(t, os.MkdirAll(src, 0o755))
	f, err := os.Create(big)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(64<<20)) // sparse: no disk used
	_, err = f.WriteAt([]byte("tail"), 64<<20-4)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	h := sha256.New()
	bf, err := os.Open(big)
	require.NoError(t, err)
	_, err = io.Copy(h, bf)
	require.NoError(t, err)
	bf.Close()
	bigSum := hex.EncodeToString(h.Sum(nil))
	write(t, src, "config.json", "{}")
	write(t, src, "SHA256SUMS", bigSum+" *big.bin\n"+sha("{}")+"  config.json\n")

	rep, err := newProvider(e.root, ModeVerify).Fetch(t.Context(), "pvc://claim/m", e.dest)
	require.NoError(t, err)
	byPath := map[string]engine.FileResult{}
	for _, f := range rep.Files {
		byPath[f.Path] = f
	}
	assert.Equal(t, "sha256", byPath["big.bin"].Verified)
	assert.Equal(t, bigSum, byPath["big.bin"].Digest)
	assert.Equal(t, int64(64<<20), byPath["big.bin"].Size)
	assert.Equal(t, "not verified (no manifest entry)", byPath["SHA256SUMS"].Verified)
	_, err = os.Stat(e.dest)
	assert.ErrorIs(t, err, os.ErrNotExist, "verify mode does not touch DEST")

	// One flipped byte in the big file fails, naming file, expected and actual.
	f, err = os.OpenFile(big, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{1}, 32<<20)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = newProvider(e.root, ModeSymlink).Fetch(t.Context(), "pvc://claim/m", e.dest)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "checksum mismatch for big.bin")
	assert.Contains(t, err.Error(), "expected "+bigSum+", got ")
	assertNothingLinked(t, e.dest)
}

func TestManifestListingAMissingFileFails(t *testing.T) {
	e := newClaim(t)
	write(t, e.claim, "m/a.bin", "a")
	write(t, e.claim, "sums.txt", sha("a")+"  a.bin\n"+sha("b")+"  b.bin\n")
	p := newWith(engine.New(), WithRoot(e.root), WithMode(ModeVerify), WithManifest("../sums.txt"))
	_, err := p.Fetch(t.Context(), "pvc://claim/m", e.dest)
	assert.ErrorContains(t, err, "lists b.bin, which is not a file in")

	p = newWith(engine.New(), WithRoot(e.root), WithManifest("nope.txt"))
	_, err = p.Fetch(t.Context(), "pvc://claim/m", e.dest)
	assert.ErrorContains(t, err, "manifest "+filepath.Join(e.claim, "m/nope.txt")+" does not exist")
}

func TestStrictNeedsAManifestEntryForEveryFile(t *testing.T) {
	e := newClaim(t)
	write(t, e.claim, "m/a.bin", "a")
	write(t, e.claim, "m/b.bin", "b")
	p := newProvider(e.root, ModeSymlink, engine.WithVerify(engine.VerifyStrict))
	_, err := p.Fetch(t.Context(), "pvc://claim/m", e.dest)
	assert.ErrorContains(t, err, "--verify=strict")
	assertNothingLinked(t, e.dest)

	write(t, e.claim, "m/SHA256SUMS", sha("a")+"  a.bin\n"+sha("b")+"  b.bin\n")
	rep, err := p.Fetch(t.Context(), "pvc://claim/m", e.dest)
	require.NoError(t, err, "the manifest itself needs no entry")
	assert.Len(t, rep.Files, 3)
}
