package pvc

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolvePrefersTheClaimFolder(t *testing.T) {
	e := newClaim(t)
	p := newProvider(e.root, ModeVerify)

	loc, err := p.resolve("pvc://claim/models/llama")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(e.claim, "models/llama"), loc.path)
	assert.Equal(t, e.claim, loc.boundary)

	// No folder named after the claim: the older flow mounted it at ROOT.
	loc, err = p.resolve("pvc://other/models/llama")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(e.root, "models/llama"), loc.path)
	assert.Equal(t, e.root, loc.boundary)
	assert.Contains(t, loc.missing, "is claim other mounted at")
}

func TestResolveLocalForms(t *testing.T) {
	p := newProvider("/nonexistent", ModeVerify)
	for src, want := range map[string]string{
		"/data/model/":                  "/data/model",
		"file:///data/model":            "/data/model",
		"file://localhost/data/model":   "/data/model",
		"FILE:///data/x/../model/a.bin": "/data/model/a.bin",
	} {
		loc, err := p.resolve(src)
		require.NoError(t, err, src)
		assert.Equal(t, want, loc.path, src)
		assert.Empty(t, loc.boundary, "local paths are bounded by their volume")
		assert.False(t, loc.noop)
	}
	for _, src := range []string{"file://host/data", "file://relative", "pvc:///path", "pvc://claim/../etc", "pvc://../x"} {
		_, err := p.resolve(src)
		assert.Error(t, err, src)
	}
}

func TestSourceUnderMntModelsIsANoop(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "dest")
	p := newProvider("/nonexistent", ModeSymlink)
	for _, src := range []string{"/mnt/models", "/mnt/models/model-a", "file:///mnt/models/b"} {
		rep, err := p.Fetch(t.Context(), src, dest)
		require.NoError(t, err, src)
		assert.Empty(t, rep.Files)
	}
	_, err := os.Stat(dest)
	assert.ErrorIs(t, err, os.ErrNotExist, "a no-op must not create DEST")

	// Only the folder itself, not a raw string prefix.
	loc, err := p.resolve("/mnt/models-old/x")
	require.NoError(t, err)
	assert.False(t, loc.noop)
}

func TestVolumeRootStopsAtTheDeviceBoundary(t *testing.T) {
	devs := map[string]uint64{"/": 1, "/data": 1, "/data/pvc": 2, "/data/pvc/claim": 2, "/data/pvc/claim/m": 2}
	dev := func(p string) (uint64, error) { return devs[p], nil }
	got, err := volumeRootBy("/data/pvc/claim/m", dev)
	require.NoError(t, err)
	assert.Equal(t, "/data/pvc", got)
	got, err = volumeRootBy("/data", dev)
	require.NoError(t, err)
	assert.Equal(t, "/", got)
}
