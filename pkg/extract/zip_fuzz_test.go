package extract

import (
	"bytes"
	"context"
	"io/fs"
	"testing"
)

// FuzzZip feeds arbitrary bytes to Zip (an archive from an http(s) source
// or an oras layer) and checks nothing lands outside the destination and
// no symlink in it resolves outside, whatever the entries say: zip slip
// names, absolute paths, symlink entries pointing up, setuid modes, and
// sizes that lie. Seeds: the hostile archives below.
//
//	go test -run '^$' -fuzz '^FuzzZip$' -fuzztime 60s ./pkg/extract
func FuzzZip(f *testing.F) {
	for _, ents := range [][]zent{
		{{name: "models/a.bin", body: "a"}, {name: "models/sub/b.bin", body: "b"}},
		{{name: "../../evil", body: "x"}, {name: "/abs/evil", body: "x"}, {name: `..\..\win`, body: "x"}},
		{{name: "models/link", body: "../../secret", mode: fs.ModeSymlink | 0o777}, {name: "models/link/x", body: "x"}},
		{{name: "models/suid", body: "x", mode: fs.ModeSetuid | 0o755}, {name: "models/dev", mode: fs.ModeDevice | 0o600}},
		{{name: "models/d/", mode: fs.ModeDir | 0o755}, {name: "models/d/../../../x", body: "x"}},
		{{name: "a\x00b", body: "x"}, {name: "new\nline", body: "x"}},
	} {
		f.Add(mkZip(f, ents...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opts := range []Options{
			{Prefix: "models", MaxBytes: 1 << 20, MaxEntries: 1000},
			{MaxBytes: 1 << 20, MaxEntries: 1000},
		} {
			dst, root := newDst(t)
			st, err := Zip(context.Background(), bytes.NewReader(data), int64(len(data)), root, opts)
			assertNoEscape(t, dst)
			if err == nil && st.Bytes > opts.MaxBytes {
				t.Fatalf("wrote %d bytes past the %d-byte limit", st.Bytes, opts.MaxBytes)
			}
		}
	})
}
