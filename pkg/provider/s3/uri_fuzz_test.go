package s3

import (
	"path"
	"strings"
	"testing"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// FuzzParseURI checks that any accepted s3:// URI has a valid bucket, a key
// without leading slashes, a folder prefix that is empty or ends in one
// slash, and renders back to a URI that parses to the same location.
//
//	go test -run '^$' -fuzz '^FuzzParseURI$' -fuzztime 60s ./pkg/provider/s3
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"s3://b/model", "s3://b/model/", "s3://b", "s3://b//model", "S3://My_Bucket.v2/x",
		"s3://b/we?ird#key%20", "s3://", "s3:///key", "s3://b@d/k", "s3://host:90/k", "s3://b/../../etc", "s3://b/a\x00b",
		"s3://b/\n", "gs://b/k", "s3:/b/k", "s3://" + strings.Repeat("b", 300) + "/k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		loc, err := parseURI(src)
		if err != nil {
			return
		}
		if checkBucket(loc.Bucket) != nil {
			t.Fatalf("parseURI(%q) accepted bucket %q", src, loc.Bucket)
		}
		if strings.HasPrefix(loc.Key, "/") {
			t.Fatalf("parseURI(%q): key %q keeps a leading slash", src, loc.Key)
		}
		if fp := loc.folderPrefix(); fp != "" && (!strings.HasSuffix(fp, "/") || strings.HasPrefix(fp, "/")) {
			t.Fatalf("parseURI(%q): folder prefix %q", src, fp)
		}
		again, err := parseURI(loc.String())
		if err != nil || again != loc {
			t.Fatalf("parseURI(%q) = %+v renders as %q, which parses to %+v, %v", src, loc, loc.String(), again, err)
		}
	})
}

// FuzzKeyToRel checks the S3 key → DEST path mapping with hostile keys
// ("..", absolute remainders, NUL, the state folder): an accepted key maps
// to a clean path inside DEST, and the error, when there is one, is
// permanent (retrying cannot make a key safe) and names the key.
//
//	go test -run '^$' -fuzz '^FuzzKeyToRel$' -fuzztime 60s ./pkg/provider/s3
func FuzzKeyToRel(f *testing.F) {
	for _, s := range [][2]string{{"model/", "model/w.bin"}, {"model/", "model/a/b/c"}, {"model/", "model/../../etc/passwd"},
		{"model/", "model//etc/passwd"}, {"", "/abs"}, {"", "a/./b"}, {"m/", "m/.storage-initializer/x"}, {"m/", "m/a\x00b"},
		{"m/", "m/"}, {"m/", "m/.."}, {"m/", "m/a/../b"}, {"", "..\\..\\x"}, {"m/", "other/x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, prefix, key string) {
		rel, err := keyToRel(prefix, key)
		if err != nil {
			if !engine.IsPermanent(err) {
				t.Fatalf("keyToRel(%q, %q): error is retryable: %v", prefix, key, err)
			}
			if !strings.Contains(err.Error(), "cannot be saved inside DEST") {
				t.Fatalf("keyToRel(%q, %q): unclear error %v", prefix, key, err)
			}
			return
		}
		if clean, err := engine.CleanRel(rel); err != nil || clean != rel || path.IsAbs(rel) {
			t.Fatalf("keyToRel(%q, %q) = %q is not a clean path inside DEST (%q, %v)", prefix, key, rel, clean, err)
		}
		for _, seg := range strings.Split(rel, "/") {
			if seg == ".." || seg == "." || seg == "" {
				t.Fatalf("keyToRel(%q, %q) = %q has segment %q", prefix, key, rel, seg)
			}
		}
	})
}
