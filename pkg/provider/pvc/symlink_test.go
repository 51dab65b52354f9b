package pvc

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

func TestSymlinkModeLinksTopLevelEntriesAndIsIdempotent(t *testing.T) {
	e := newClaim(t)
	src := filepath.Join(e.claim, "model")
	write(t, src, "model.bin", "weights")
	write(t, src, "tokenizer/vocab.json", "{}")
	write(t, src, ".cache/lock", "x")
	p := newProvider(e.root, ModeSymlink)

	rep, err := p.Fetch(t.Context(), "pvc://claim/model", e.dest)
	require.NoError(t, err)
	assert.Equal(t, []string{"model.bin", "tokenizer/vocab.json"}, paths(rep))
	for _, f := range rep.Files {
		assert.Equal(t, engine.StatusPresent, f.Status)
		assert.Equal(t, "not verified (symlink)", f.Verified)
	}
	assert.Equal(t, int64(len("weights")+2), rep.Bytes)
	for _, name := range []string{"model.bin", "tokenizer"} {
		target, err := os.Readlink(filepath.Join(e.dest, name))
		require.NoError(t, err, name)
		assert.Equal(t, filepath.Join(src, name), target)
	}
	_, err = os.Lstat(filepath.Join(e.dest, ".cache"))
	assert.ErrorIs(t, err, os.ErrNotExist, "top-level dotfiles are skipped like KServe's glob")
	got, err := os.ReadFile(filepath.Join(e.dest, "tokenizer/vocab.json"))
	require.NoError(t, err)
	assert.Equal(t, "{}", string(got))

	again, err := p.Fetch(t.Context(), "pvc://claim/model", e.dest)
	require.NoError(t, err, "a rerun over its own links is a no-op")
	assert.Equal(t, rep.Files, again.Files)
	ents, err := os.ReadDir(e.dest)
	require.NoError(t, err)
	assert.Len(t, ents, 2)
}

func TestSymlinkModeLeavesExistingEntriesAlone(t *testing.T) {
	e := newClaim(t)
	write(t, e.claim, "m/a.bin", "new")
	write(t, e.claim, "m/b.bin", "bbb")
	write(t, e.dest, "a.bin", "mine")
	p := newProvider(e.root, ModeSymlink)

	rep, err := p.Fetch(t.Context(), "pvc://claim/m", e.dest)
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(e.dest, "a.bin"))
	require.NoError(t, err)
	assert.Equal(t, "mine", string(got))
	require.Len(t, rep.Files, 2)
	assert.Equal(t, "not linked (DEST already has it)", rep.Files[0].Verified)
	_, err = os.Readlink(filepath.Join(e.dest, "b.bin"))
	assert.NoError(t, err)
}

func TestSymlinkModeFileSourceAndOlderFlow(t *testing.T) {
	e := newClaim(t)
	// No folder named "gone" under the root: pvc://gone/PATH is ROOT/PATH.
	write(t, e.root, "models/model.onnx", "onnx")
	p := newProvider(e.root, ModeSymlink)
	rep, err := p.Fetch(t.Context(), "pvc://gone/models/model.onnx", e.dest)
	require.NoError(t, err)
	assert.Equal(t, []string{"model.onnx"}, paths(rep))
	target, err := os.Readlink(filepath.Join(e.dest, "model.onnx"))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(e.root, "models/model.onnx"), target)
}

func TestSymlinkModeWithPatternsShowsOnlyKeptFiles(t *testing.T) {
	e := newClaim(t)
	src := filepath.Join(e.claim, "m")
	write(t, src, "config.json", "{}")
	write(t, src, "weights.bin", "w")
	write(t, src, "tok/a.json", "{}")
	write(t, src, "tok/b.bin", "b")
	write(t, src, "extra/c.json", "{}")
	keep := func(rel string) bool { return filepath.Ext(rel) == ".json" }
	p := newProvider(e.root, ModeSymlink, engine.WithFilter(keep))

	rep, err := p.Fetch(t.Context(), "pvc://claim/m", e.dest)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"config.json", "tok/a.json", "extra/c.json"}, paths(rep))
	fi, err := os.Lstat(filepath.Join(e.dest, "tok"))
	require.NoError(t, err)
	assert.True(t, fi.IsDir(), "a mixed folder becomes a real folder")
	_, err = os.Readlink(filepath.Join(e.dest, "tok/a.json"))
	assert.NoError(t, err)
	_, err = os.Lstat(filepath.Join(e.dest, "tok/b.bin"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Readlink(filepath.Join(e.dest, "extra"))
	assert.NoError(t, err, "a folder whose files are all kept is linked whole")
	_, err = os.Lstat(filepath.Join(e.dest, "weights.bin"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	none := newProvider(e.root, ModeSymlink, engine.WithFilter(func(string) bool { return false }))
	_, err = none.Fetch(t.Context(), "pvc://claim/m", t.TempDir())
	assert.ErrorContains(t, err, "no file matches the include/exclude patterns")
}

func TestLinksInsideTheClaimAreFollowed(t *testing.T) {
	// Hugging Face cache layout: snapshot files link to blobs elsewhere in
	// the claim.
	e := newClaim(t)
	write(t, e.claim, "hub/blobs/abc", "weights")
	snap := filepath.Join(e.claim, "hub/snapshots/rev")
	require.NoError(t, os.MkdirAll(snap, 0o755))
	require.NoError(t, os.Symlink("../../blobs/abc", filepath.Join(snap, "model.bin")))
	write(t, e.claim, "hub/manifest/SUMS", sha("weights")+"  model.bin\n")

	p := newWith(engine.New(), WithRoot(e.root), WithManifest(filepath.Join(e.claim, "hub/manifest/SUMS")))
	rep, err := p.Fetch(t.Context(), "pvc://claim/hub/snapshots/rev", e.dest)
	require.NoError(t, err)
	require.Len(t, rep.Files, 1)
	assert.Equal(t, "sha256", rep.Files[0].Verified)
	assert.Equal(t, sha("weights"), rep.Files[0].Digest)
	got, err := os.ReadFile(filepath.Join(e.dest, "model.bin"))
	require.NoError(t, err)
	assert.Equal(t, "weights", string(got))
}
