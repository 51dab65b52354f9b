package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// testUnit is a unit of two blobs; each unpacks into one file named after
// the blob holding the blob's bytes.
func testUnit(blobs map[string][]byte, srcs map[string]*memSource) Unit {
	u := Unit{ID: "test unit v1", Name: "test unit", Verified: "sha256 (test blob)"}
	names := make([]string, 0, len(blobs))
	for n := range blobs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		data := blobs[n]
		src := &memSource{data: data}
		srcs[n] = src
		u.Blobs = append(u.Blobs, Blob{
			File: File{Path: "blob " + n, Size: int64(len(data)), Identity: "id " + n,
				Expect: []checksum.Value{sumOf(checksum.SHA256, data)}, Source: src},
			Unpack: func(ctx context.Context, s UnpackSource, dir *os.Root, o UnpackOptions) (UnpackStats, error) {
				b, err := io.ReadAll(s)
				if err != nil {
					return UnpackStats{}, err
				}
				if err := dir.WriteFile(n, b, 0o644); err != nil {
					return UnpackStats{}, err
				}
				return UnpackStats{Files: 1, Bytes: int64(len(b))}, nil
			},
		})
	}
	return u
}

// destTree lists every entry under dest (state folder included).
func destTree(t *testing.T, dest string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dest, p)
		switch {
		case rel == ".":
		case d.IsDir():
			out[rel] = "dir"
		default:
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			out[rel] = string(b)
		}
		return nil
	}))
	return out
}

func blobs() map[string][]byte {
	return map[string][]byte{"a.bin": randBytes(1, 70_000), "b.bin": randBytes(2, 30_000)}
}

func want(b map[string][]byte) map[string]string {
	out := map[string]string{}
	for n, d := range b {
		out[n] = string(d)
	}
	return out
}

func runUnitPlan(t *testing.T, dest string, u Unit) (*Report, error) {
	t.Helper()
	return fastEngine().Run(context.Background(), dest, &Plan{Source: "test", Units: []Unit{u}})
}

func TestUnitCommitsTreeAndARerunFetchesNothing(t *testing.T) {
	b, dest := blobs(), t.TempDir()
	srcs := map[string]*memSource{}
	rep, err := runUnitPlan(t, dest, testUnit(b, srcs))
	require.NoError(t, err)
	assert.Equal(t, want(b), destTree(t, dest), "exactly the tree, no state left")
	assert.Len(t, rep.Files, 2)

	again := map[string]*memSource{}
	rep, err = runUnitPlan(t, dest, testUnit(b, again))
	require.NoError(t, err)
	for _, s := range again {
		assert.Zero(t, s.calls.Load(), "a rerun after success fetches nothing")
	}
	require.Len(t, rep.Files, 2)
	assert.Equal(t, StatusPresent, rep.Files[0].Status)

	// A file changed in place (mtime set back) breaks the record: fetched again.
	time.Sleep(sealWindow + 100*time.Millisecond)
	p := filepath.Join(dest, "a.bin")
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, make([]byte, fi.Size()), 0o644))
	require.NoError(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
	third := map[string]*memSource{}
	_, err = runUnitPlan(t, dest, testUnit(b, third))
	require.NoError(t, err)
	assert.NotZero(t, third["a.bin"].calls.Load())
	assert.Equal(t, want(b), destTree(t, dest))
}

// unitDir is where the engine stages testUnit.
func unitDir(dest string) string {
	return filepath.Join(dest, StateDir, "unit-"+safeID("test unit v1"))
}

func writeState(t *testing.T, dir, name string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o600))
}

