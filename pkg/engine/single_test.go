package engine

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// Files fetched in one request take the short path (folder descriptors, no
// journal or preallocation): these tests hold it to the same guarantees as
// the ranged path.

func smallFile(name string, seed uint64) (File, []byte) {
	data := randBytes(seed, 10<<10) // well under fastEngine's 64 KiB chunk
	return File{Path: name, Size: int64(len(data)), Identity: "v1", Expect: []checksum.Value{sumOf(checksum.CRC64NVME, data)},
		ModTime: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), Source: &memSource{data: data}}, data
}

func TestSingleRequestFileReplacesASymlinkAndNeverFollowsIt(t *testing.T) {
	parent := t.TempDir()
	dest, victim := filepath.Join(parent, "dest"), filepath.Join(parent, "victim")
	require.NoError(t, os.MkdirAll(dest, 0o755))
	f, data := smallFile("w.bin", 1)
	require.NoError(t, os.WriteFile(victim, make([]byte, len(data)), 0o644)) // same size: "present" by size
	require.NoError(t, os.Symlink(victim, filepath.Join(dest, "w.bin")))
	_, err := fastEngine().Fetch(context.Background(), dest, []File{f})
	require.NoError(t, err)
	fi, err := os.Lstat(filepath.Join(dest, "w.bin"))
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the link is replaced by the file")
	requireFile(t, filepath.Join(dest, "w.bin"), data)
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, len(data)), got, "the file outside DEST is untouched")
}

func TestSingleRequestFileRefusesAFolderAtItsName(t *testing.T) {
	dest := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dest, "w.bin", "inside"), 0o755))
	f, _ := smallFile("w.bin", 2)
	_, err := fastEngine().Fetch(context.Background(), dest, []File{f})
	require.ErrorContains(t, err, "w.bin exists in the destination as a folder")
	assert.NotContains(t, err.Error(), "\n")
	fi, err := os.Stat(filepath.Join(dest, "w.bin", "inside"))
	require.NoError(t, err)
	assert.True(t, fi.IsDir(), "the folder is left alone")
}

// A state folder that is a symlink out of DEST is refused by os.Root when
// the run opens its descriptor: nothing is written there.
func TestSingleRequestFileStateFolderLinkOutsideIsRefused(t *testing.T) {
	parent := t.TempDir()
	dest, outside := filepath.Join(parent, "dest"), filepath.Join(parent, "outside")
	require.NoError(t, os.MkdirAll(dest, 0o755))
	require.NoError(t, os.MkdirAll(outside, 0o755))
	require.NoError(t, os.Symlink(outside, filepath.Join(dest, StateDir)))
	f, _ := smallFile("w.bin", 3)
	_, err := fastEngine().Fetch(context.Background(), dest, []File{f})
	require.Error(t, err)
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing is written outside DEST")
}

// A temp file an earlier run left (longer, other bytes) is cut, not reused.
func TestSingleRequestFileTruncatesAStaleTempFile(t *testing.T) {
	dest := t.TempDir()
	f, data := smallFile("w.bin", 4)
	require.NoError(t, os.MkdirAll(filepath.Join(dest, StateDir), 0o755))
	stale := filepath.Join(dest, StateDir, tmpBase("w.bin")+".part")
	require.NoError(t, os.WriteFile(stale, randBytes(99, 50<<10), 0o600))
	rep, err := fastEngine().Fetch(context.Background(), dest, []File{f})
	require.NoError(t, err)
	require.Len(t, rep.Files, 1)
	assert.Equal(t, StatusDownloaded, rep.Files[0].Status)
	requireFile(t, filepath.Join(dest, "w.bin"), data)
	_, err = os.Stat(stale)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// The committed file has its final mode whatever the umask (the temp file
// is created with it, and chmodded when the umask took bits away), the
// source's mtime, and a stamp a rerun trusts without reading the file.
func TestSingleRequestFileModeMtimeAndStamp(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dest := t.TempDir()
	f, data := smallFile("a.bin", 5)
	g, _ := smallFile("b.bin", 6)
	g.Mode = 0o755
	_, err := fastEngine().Fetch(context.Background(), dest, []File{f, g})
	require.NoError(t, err)
	for name, mode := range map[string]os.FileMode{"a.bin": 0o644, "b.bin": 0o755} {
		fi, err := os.Stat(filepath.Join(dest, name))
		require.NoError(t, err)
		assert.Equal(t, mode, fi.Mode().Perm(), name)
		assert.True(t, fi.ModTime().Equal(f.ModTime), "%s: mtime %v", name, fi.ModTime())
	}
	requireFile(t, filepath.Join(dest, "a.bin"), data)

	src := f.Source.(*memSource)
	calls := src.calls.Load()
	rep, err := fastEngine().Fetch(context.Background(), dest, []File{f})
	require.NoError(t, err)
	assert.Equal(t, StatusPresent, rep.Files[0].Status)
	assert.Equal(t, calls, src.calls.Load(), "the rerun fetched nothing")
	_, err = os.Stat(filepath.Join(dest, StateDir))
	assert.ErrorIs(t, err, os.ErrNotExist, "the state folder is removed once empty")
}
