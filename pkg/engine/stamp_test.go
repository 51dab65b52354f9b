package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// A rerun trusts a committed file's stamp only while the file keeps the
// inode, mtime and ctime it was sealed with: bytes changed in place (even
// with the mtime set back) are re-verified, and fetched again when wrong.
func TestStampIsBoundToInodeMtimeAndCtime(t *testing.T) {
	for name, expect := range map[string]func([]byte) []checksum.Value{
		"sha256":    func(b []byte) []checksum.Value { return []checksum.Value{sumOf(checksum.SHA256, b)} },
		"size only": func([]byte) []checksum.Value { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			data := randBytes(31, 20_000)
			dest := t.TempDir()
			fetch := func() (*Report, *memSource) {
				src := &memSource{data: data}
				rep, err := fastEngine().Fetch(context.Background(), dest, []File{{Path: "w.bin", Size: int64(len(data)),
					Identity: "v1", Expect: expect(data), Source: src}})
				require.NoError(t, err)
				return rep, src
			}
			fetch()
			rep, src := fetch()
			require.Equal(t, StatusPresent, rep.Files[0].Status, "an untouched file is kept by its stamp")
			assert.Zero(t, src.calls.Load())

			p := filepath.Join(dest, "w.bin")
			fi, err := os.Stat(p)
			require.NoError(t, err)
			time.Sleep(sealWindow + 100*time.Millisecond)
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte("evil"), 100)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			require.NoError(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()), "the mtime set back: only ctime tells")

			rep, src = fetch()
			assert.Equal(t, StatusDownloaded, rep.Files[0].Status, "a file changed in place is not trusted")
			assert.NotZero(t, src.calls.Load())
			requireFile(t, p, data)
		})
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

// A file whose preallocation fails (a full disk: the pre-flight passed,
// another pod took the space since) closes its temp file and journal: a
// failure must not leak descriptors, two per file before. The full disk is
// simulated (really filling the disk would fail every other test running).
func TestFullDiskDuringPreallocationLeaksNoDescriptor(t *testing.T) {
	dest := t.TempDir()
	var files []File
	for _, name := range []string{"a", "b", "c"} {
		data := randBytes(uint64(len(name)), 3<<20)
		files = append(files, File{Path: name, Size: int64(len(data)), Identity: "v1", Source: &memSource{data: data}})
	}
	e := New(WithConcurrency(2), WithChunkSize(1<<20))
	e.alloc = func(*os.File, int64) error {
		return Permanent(fmt.Errorf("no space left to allocate: %w", unix.ENOSPC))
	}
	before := openFDs(t)
	_, err := e.Fetch(context.Background(), dest, files)
	require.ErrorContains(t, err, "no space left")
	assert.Equal(t, before, openFDs(t), "every descriptor opened for the failed files is closed")
}
