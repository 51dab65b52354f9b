package extract

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"
)

// FuzzTar feeds arbitrary bytes to Tar (as a modelcar layer would be read,
// and as a plain archive) and checks nothing lands outside the destination
// and no symlink in it resolves outside. Seeds: the hostile cases below and
// testdata/fuzz/FuzzTar.
//
//	go test -run '^$' -fuzz FuzzTar -fuzztime 60s ./pkg/extract
func FuzzTar(f *testing.F) {
	for _, ents := range [][]ent{
		{file("models/a", "a"), symlinkEnt("models/l", "a"), hardlinkEnt("models/h", "models/a")},
		{symlinkEnt("models/l", "../../secret"), file("models/l/x", "x")},
		{dirEnt("models/d"), symlinkEnt("models/d/up", ".."), file("models/d/up/x", "x")},
		{file("models/.wh..wh..opq", ""), file(".wh.models", ""), file("models/d/.wh.x", "")},
		{hardlinkEnt("models/h", "../secret"), ent{name: "models/dev", typ: tar.TypeChar}},
		{symlinkEnt("models/abs", "/models/a"), symlinkEnt("models/abs2", "/etc/passwd")},
	} {
		f.Add(mkTar(f, ents...))
	}
	f.Add(paxSparseTar(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opts := range []Options{
			{Prefix: "models", Whiteouts: true, MaxBytes: 1 << 20, MaxEntries: 1000},
			{KeepWhiteouts: true, MaxBytes: 1 << 20, MaxEntries: 1000, FreeBytes: func() int64 { return 4096 }},
		} {
			dst, root := newDst(t)
			st, err := Tar(context.Background(), bytes.NewReader(data), root, opts)
			assertNoEscape(t, dst)
			if err == nil && st.Bytes > opts.MaxBytes {
				t.Fatalf("wrote %d bytes past the %d-byte limit", st.Bytes, opts.MaxBytes)
			}
			if opts.FreeBytes != nil && st.Bytes > 4096*int64(st.Files) {
				t.Fatalf("wrote %d bytes in %d files with 4096 bytes free", st.Bytes, st.Files)
			}
		}
	})
}
