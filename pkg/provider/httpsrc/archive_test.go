package httpsrc

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// entries is the content of every test archive.
var entries = map[string][]byte{
	"config.json":       []byte(`{"a":1}`),
	"weights/part1.bin": payload(2*chunk + 3), // the archive spans several chunks
}

func tarOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}))
		_, err := tw.Write(files[name])
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func gzipOf(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func zstdOf(t *testing.T, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write(files[name])
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func sortedKeys(m map[string][]byte) []string { return slices.Sorted(maps.Keys(m)) }

func TestArchivesAreExtractedAndRemoved(t *testing.T) {
	plain := tarOf(t, entries)
	archives := map[string][]byte{
		"model.tar":     plain,
		"model.tar.gz":  gzipOf(t, plain),
		"model.tgz":     gzipOf(t, plain),
		"model.tar.zst": zstdOf(t, plain),
		"model.zip":     zipOf(t, entries),
		"download":      gzipOf(t, plain), // no extension: sniffed
		"bundle":        zipOf(t, entries),
	}
	dir := t.TempDir()
	for name, b := range archives {
		writeFile(t, dir, name, b)
	}
	srv, _ := fileServer(t, dir)
	for name := range archives {
		t.Run(name, func(t *testing.T) {
			dest := t.TempDir()
			rep, err := newP(newEngine()).Fetch(t.Context(), srv.URL+"/"+name, dest)
			require.NoError(t, err)
			assert.Equal(t, entries, readDest(t, dest), "contents extracted, archive removed")
			assert.ElementsMatch(t, []string{"config.json", "weights/part1.bin"}, pathsOf(rep))
			assert.Equal(t, "from "+name+" (size only)", rep.Files[0].Verified)
			assert.Equal(t, int64(len(archives[name])), rep.Fetched)
		})
	}
}

func pathsOf(r *engine.Report) []string {
	var out []string
	for _, f := range r.Files {
		out = append(out, f.Path)
	}
	return out
}

func TestModelFormatsThatAreZipInsideAreKept(t *testing.T) {
	dir := t.TempDir()
	pt := zipOf(t, map[string][]byte{"archive/data.pkl": []byte("pickle")}) // what torch.save writes
	writeFile(t, dir, "model.pt", pt)
	srv, _ := fileServer(t, dir)
	dest := t.TempDir()
	_, err := newP(newEngine()).Fetch(t.Context(), srv.URL+"/model.pt", dest)
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"model.pt": pt}, readDest(t, dest))
}

func TestArchiveThroughOneStreamWithPatterns(t *testing.T) {
	body := gzipOf(t, tarOf(t, entries))
	srv, _ := noRangeServer(t, body)
	dest := t.TempDir()
	keep := func(rel string) bool { return filepath.Ext(rel) == ".json" }
	rep, err := newP(newEngine(engine.WithFilter(keep))).Fetch(t.Context(), srv.URL+"/model.tar.gz#sha256="+hexSHA(body), dest)
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"config.json": entries["config.json"]}, readDest(t, dest),
		"patterns apply to the archive's contents, not its name")
	assert.Equal(t, "from model.tar.gz (sha256)", rep.Files[0].Verified)
}

func TestHostileArchiveIsRefusedAndNothingIsCommitted(t *testing.T) {
	evil := tarOf(t, map[string][]byte{"ok.txt": []byte("fine"), "../../escape.txt": []byte("evil")})
	dir := t.TempDir()
	writeFile(t, dir, "evil.tar", evil)
	srv, _ := fileServer(t, dir)
	base := t.TempDir()
	dest := filepath.Join(base, "dest")
	_, err := newP(newEngine()).Fetch(t.Context(), srv.URL+"/evil.tar", dest)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "extract evil.tar")
	_, err = os.Stat(filepath.Join(base, "escape.txt"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	got := readDest(t, dest)
	assert.NotContains(t, got, "ok.txt", "nothing extracted is committed")
}
