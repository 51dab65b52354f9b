package modelsig

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storage-initializer/storage-initializer/internal/signtest"
)

// FuzzParseStatement: whatever a signer put in the statement, parsing does not
// panic, and a manifest it accepts names only clean relative paths whose segments
// tile each file.
func FuzzParseStatement(f *testing.F) {
	matches, _ := filepath.Glob(filepath.Join(fixtures, "v*", "model.sig"))
	for _, p := range matches {
		var doc struct {
			DSSEEnvelope struct{ Payload string } `json:"dsseEnvelope"`
		}
		b, _ := os.ReadFile(p)
		if json.Unmarshal(b, &doc) == nil {
			if raw, err := base64.StdEncoding.DecodeString(doc.DSSEEnvelope.Payload); err == nil {
				f.Add(raw)
			}
		}
	}
	f.Add(signtest.Statement(f, model(), signtest.Options{ShardSize: 7}))
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := parseStatement(payload)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "signature: ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error not one line: %q", err)
			}
			return
		}
		for name, segs := range m.Files {
			if name != "." && checkRelPath(name) != nil {
				t.Fatalf("accepted name %q", name)
			}
			var at int64
			for _, s := range segs {
				if m.Serialization == "shards" && s.Start != at {
					t.Fatalf("%s: gap at %d", name, at)
				}
				at = s.End
			}
		}
	})
}
