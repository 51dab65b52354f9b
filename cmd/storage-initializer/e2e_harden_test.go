package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// End-to-end tests of issue 12's hardening through the binary: a sparse tar
// bomb, an http file without validators, artifact files named like
// whiteouts.

// harde2eSparseTar builds by hand (archive/tar cannot write sparse files) a
// PAX GNU sparse 1.0 entry with 512 real bytes and a logical size of 1 TiB.
func harde2eSparseTar(t *testing.T) []byte {
	t.Helper()
	var out bytes.Buffer
	block := func(name string, typ byte, size int) {
		var h [512]byte
		copy(h[0:], name)
		copy(h[100:], "0000644\x00")
		copy(h[108:], "0000000\x00")
		copy(h[116:], "0000000\x00")
		copy(h[124:], fmt.Sprintf("%011o\x00", size))
		copy(h[136:], "00000000000\x00")
		h[156] = typ
		copy(h[257:], "ustar\x0000")
		copy(h[148:], "        ")
		sum := 0
		for _, b := range h {
			sum += int(b)
		}
		copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
		out.Write(h[:])
	}
	pad := func() {
		if n := out.Len() % 512; n != 0 {
			out.Write(make([]byte, 512-n))
		}
	}
	rec := func(k, v string) string {
		line := " " + k + "=" + v + "\n"
		n := len(line)
		for len(fmt.Sprint(n))+len(line) != n {
			n = len(fmt.Sprint(n)) + len(line)
		}
		return fmt.Sprint(n) + line
	}
	pax := rec("GNU.sparse.major", "1") + rec("GNU.sparse.minor", "0") +
		rec("GNU.sparse.name", "huge.bin") + rec("GNU.sparse.realsize", fmt.Sprint(int64(1)<<40))
	block("PaxHeaders/huge.bin", tar.TypeXHeader, len(pax))
	out.WriteString(pax)
	pad()
	block("GNUSparseFile.0/huge.bin", tar.TypeReg, 1024)
	out.WriteString("1\n0\n512\n")
	pad()
	out.Write(bytes.Repeat([]byte("d"), 512))
	out.Write(make([]byte, 1024))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(out.Bytes())
	require.NoError(t, zw.Close())
	return gz.Bytes()
}

// TestE2EHardenSparseTarRefused: a 2 KiB archive claiming a 1 TiB sparse
// file fails at once with a one-line reason, writing nothing of it.
func TestE2EHardenSparseTarRefused(t *testing.T) {
	pvce2eRequireScheme(t, "http://registered.invalid/")
	srv := httpe2eServe(t, map[string][]byte{"/sparse.tar.gz": harde2eSparseTar(t)}, nil)
	dest := filepath.Join(t.TempDir(), "dest")
	termLog := filepath.Join(t.TempDir(), "termination-log")
	require.NoError(t, os.WriteFile(termLog, nil, 0o644))
	start := time.Now()
	_, stderr, code := runSI(t, nil, "--termination-log", termLog, srv.URL+"/sparse.tar.gz", dest)
	require.Equal(t, 1, code, stderr)
	assert.Less(t, time.Since(start), time.Minute)
	reason, _ := os.ReadFile(termLog)
	assert.Contains(t, string(reason), "huge.bin")
	assert.Contains(t, string(reason), "stored sparse")
	var blocks int64
	_ = filepath.Walk(dest, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil {
			blocks += fi.Sys().(*syscall.Stat_t).Blocks
		}
		return nil
	})
	assert.Less(t, blocks, int64(256), "DEST holds %d blocks", blocks)
	_, err := os.Stat(filepath.Join(dest, "huge.bin"))
	assert.True(t, os.IsNotExist(err), "huge.bin committed")
}

// TestE2EHardenNoValidatorOneStream: a server that serves ranges but gives
// neither ETag nor Last-Modified is read with one whole GET (parts or a
// resume could splice two versions); with #sha256 it is read in ranges.
func TestE2EHardenNoValidatorOneStream(t *testing.T) {
	pvce2eRequireScheme(t, "http://registered.invalid/")
	body := pvce2eBytes(3<<20 + 5)
	var ranged, whole atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			if r.Header.Get("Range") != "" {
				ranged.Add(1)
			} else {
				whole.Add(1)
			}
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body)) // no validator
	}))
	t.Cleanup(srv.Close)

	dest := t.TempDir()
	_, stderr, code := runSI(t, nil, "--chunk-size", "1MiB", srv.URL+"/m/w.bin", dest)
	require.Equal(t, 0, code, stderr)
	got, err := os.ReadFile(filepath.Join(dest, "w.bin"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(body, got))
	assert.Zero(t, ranged.Load(), "no ranged GET without a validator")
	assert.Equal(t, int32(1), whole.Load())

	ranged.Store(0)
	dest = t.TempDir()
	_, stderr, code = runSI(t, nil, "--chunk-size", "1MiB", srv.URL+"/m/w.bin#sha256="+httpe2eSHA(body), dest)
	require.Equal(t, 0, code, stderr)
	assert.GreaterOrEqual(t, ranged.Load(), int32(4), "#sha256 vouches for the file: ranges")
}

// TestE2EHardenArtifactWhiteoutNames pushes with oras an artifact holding
// files named .wh.model.onnx and .wh..wh..opq (a file and a folder tar):
// they are ordinary files of an artifact and delete nothing.
func TestE2EHardenArtifactWhiteoutNames(t *testing.T) {
	s := testenv.Registry(t)
	oras := oci2eTool(t, "oras")
	work := t.TempDir()
	files := map[string][]byte{
		"model.onnx":           []byte("onnx"),
		".wh.model.onnx":       []byte("not a whiteout"),
		"tok/vocab.json":       []byte(`{"a":0}`),
		"tok/.wh..wh..opq":     nil,
		"tok/.wh.vocab.json":   []byte("x"),
		"extra/.wh..wh..opq":   []byte("y"),
		"extra/tokenizer.json": []byte("{}"),
	}
	for name, b := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(work, filepath.Dir(name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(work, name), b, 0o644))
	}
	ref := s.Plain + "/" + oci2eRepo(t) + ":v1"
	cmd := exec.Command(oras, "push", "--plain-http", ref, "model.onnx", ".wh.model.onnx", "tok", "extra")
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "oras push: %s", out)

	dest := filepath.Join(t.TempDir(), "m")
	_, stderr, code := runSI(t, nil, "oci://"+ref, dest)
	require.Equal(t, 0, code, stderr)
	want := map[string][]byte{}
	for name, b := range files {
		if b == nil {
			b = []byte{}
		}
		want[name] = b
	}
	got := finalFiles(t, dest)
	for name, b := range got {
		if b == nil {
			got[name] = []byte{}
		}
	}
	assert.Equal(t, want, got)
}
