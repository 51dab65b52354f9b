package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// A rerun keeps a committed file only while it is the file that was
// verified: bytes changed in place with the same size and the mtime set
// back are noticed (the stamp is bound to inode, mtime and ctime), the file
// is fetched again and restored — for a checksummed object and for one
// that offers only a size.
func TestE2ERerunNoticesAFileChangedInPlace(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	crc := testenv.Random(300_000, 7)
	plain := testenv.Random(200_000, 8)
	m.Put(t, bucket, "m/crc.bin", crc, types.ChecksumAlgorithmCrc64nvme)
	m.PutMultipart(t, bucket, "m/plain.bin", [][]byte{plain}, "", "") // no checksum: size only
	dest := t.TempDir()
	sum := filepath.Join(t.TempDir(), "summary.json")
	run := func() s3e2eSummary {
		_, stderr, code := runSI(t, m.Env(), "--summary-json", sum, "s3://"+bucket+"/m", dest)
		require.Equal(t, 0, code, stderr)
		return s3e2eReadSummary(t, sum)
	}
	run()
	status := func(s s3e2eSummary) map[string]string {
		out := map[string]string{}
		for _, f := range s.Files {
			out[f.Path] = f.Status
		}
		return out
	}
	assert.Equal(t, map[string]string{"crc.bin": "present", "plain.bin": "present"}, status(run()))

	time.Sleep(time.Second) // past the seal window: a later ctime is a change
	for _, name := range []string{"crc.bin", "plain.bin"} {
		p := filepath.Join(dest, name)
		fi, err := os.Stat(p)
		require.NoError(t, err)
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		require.NoError(t, err)
		_, err = f.WriteAt([]byte("tampered"), 1000)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		require.NoError(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
	}
	assert.Equal(t, map[string]string{"crc.bin": "downloaded", "plain.bin": "downloaded"}, status(run()))
	s3e2eAssertTree(t, dest, map[string][]byte{"crc.bin": crc, "plain.bin": plain})
}

// A server (or a proxy) that advertises byte ranges and ignores them is
// read in one stream, verified, instead of failing the download.
func TestE2EServerIgnoringRangesIsReadInOneStream(t *testing.T) {
	body := testenv.Random(3<<20, 9)
	var gets int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Accept-Ranges", "bytes")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodGet {
			gets++
			_, _ = w.Write(body)
		}
	}))
	defer srv.Close()
	dest := t.TempDir()
	digest := sha256.Sum256(body)
	_, stderr, code := runSI(t, nil, "--chunk-size", "1MiB", srv.URL+"/w.bin#sha256="+hex.EncodeToString(digest[:]), dest)
	require.Equal(t, 0, code, stderr)
	s3e2eAssertTree(t, dest, map[string][]byte{"w.bin": body})
	assert.Equal(t, 2, gets, "the range check, then one whole GET (not one per chunk)")
	assert.Contains(t, stderr, "sent the whole file", "the log says why it is one stream")
}
