// Package checksum names the integrity signals a source can offer for a file
// (S3 checksums, ETag-as-MD5, OCI digests) and computes them.
package checksum

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/minio/crc64nvme"
)

// Algorithm is one checksum algorithm.
type Algorithm string

const (
	CRC32     Algorithm = "crc32"
	CRC32C    Algorithm = "crc32c"
	CRC64NVME Algorithm = "crc64nvme"
	SHA1      Algorithm = "sha1"
	SHA256    Algorithm = "sha256"
	MD5       Algorithm = "md5"
	// GitSHA1 is git's blob object id: SHA-1 over "blob <size>\x00" and
	// then the content (Hugging Face lists it as a file's "oid").
	GitSHA1 Algorithm = "git-sha1"
)

// IsCRC reports whether the algorithm is a CRC whose values for consecutive
// ranges can be combined without re-reading data.
func (a Algorithm) IsCRC() bool { return a == CRC32 || a == CRC32C || a == CRC64NVME }

// New returns a fresh hash for the algorithm.
func (a Algorithm) New() hash.Hash {
	switch a {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(castagnoli)
	case CRC64NVME:
		return crc64nvme.New()
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	case MD5:
		return md5.New()
	case GitSHA1:
		return sha1.New() // unseeded: only its Size is meaningful; hash with NewSized
	}
	panic("checksum: unknown algorithm " + string(a))
}

// NewSized returns a fresh hash for content of the given size: GitSHA1 is
// seeded with the blob header, which needs the size; every other algorithm
// is New().
func (a Algorithm) NewSized(size int64) hash.Hash {
	if a == GitSHA1 {
		return newGitBlobSHA1(size)
	}
	return a.New()
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Value is an expected (or computed) checksum of a whole file.
//
// A composite value (S3 multipart COMPOSITE type) is the checksum of the
// concatenated per-part checksums; Parts says how many parts there were.
type Value struct {
	Algorithm Algorithm
	Sum       []byte
	Composite bool
	Parts     int
	// From names where a value comes from when it is not a checksum the
	// source declares as one (an S3 multipart ETag, rclone's md5chksum
	// metadata), for reports; it takes no part in Equal.
	From string
}

// String renders the value the way its source usually prints it: hex for
// sha256/sha1/md5, base64 for CRCs, with "-N" for composites.
func (v Value) String() string {
	var s string
	if v.Algorithm.IsCRC() {
		s = base64.StdEncoding.EncodeToString(v.Sum)
	} else {
		s = hex.EncodeToString(v.Sum)
	}
	if v.Composite {
		s += fmt.Sprintf("-%d", v.Parts)
	}
	return s
}

// Kind describes the value for reports, e.g. "crc64nvme (full object)".
func (v Value) Kind() string {
	switch {
	case v.Composite && v.From != "":
		return fmt.Sprintf("%s of %d parts (%s)", v.Algorithm, v.Parts, v.From)
	case v.Composite:
		return fmt.Sprintf("%s (composite of %d parts)", v.Algorithm, v.Parts)
	case v.From != "":
		return fmt.Sprintf("%s (%s)", v.Algorithm, v.From)
	}
	return string(v.Algorithm)
}

// Sources of values that are not declared checksums (Value.From).
const (
	FromMultipartETag = "multipart ETag"
	FromMD5Chksum     = "rclone md5chksum"
)

// Equal reports whether two values agree.
func (v Value) Equal(o Value) bool {
	return v.Algorithm == o.Algorithm && v.Composite == o.Composite &&
		(!v.Composite || v.Parts == o.Parts) && bytes.Equal(v.Sum, o.Sum)
}

// ParseBase64 parses an S3 x-amz-checksum-* header value ("BASE64" or
// "BASE64-N" for composite checksums).
func ParseBase64(alg Algorithm, s string) (Value, error) {
	v := Value{Algorithm: alg}
	if i := bytes.LastIndexByte([]byte(s), '-'); i > 0 {
		var n int
		if _, err := fmt.Sscanf(s[i+1:], "%d", &n); err == nil && n > 0 {
			v.Composite, v.Parts, s = true, n, s[:i]
		}
	}
	sum, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return Value{}, fmt.Errorf("parse %s checksum %q: %w", alg, s, err)
	}
	if want := alg.New().Size(); len(sum) != want {
		return Value{}, fmt.Errorf("parse %s checksum %q: %d bytes, want %d", alg, s, len(sum), want)
	}
	v.Sum = sum
	return v, nil
}

// ParseMultipartETag parses an S3 multipart ETag, "HEX-N" (quotes
// stripped): the MD5 of the concatenated binary MD5s of the N parts.
func ParseMultipartETag(s string) (Value, error) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return Value{}, fmt.Errorf("parse multipart ETag %q: no part count", s)
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil || n < 1 || strconv.Itoa(n) != s[i+1:] {
		return Value{}, fmt.Errorf("parse multipart ETag %q: bad part count", s)
	}
	v, err := ParseHex(MD5, strings.ToLower(s[:i]))
	if err != nil {
		return Value{}, fmt.Errorf("parse multipart ETag %q: %w", s, err)
	}
	v.Composite, v.Parts, v.From = true, n, FromMultipartETag
	return v, nil
}

// ParseHex parses a hex digest such as an OCI "sha256:..." suffix or an MD5 ETag.
func ParseHex(alg Algorithm, s string) (Value, error) {
	sum, err := hex.DecodeString(s)
	if err != nil {
		return Value{}, fmt.Errorf("parse %s digest %q: %w", alg, s, err)
	}
	if want := alg.New().Size(); len(sum) != want {
		return Value{}, fmt.Errorf("parse %s digest %q: %d bytes, want %d", alg, s, len(sum), want)
	}
	return Value{Algorithm: alg, Sum: sum}, nil
}

// Strength orders values: the engine verifies with the strongest one offered.
// Full-object values beat composite ones (no part layout needed), cryptographic
// digests beat CRCs, and MD5 (ETag) comes last. A git blob SHA-1 is a SHA-1
// of the content with a fixed header, as strong as SHA-1 and below SHA-256.
func Strength(v Value) int {
	rank := map[Algorithm]int{SHA256: 6, SHA1: 5, GitSHA1: 5, CRC64NVME: 4, CRC32C: 3, CRC32: 2, MD5: 1}[v.Algorithm]
	if v.Composite {
		return rank
	}
	return rank + 10
}
