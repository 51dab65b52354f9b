package engine

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// heldPlan is three files (the third multi-chunk and served by third) and,
// with u, a unit, all committed together.
func heldPlan(data [][]byte, third *memSource, units ...Unit) *Plan {
	p := &Plan{Source: "test", CommitTogether: true, Units: units}
	for i, d := range data {
		var src Loader = &memSource{data: d}
		if i == 2 && third != nil {
			src = third
		}
		p.Files = append(p.Files, File{Path: []string{"a.bin", "sub/b.bin", "c.bin"}[i], Size: int64(len(d)),
			Identity: "v1", Expect: []checksum.Value{sumOf(checksum.SHA256, d)}, Source: src})
	}
	return p
}

func threeFiles() [][]byte {
	return [][]byte{randBytes(11, 5000), randBytes(12, 70_000), randBytes(13, 300<<10)}
}

// modelFiles lists what DEST holds outside the state folder.
func modelFiles(t *testing.T, dest string) []string {
	t.Helper()
	var out []string
	for rel, v := range destTree(t, dest) {
		if v != "dir" && !strings.HasPrefix(rel, StateDir) {
			out = append(out, rel)
		}
	}
	return out
}

func TestCommitTogetherAChangedByteInTheLastFileCommitsNoneAndARerunResumes(t *testing.T) {
	dest := t.TempDir()
	data := threeFiles()
	corrupt := append([]byte(nil), data[2]...)
	corrupt[len(corrupt)-1] ^= 1 // the source serves another last byte, on every try
	bad := &memSource{data: corrupt}

	_, err := fastEngine().Run(context.Background(), dest, heldPlan(data, bad))
	require.ErrorContains(t, err, "checksum mismatch for c.bin")
	assert.Empty(t, modelFiles(t, dest), "no file may get its final name when one of the plan fails")
	held, _ := filepath.Glob(filepath.Join(dest, StateDir, "*.held"))
	assert.Len(t, held, 2, "the two verified files wait, held, for a rerun")

	// The source is fixed: a rerun reuses the two held files and fetches
	// only the third.
	srcs := []*memSource{{data: data[0]}, {data: data[1]}, {data: data[2]}}
	p := heldPlan(data, nil)
	for i := range p.Files {
		p.Files[i].Source = srcs[i]
	}
	rep, err := fastEngine().Run(context.Background(), dest, p)
	require.NoError(t, err)
	assert.Zero(t, srcs[0].calls.Load(), "a held file is reused")
	assert.Zero(t, srcs[1].calls.Load(), "a held file is reused")
	assert.NotZero(t, srcs[2].calls.Load())
	status := map[string]Status{}
	for _, f := range rep.Files {
		status[f.Path] = f.Status
	}
	assert.Equal(t, map[string]Status{"a.bin": StatusResumed, "sub/b.bin": StatusResumed, "c.bin": StatusDownloaded}, status)
	requireFile(t, filepath.Join(dest, "a.bin"), data[0])
	requireFile(t, filepath.Join(dest, "sub/b.bin"), data[1])
	requireFile(t, filepath.Join(dest, "c.bin"), data[2])
	_, err = os.Stat(filepath.Join(dest, StateDir))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing is left held after the commit")

	// A refused pull rerun without CommitTogether: its held files are
	// dropped once the run succeeds.
	stale := t.TempDir()
	_, err = fastEngine().Run(context.Background(), stale, heldPlan(data, bad))
	require.Error(t, err)
	require.Equal(t, 2, heldCount(stale))
	plain := heldPlan(data, nil)
	plain.CommitTogether = false
	_, err = fastEngine().Run(context.Background(), stale, plain)
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(stale, StateDir))
	assert.ErrorIs(t, err, os.ErrNotExist, "stale held files are dropped")

	// A third run finds everything present and fetches nothing.
	srcs = []*memSource{{data: data[0]}, {data: data[1]}, {data: data[2]}}
	p = heldPlan(data, nil)
	for i := range p.Files {
		p.Files[i].Source = srcs[i]
	}
	rep, err = fastEngine().Run(context.Background(), dest, p)
	require.NoError(t, err)
	for i, s := range srcs {
		assert.Zero(t, s.calls.Load(), "file %d", i)
	}
	for _, f := range rep.Files {
		assert.Equal(t, StatusPresent, f.Status, f.Path)
	}
}

