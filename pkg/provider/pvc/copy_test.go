package pvc

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

func TestCopyModeIsByteIdenticalVerifiedAndResumable(t *testing.T) {
	e := newClaim(t)
	src := filepath.Join(e.claim, "m")
	big := make([]byte, 3<<20+123) // several 1 MiB chunks
	for i := range big {
		big[i] = byte(i * 7)
	}
	write(t, src, "big.bin", string(big))
	write(t, src, "sub/small.txt", "small")
	write(t, e.claim, "blobs/x", "linked")
	require.NoError(t, os.Symlink("../blobs/x", filepath.Join(src, "via-link.bin")))
	write(t, src, "SHA256SUMS", sha(string(big))+"  big.bin\n"+sha("linked")+"  via-link.bin\n")
	require.NoError(t, os.Chmod(filepath.Join(src, "sub/small.txt"), 0o600))

	p := newProvider(e.root, ModeCopy)
	rep, err := p.Fetch(t.Context(), "file://"+src, e.dest)
	require.NoError(t, err)
	byPath := map[string]engine.FileResult{}
	for _, f := range rep.Files {
		byPath[f.Path] = f
	}
	require.Len(t, byPath, 4)
	assert.Equal(t, "sha256", byPath["big.bin"].Verified)
	assert.Equal(t, "sha256", byPath["via-link.bin"].Verified)
	assert.Equal(t, "size only", byPath["sub/small.txt"].Verified)
	assert.Equal(t, engine.StatusDownloaded, byPath["big.bin"].Status)

	for rel, want := range map[string]string{"big.bin": string(big), "sub/small.txt": "small", "via-link.bin": "linked"} {
		fi, err := os.Lstat(filepath.Join(e.dest, rel))
		require.NoError(t, err, rel)
		assert.True(t, fi.Mode().IsRegular(), "%s is a copy, not a link", rel)
		got, err := os.ReadFile(filepath.Join(e.dest, rel))
		require.NoError(t, err)
		assert.Equal(t, want, string(got), rel)
	}
	fi, err := os.Stat(filepath.Join(e.dest, "sub/small.txt"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "mode kept (the engine adds group read)")

	again, err := p.Fetch(t.Context(), src, e.dest)
	require.NoError(t, err)
	for _, f := range again.Files {
		assert.Equal(t, engine.StatusPresent, f.Status, f.Path)
	}
	assert.Zero(t, again.Fetched, "a rerun reads nothing")
}

func TestCopyModeFailsOnManifestMismatch(t *testing.T) {
	e := newClaim(t)
	write(t, e.claim, "m/a.bin", "actual")
	write(t, e.claim, "m/SHA256SUMS", sha("expected")+"  a.bin\n")
	_, err := newProvider(e.root, ModeCopy).Fetch(t.Context(), "pvc://claim/m", e.dest)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "checksum mismatch for a.bin")
	_, err = os.Stat(filepath.Join(e.dest, "a.bin"))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing unverified gets its final name")
}

func TestFileLoaderRefusesAChangedFile(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "a", "0123456789")
	fi, err := os.Stat(p)
	require.NoError(t, err)
	l := &fileLoader{path: p, size: fi.Size(), mtime: fi.ModTime()}
	var got []byte
	require.NoError(t, l.Load(t.Context(), 4, 3, func(r io.Reader) error {
		var err error
		got, err = io.ReadAll(r)
		return err
	}))
	assert.Equal(t, "3456", string(got))
	require.NoError(t, os.WriteFile(p, []byte("longer content"), 0o644))
	err = l.Load(t.Context(), 4, 0, func(io.Reader) error { return nil })
	assert.True(t, engine.IsPermanent(err))
	assert.ErrorContains(t, err, "changed during the copy")
}
