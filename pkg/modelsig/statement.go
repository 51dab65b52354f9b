package modelsig

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

// The in-toto and model-signing identifiers the reference implementation writes
// (src/model_signing/_signing/signing.py).
const (
	inTotoPayloadType  = "application/vnd.in-toto+json"
	inTotoStatementV1  = "https://in-toto.io/Statement/v1"
	predicateV1        = "https://model_signing/signature/v1.0"
	predicateV01Compat = "https://model_signing/Digests/v0.1"
)

// maxResources bounds the statement so a hostile bundle cannot make us build a huge
// map: 16 MiB of JSON holds at most ~100k resources of the shortest legal shape.
const maxResources = 1 << 20

type statementJSON struct {
	Type          string          `json:"_type"`
	Subject       []subjectJSON   `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type subjectJSON struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

type predicateJSON struct {
	Serialization *struct {
		Method        string   `json:"method"`
		HashType      string   `json:"hash_type"`
		ShardSize     *int64   `json:"shard_size"`
		AllowSymlinks bool     `json:"allow_symlinks"`
		IgnorePaths   []string `json:"ignore_paths"`
	} `json:"serialization"`
	Resources []struct {
		Name      string `json:"name"`
		Algorithm string `json:"algorithm"`
		Digest    string `json:"digest"`
	} `json:"resources"`
}

// parseStatement turns a verified DSSE payload into a manifest: statement and
// predicate types, the serialization, every resource name and digest, and the root
// digest recomputed from the resources (SHA-256 over their raw digests, in order).
func parseStatement(payload []byte) (*Manifest, error) {
	var st statementJSON
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("signature: the signed statement is not JSON: %v", err)
	}
	if st.Type != inTotoStatementV1 {
		return nil, fmt.Errorf("signature: the signed statement has _type %q, want %q", st.Type, inTotoStatementV1)
	}
	switch st.PredicateType {
	case predicateV1:
		return parseV1(&st)
	case predicateV01Compat:
		return parseCompat(&st)
	default:
		return nil, fmt.Errorf("signature: predicateType %q is not a model signature (want %s)", st.PredicateType, predicateV1)
	}
}

func parseV1(st *statementJSON) (*Manifest, error) {
	if len(st.Subject) != 1 {
		return nil, fmt.Errorf("signature: the statement has %d subjects, a v1.0 model signature has exactly one", len(st.Subject))
	}
	subj := st.Subject[0]
	want, err := hexDigest(subj.Digest["sha256"])
	if err != nil {
		return nil, fmt.Errorf("signature: the statement's subject digest: %v", err)
	}
	var pred predicateJSON
	dec := json.NewDecoder(bytes.NewReader(st.Predicate))
	if err := dec.Decode(&pred); err != nil {
		return nil, fmt.Errorf("signature: the statement's predicate: %v", err)
	}
	ser := pred.Serialization
	if ser == nil {
		return nil, fmt.Errorf("signature: the statement's predicate has no serialization")
	}
	m := &Manifest{
		ModelName:     subj.Name,
		HashAlgorithm: ser.HashType,
		Serialization: ser.Method,
		AllowSymlinks: ser.AllowSymlinks,
		IgnorePaths:   ser.IgnorePaths,
		RootDigest:    "sha256:" + hex.EncodeToString(want),
		Files:         map[string][]Segment{},
	}
	if ser.HashType != "sha256" {
		return nil, fmt.Errorf("signature: the model was hashed with %q; only sha256 is supported (re-sign with --hash_type sha256)", ser.HashType)
	}
	switch ser.Method {
	case "files":
	case "shards":
		if ser.ShardSize == nil || *ser.ShardSize <= 0 {
			return nil, fmt.Errorf("signature: shards serialization without a positive shard_size")
		}
		m.ShardSize = *ser.ShardSize
	default:
		return nil, fmt.Errorf("signature: serialization method %q is not supported (files or shards)", ser.Method)
	}
	if len(pred.Resources) > maxResources {
		return nil, fmt.Errorf("signature: the statement lists %d resources, more than %d", len(pred.Resources), maxResources)
	}
	root := sha256.New()
	seen := make(map[string]bool, len(pred.Resources))
	for _, r := range pred.Resources {
		if r.Algorithm != "sha256" {
			return nil, fmt.Errorf("signature: resource %q is hashed with %q; only sha256 is supported", r.Name, r.Algorithm)
		}
		d, err := hexDigest(r.Digest)
		if err != nil {
			return nil, fmt.Errorf("signature: resource %q: %v", r.Name, err)
		}
		root.Write(d)
		if seen[r.Name] {
			return nil, fmt.Errorf("signature: resource %q is listed twice", r.Name)
		}
		seen[r.Name] = true
		name, seg, err := parseResourceName(r.Name, ser.Method)
		if err != nil {
			return nil, err
		}
		seg.SHA256 = d
		m.Files[name] = append(m.Files[name], seg)
	}
	if got := root.Sum(nil); !bytes.Equal(got, want) {
		return nil, fmt.Errorf("signature: the statement is inconsistent: its subject digest is sha256:%x but its resources hash to sha256:%x", want, got)
	}
	if err := m.checkSegments(); err != nil {
		return nil, err
	}
	return m, nil
}

// parseCompat reads the v0.2 statement (predicate https://model_signing/Digests/v0.1):
// one subject per file, no serialization and no root digest. The reference accepts it
// as files/sha256; so do we, with the root digest computed over the subjects as v1.0
// would, so the summary still has one value to show.
func parseCompat(st *statementJSON) (*Manifest, error) {
	if len(st.Subject) > maxResources {
		return nil, fmt.Errorf("signature: the statement lists %d subjects, more than %d", len(st.Subject), maxResources)
	}
	m := &Manifest{
		ModelName:     "compat-undefined-not-present",
		HashAlgorithm: "sha256",
		Serialization: "files",
		Files:         map[string][]Segment{},
	}
	root := sha256.New()
	for _, s := range st.Subject {
		d, err := hexDigest(s.Digest["sha256"])
		if err != nil {
			return nil, fmt.Errorf("signature: subject %q: %v", s.Name, err)
		}
		root.Write(d)
		name, seg, err := parseResourceName(s.Name, "files")
		if err != nil {
			return nil, err
		}
		if _, dup := m.Files[name]; dup {
			return nil, fmt.Errorf("signature: subject %q is listed twice", s.Name)
		}
		seg.SHA256 = d
		m.Files[name] = []Segment{seg}
	}
	m.RootDigest = "sha256:" + hex.EncodeToString(root.Sum(nil))
	return m, nil
}

// parseResourceName splits a resource name into its model-relative path and, for
// shards, the byte range ("path:start:end", as the reference's _Shard writes it).
// Names are trusted only once they are clean relative slash paths: the engine joins
// them under DEST.
func parseResourceName(name, method string) (string, Segment, error) {
	p := name
	seg := Segment{Start: 0, End: -1}
	if method == "shards" {
		parts := strings.Split(name, ":")
		if len(parts) != 3 {
			return "", seg, fmt.Errorf("signature: shard resource %q is not path:start:end", name)
		}
		start, err1 := strconv.ParseInt(parts[1], 10, 64)
		end, err2 := strconv.ParseInt(parts[2], 10, 64)
		if err1 != nil || err2 != nil || start < 0 || end <= start {
			return "", seg, fmt.Errorf("signature: shard resource %q has no valid byte range", name)
		}
		p, seg.Start, seg.End = parts[0], start, end
	}
	if err := checkRelPath(p); err != nil {
		return "", seg, fmt.Errorf("signature: resource %q: %v", name, err)
	}
	return p, seg, nil
}

func checkRelPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case p == ".":
		return nil // the reference's name for a model that is one file
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("absolute path")
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("NUL in path")
	case p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/.."):
		return fmt.Errorf("path leaves the model root")
	case path.Clean(p) != p:
		return fmt.Errorf("path is not clean (want %q)", path.Clean(p))
	}
	return nil
}

// checkSegments sorts each file's shards and requires them to tile the file from 0
// in shard_size steps, as the reference's serializer cuts them: anything else could
// not match a re-serialization and would leave bytes unsigned.
func (m *Manifest) checkSegments() error {
	if _, one := m.Files["."]; one && len(m.Files) > 1 {
		return fmt.Errorf("signature: resource \".\" (a one-file model) next to other resources")
	}
	for name, segs := range m.Files {
		sort.Slice(segs, func(i, j int) bool { return segs[i].Start < segs[j].Start })
		if m.Serialization != "shards" {
			if len(segs) != 1 {
				return fmt.Errorf("signature: resource %q is listed twice", name)
			}
			continue
		}
		var at int64
		for i, s := range segs {
			last := i == len(segs)-1
			if s.Start != at || (!last && s.End-s.Start != m.ShardSize) || s.End-s.Start > m.ShardSize {
				return fmt.Errorf("signature: the shards of %q do not tile the file in %d-byte steps (at %d:%d)", name, m.ShardSize, s.Start, s.End)
			}
			at = s.End
		}
	}
	return nil
}

func hexDigest(s string) ([]byte, error) {
	d, err := hex.DecodeString(s)
	if err != nil || len(d) != sha256.Size {
		return nil, fmt.Errorf("digest %q is not a hex SHA-256", s)
	}
	return d, nil
}