// Whatever phase a killed run left, the rerun ends with exactly the tree.
func TestUnitRerunAfterEachPhase(t *testing.T) {
	b := blobs()
	for name, prepare := range map[string]func(t *testing.T, dir string){
		// Killed while merging: blob folders half consumed, a stale file in
		// the tree; the blob records must not be trusted.
		"merging": func(t *testing.T, dir string) {
			writeState(t, dir, unitPhaseFile, phaseMerging)
			writeState(t, dir, blobMark(0), blobRecord{Identity: "id a.bin"})
			require.NoError(t, os.MkdirAll(filepath.Join(dir, blobDir(0)), 0o755))
			writeState(t, dir, path.Join(unitTreeDir, "stale"), "half")
		},
		// A blob folder left without its record (killed mid-unpack), with
		// content that is not the blob's.
		"unpacking": func(t *testing.T, dir string) {
			writeState(t, dir, path.Join(blobDir(1), "b.bin"), "partial")
		},
		// A record of another version of the blob.
		"stale record": func(t *testing.T, dir string) {
			writeState(t, dir, blobMark(0), blobRecord{Identity: "id of another version"})
			writeState(t, dir, path.Join(blobDir(0), "a.bin"), "old")
		},
	} {
		t.Run(name, func(t *testing.T) {
			dest := t.TempDir()
			prepare(t, unitDir(dest))
			_, err := runUnitPlan(t, dest, testUnit(b, map[string]*memSource{}))
			require.NoError(t, err)
			assert.Equal(t, want(b), destTree(t, dest))
		})
	}
	t.Run("merged and committing", func(t *testing.T) {
		for _, ph := range []string{phaseMerged, phaseCommitting} {
			dest := t.TempDir()
			dir := unitDir(dest)
			writeState(t, dir, unitPhaseFile, ph)
			writeState(t, dir, unitFilesFile, []treeFile{{"a.bin", 70_000}, {"b.bin", 30_000}})
			require.NoError(t, os.MkdirAll(filepath.Join(dir, unitTreeDir), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, unitTreeDir, "a.bin"), b["a.bin"], 0o644))
			if ph == phaseCommitting { // b.bin was moved before the kill
				require.NoError(t, os.WriteFile(filepath.Join(dest, "b.bin"), b["b.bin"], 0o644))
			} else {
				require.NoError(t, os.WriteFile(filepath.Join(dir, unitTreeDir, "b.bin"), b["b.bin"], 0o644))
			}
			srcs := map[string]*memSource{}
			_, err := runUnitPlan(t, dest, testUnit(b, srcs))
			require.NoError(t, err)
			assert.Equal(t, want(b), destTree(t, dest), ph)
			for _, s := range srcs {
				assert.Zero(t, s.calls.Load(), "%s: a merged tree is committed without fetching", ph)
			}
		}
	})
}

// A unit refused for its content leaves nothing in DEST; the commit never
// writes a nested state folder, and replaces a symlink where the unit has a
// folder instead of writing through it.
func TestUnitRefusedLeavesNothing(t *testing.T) {
	b := blobs()
	dest := t.TempDir()
	u := testUnit(b, map[string]*memSource{})
	u.Blobs = u.Blobs[:1]
	u.Blobs[0].Unpack = func(context.Context, UnpackSource, *os.Root, UnpackOptions) (UnpackStats, error) {
		return UnpackStats{}, errors.New("hostile archive")
	}
	_, err := runUnitPlan(t, dest, u)
	require.ErrorContains(t, err, "hostile archive")
	assert.Empty(t, destTree(t, dest))

	nested := testUnit(b, map[string]*memSource{})
	nested.Blobs = nested.Blobs[:1]
	nested.Blobs[0].Unpack = func(_ context.Context, _ UnpackSource, dir *os.Root, _ UnpackOptions) (UnpackStats, error) {
		return UnpackStats{Files: 1}, dir.MkdirAll("sub/"+StateDir, 0o755)
	}
	_, err = runUnitPlan(t, t.TempDir(), nested)
	require.ErrorIs(t, err, ErrUnsafePath)

	through := t.TempDir()
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(through, "sub")))
	sym := testUnit(b, map[string]*memSource{})
	sym.Blobs = sym.Blobs[:1]
	sym.Blobs[0].Unpack = func(_ context.Context, _ UnpackSource, dir *os.Root, _ UnpackOptions) (UnpackStats, error) {
		require.NoError(t, dir.MkdirAll("sub", 0o755))
		return UnpackStats{Files: 1}, dir.WriteFile("sub/x", []byte("x"), 0o644)
	}
	_, err = runUnitPlan(t, through, sym)
	require.NoError(t, err)
	entries, _ := os.ReadDir(outside)
	assert.Empty(t, entries, "nothing written through the symlink")
	fi, err := os.Lstat(filepath.Join(through, "sub"))
	require.NoError(t, err)
	assert.True(t, fi.IsDir(), "the symlink is replaced by the unit's folder, never followed")
	requireFile(t, filepath.Join(through, "sub", "x"), []byte("x"))
}
