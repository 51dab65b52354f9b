package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
