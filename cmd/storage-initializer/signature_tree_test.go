package main

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/modelsig"
)

func TestListTreeSymlinksAndHashTree(t *testing.T) {
	dir := t.TempDir()
	data := []byte("0123456789")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "w.bin"), data, 0o644))
	require.NoError(t, os.Symlink("w.bin", filepath.Join(dir, "alias.bin")))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".storage-initializer"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".storage-initializer", "x.held"), data, 0o644))
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	defer root.Close()

	_, err = listTree(root, false)
	assert.ErrorContains(t, err, "alias.bin is a symlink and the signature does not allow symlinks")
	got, err := listTree(root, true)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"w.bin": 10, "alias.bin": 10}, got, "the state folder is not the model")

	sum := func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
	m := &modelsig.Manifest{Files: map[string][]modelsig.Segment{
		"w.bin": {{Start: 0, End: 4, SHA256: sum(data[:4])}, {Start: 4, End: 10, SHA256: sum(data[4:])}},
	}}
	require.NoError(t, hashTree(context.Background(), root, m, []string{"w.bin", "alias.bin"}))
	m.Files["w.bin"][1].SHA256 = sum([]byte("other"))
	assert.ErrorContains(t, hashTree(context.Background(), root, m, []string{"w.bin"}), "w.bin: sha256")
	m.Files["w.bin"] = []modelsig.Segment{{Start: 0, End: -1, SHA256: sum(data)}}
	require.NoError(t, hashTree(context.Background(), root, m, []string{"w.bin"}), "End -1: the whole file")
}