func TestCommitTogetherAHeldFileChangedBeforeTheRerunIsFetchedAgain(t *testing.T) {
	dest := t.TempDir()
	data := threeFiles()
	data[2] = data[2][:40_000] // one range: one worker waits in failAfter
	bad := failAfter(t, data[2], func() bool { return heldCount(dest) == 2 })
	_, err := fastEngine().Run(context.Background(), dest, heldPlan(data, bad))
	require.ErrorContains(t, err, "unexpected EOF")
	held, _ := filepath.Glob(filepath.Join(dest, StateDir, "*.held"))
	require.Len(t, held, 2)
	for _, h := range held { // someone rewrites the held copies in place
		b, err := os.ReadFile(h)
		require.NoError(t, err)
		b[0] ^= 0xff
		require.NoError(t, os.WriteFile(h, b, 0o644))
	}
	rep, err := fastEngine().Run(context.Background(), dest, heldPlan(data, nil))
	require.NoError(t, err)
	for _, f := range rep.Files {
		assert.Equal(t, StatusDownloaded, f.Status, "%s: a changed held file is not reused", f.Path)
	}
	requireFile(t, filepath.Join(dest, "a.bin"), data[0])
	requireFile(t, filepath.Join(dest, "sub/b.bin"), data[1])
}

func TestCommitTogetherAFailingUnitCommitsNoFileAndAFailingFileNoUnit(t *testing.T) {
	data := threeFiles()
	b := blobs()

	// The unit's check fails: the three verified files stay held.
	dest := t.TempDir()
	u := testUnit(b, map[string]*memSource{})
	u.Check = func(*os.Root, []UnpackStats) error { return Permanent(io.ErrUnexpectedEOF) }
	_, err := fastEngine().Run(context.Background(), dest, heldPlan(data, nil, u))
	require.Error(t, err)
	assert.Empty(t, modelFiles(t, dest))

	// A file fails: the unit, merged and checked, is not committed, and a
	// rerun commits it without fetching its blobs again.
	dest = t.TempDir()
	data[2] = data[2][:40_000] // one range: one worker waits in failAfter
	bad := failAfter(t, data[2], func() bool {
		ph, _ := os.ReadFile(filepath.Join(dest, StateDir, "unit-"+safeID("test unit v1"), unitPhaseFile))
		return heldCount(dest) == 2 && string(ph) == `"merged"`
	})
	srcs := map[string]*memSource{}
	_, err = fastEngine().Run(context.Background(), dest, heldPlan(data, bad, testUnit(b, srcs)))
	require.Error(t, err)
	assert.Empty(t, modelFiles(t, dest), "the unit's tree must wait for the files")

	again := map[string]*memSource{}
	rep, err := fastEngine().Run(context.Background(), dest, heldPlan(data, nil, testUnit(b, again)))
	require.NoError(t, err)
	for n, s := range again {
		assert.Zero(t, s.calls.Load(), "blob %s was verified and merged by the first run", n)
	}
	assert.Len(t, rep.Files, 5)
	tree := destTree(t, dest)
	for n, d := range b {
		assert.Equal(t, string(d), tree[n])
	}
	assert.Equal(t, string(data[2]), tree["c.bin"])
}

func TestCommitTogetherThroughTheNodeCache(t *testing.T) {
	cache, err := OpenCache(t.TempDir(), 0)
	require.NoError(t, err)
	defer cache.Close()
	data := threeFiles()
	dest := t.TempDir()
	data[2] = data[2][:40_000] // one range: one worker waits in failAfter
	bad := failAfter(t, data[2], func() bool { return heldCount(dest) == 2 })
	_, err = fastEngine(WithCache(cache)).Run(context.Background(), dest, heldPlan(data, bad))
	require.Error(t, err)
	assert.Empty(t, modelFiles(t, dest), "files materialised from the cache wait too")

	// Another DEST: the two entries are hits, the third is fetched; all
	// three appear together.
	dest2 := t.TempDir()
	srcs := []*memSource{{data: data[0]}, {data: data[1]}, {data: data[2]}}
	p := heldPlan(data, nil)
	for i := range p.Files {
		p.Files[i].Source = srcs[i]
	}
	rep, err := fastEngine(WithCache(cache)).Run(context.Background(), dest2, p)
	require.NoError(t, err)
	assert.Zero(t, srcs[0].calls.Load()+srcs[1].calls.Load(), "cache hits")
	requireFile(t, filepath.Join(dest2, "a.bin"), data[0])
	requireFile(t, filepath.Join(dest2, "sub/b.bin"), data[1])
	requireFile(t, filepath.Join(dest2, "c.bin"), data[2])
	assert.Len(t, rep.Files, 3)
	_, err = os.Stat(filepath.Join(dest2, StateDir))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// failAfter is a source of data that fails every read, permanently, once
// ready holds (bounded wait): the other files of the plan got held first.
func failAfter(t *testing.T, data []byte, ready func() bool) *memSource {
	return &memSource{data: data, fault: func(int64, int64, int64) (io.Reader, error) {
		deadline := time.Now().Add(10 * time.Second)
		for !ready() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if !ready() {
			t.Error("the other files were not held in time")
		}
		return nil, Permanent(io.ErrUnexpectedEOF)
	}}
}

func heldCount(dest string) int {
	held, _ := filepath.Glob(filepath.Join(dest, StateDir, "*.held"))
	return len(held)
}
