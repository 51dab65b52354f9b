package extract

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func TestDecompress(t *testing.T) {
	payload := bytes.Repeat([]byte("model weights "), 5000)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(payload[:100])
	zw.Close()
	zw = gzip.NewWriter(&gz) // a second gzip member, as pigz and concatenation produce
	zw.Write(payload[100:])
	zw.Close()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll(payload, nil)
	tarball := mkTar(t, file("BZh91AY", "not bzip2")) // a plain tar whose first name looks like bzip2

	for _, tc := range []struct {
		in   []byte
		want string
		out  []byte
	}{
		{gz.Bytes(), "gzip", payload},
		{zs, "zstd", payload},
		{payload, "none", payload},
		{tarball, "none", tarball},
		{nil, "none", nil},
	} {
		rc, format, err := Decompress(bytes.NewReader(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.want, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || format != tc.want || !bytes.Equal(got, tc.out) {
			t.Fatalf("%s: format %q, %d bytes, err %v", tc.want, format, len(got), err)
		}
	}
	if _, _, err := Decompress(bytes.NewReader([]byte("\xfd7zXZ\x00rest"))); err == nil || !strings.Contains(err.Error(), "xz") {
		t.Fatalf("xz: %v", err)
	}
	// A corrupted gzip stream fails on read, not silently.
	bad := bytes.Clone(gz.Bytes())
	bad[len(bad)-6] ^= 0xff
	rc, _, err := Decompress(bytes.NewReader(bad))
	if err == nil {
		_, err = io.ReadAll(rc)
	}
	if err == nil {
		t.Fatal("corrupted gzip read without error")
	}
}
