// Package signtest makes real OpenSSF model-signing v1.0 bundles in tests: the
// in-toto statement over a model folder (files or shards serialization, sha256,
// ignore_paths), a DSSE envelope signed with a fresh ECDSA key, and the Sigstore
// bundle around it, in the shapes the reference implementation writes for its key
// and certificate methods (sigstore/model-transparency _signing/sign_ec_key.py,
// sign_certificate.py). Tests of the engine and of the binary sign local folders
// with it; pkg/modelsig verifies them.
package signtest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The identifiers of a v1.0 model signature.
const (
	PayloadType   = "application/vnd.in-toto+json"
	StatementType = "https://in-toto.io/Statement/v1"
	PredicateType = "https://model_signing/signature/v1.0"
	BundleType    = "application/vnd.dev.sigstore.bundle.v0.3+json"
	SignatureName = "model.sig"
)

// Options says how to serialize the model.
type Options struct {
	// ShardSize > 0 selects the shards serialization with that shard size; 0 is
	// the files serialization.
	ShardSize int64
	// IgnorePaths are left out of the statement and recorded in its ignore_paths
	// (slash paths relative to the model root; a directory covers its tree). The
	// reference's defaults (model.sig and the git paths) are always added.
	IgnorePaths []string
	// ModelName is the subject's name; "" = the folder's base name or "model".
	ModelName string
	// Mutate, when set, edits the statement (as decoded JSON) before it is signed:
	// tests use it to sign an inconsistent or hostile statement.
	Mutate func(st map[string]any)

	// Certificate mode only.
	// Expired makes the leaf certificate's validity end a day ago.
	Expired bool
	// NoSigningUsage gives the leaf neither digitalSignature nor codeSigning.
	NoSigningUsage bool
}

var defaultIgnores = []string{SignatureName, ".git", ".gitattributes", ".github", ".gitignore"}

// Statement returns the v1.0 in-toto statement of model: a folder path (string) or
// its files (map of slash path → content).
func Statement(t testing.TB, model any, o Options) []byte {
	t.Helper()
	files, name := readModel(t, model)
	if o.ModelName != "" {
		name = o.ModelName
	}
	ignores := append(append([]string{}, o.IgnorePaths...), defaultIgnores...)
	type res struct {
		key              []string // path components, then the range: the reference's sort key
		start, end       int64
		name, digestHexa string
	}
	var rs []res
	for p, data := range files {
		if ignored(p, ignores) {
			continue
		}
		comps := strings.Split(p, "/")
		if o.ShardSize <= 0 {
			d := sha256.Sum256(data)
			rs = append(rs, res{key: comps, name: p, digestHexa: hex.EncodeToString(d[:])})
			continue
		}
		for start := int64(0); start < int64(len(data)); start += o.ShardSize {
			end := min(start+o.ShardSize, int64(len(data)))
			d := sha256.Sum256(data[start:end])
			rs = append(rs, res{key: comps, start: start, end: end,
				name: fmt.Sprintf("%s:%d:%d", p, start, end), digestHexa: hex.EncodeToString(d[:])})
		}
	}
	// The reference orders resources by PurePosixPath (component-wise), then range.
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		for k := 0; k < len(a.key) && k < len(b.key); k++ {
			if a.key[k] != b.key[k] {
				return a.key[k] < b.key[k]
			}
		}
		if len(a.key) != len(b.key) {
			return len(a.key) < len(b.key)
		}
		return a.start < b.start
	})
	root := sha256.New()
	resources := []any{}
	for _, r := range rs {
		d, _ := hex.DecodeString(r.digestHexa)
		root.Write(d)
		resources = append(resources, map[string]any{"name": r.name, "algorithm": "sha256", "digest": r.digestHexa})
	}
	ser := map[string]any{"method": "files", "hash_type": "sha256", "allow_symlinks": false, "ignore_paths": ignores}
	if o.ShardSize > 0 {
		ser["method"], ser["shard_size"] = "shards", o.ShardSize
	}
	st := map[string]any{
		"_type":         StatementType,
		"subject":       []any{map[string]any{"name": name, "digest": map[string]any{"sha256": hex.EncodeToString(root.Sum(nil))}}},
		"predicateType": PredicateType,
		"predicate":     map[string]any{"serialization": ser, "resources": resources},
	}
	if o.Mutate != nil {
		// Round-trip so the hook sees plain JSON values.
		b, _ := json.Marshal(st)
		st = map[string]any{}
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		o.Mutate(st)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ignored(p string, ignores []string) bool {
	for _, i := range ignores {
		i = path.Clean(i)
		if p == i || strings.HasPrefix(p, i+"/") {
			return true
		}
	}
	return false
}

func readModel(t testing.TB, model any) (map[string][]byte, string) {
	t.Helper()
	switch m := model.(type) {
	case map[string][]byte:
		return m, "model"
	case string:
		files := map[string][]byte{}
		err := filepath.WalkDir(m, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, err := filepath.Rel(m, p)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(p)
			files[filepath.ToSlash(rel)] = data
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return files, filepath.Base(filepath.Clean(m))
	}
	t.Fatalf("signtest: model is a folder path or map[string][]byte, not %T", model)
	return nil, ""
}
