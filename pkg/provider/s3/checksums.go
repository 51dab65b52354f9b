package s3

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// sumFields are the x-amz-checksum-* values of an object or of one part.
// Algorithms the checksum package does not implement (SHA-512, XXHASH) are
// left out: the engine could not check them.
type sumFields struct {
	CRC64NVME, CRC32, CRC32C, SHA1, SHA256, MD5 *string
}

func headFields(h *awss3.HeadObjectOutput) sumFields {
	return sumFields{h.ChecksumCRC64NVME, h.ChecksumCRC32, h.ChecksumCRC32C, h.ChecksumSHA1, h.ChecksumSHA256, h.ChecksumMD5}
}

func partFields(p types.ObjectPart) sumFields {
	return sumFields{p.ChecksumCRC64NVME, p.ChecksumCRC32, p.ChecksumCRC32C, p.ChecksumSHA1, p.ChecksumSHA256, p.ChecksumMD5}
}

// byAlgorithm maps each algorithm present to its value.
func (f sumFields) byAlgorithm() map[checksum.Algorithm]string {
	m := map[checksum.Algorithm]string{}
	for alg, p := range map[checksum.Algorithm]*string{
		checksum.CRC64NVME: f.CRC64NVME, checksum.CRC32: f.CRC32, checksum.CRC32C: f.CRC32C,
		checksum.SHA1: f.SHA1, checksum.SHA256: f.SHA256, checksum.MD5: f.MD5,
	} {
		if p != nil && *p != "" {
			m[alg] = *p
		}
	}
	return m
}

// getSums are the checksums a whole-object GetObject response (made with
// ChecksumMode=ENABLED) vouches for: its full-object values, else its ETag
// when that is an MD5. A composite value is left out: checking it needs the
// part layout, which only a HEAD gives.
func getSums(out *awss3.GetObjectOutput) []checksum.Value {
	h := &awss3.HeadObjectOutput{
		ChecksumCRC64NVME: out.ChecksumCRC64NVME, ChecksumCRC32: out.ChecksumCRC32, ChecksumCRC32C: out.ChecksumCRC32C,
		ChecksumSHA1: out.ChecksumSHA1, ChecksumSHA256: out.ChecksumSHA256, ChecksumType: out.ChecksumType,
		ETag: out.ETag, SSECustomerAlgorithm: out.SSECustomerAlgorithm, ServerSideEncryption: out.ServerSideEncryption,
	}
	full, comp, _ := objectSums(h)
	if len(full) > 0 {
		return full
	}
	if comp == nil {
		if md5, ok := etagMD5(h); ok {
			return []checksum.Value{md5}
		}
	}
	return nil
}

// objectSums picks the checksums S3 vouches for in a HeadObject response
// made with ChecksumMode=ENABLED: the full-object values, and at most one
// composite value (a multipart upload carries one algorithm). Unparsable
// values are reported in skipped, not fatal: the object can still be
// fetched and checked with what remains.
func objectSums(h *awss3.HeadObjectOutput) (full []checksum.Value, composite *checksum.Value, skipped []string) {
	for alg, s := range headFields(h).byAlgorithm() {
		v, err := checksum.ParseBase64(alg, s)
		switch {
		case err != nil:
			skipped = append(skipped, err.Error())
		case v.Composite && (v.Parts < 1 || v.Parts > maxParts):
			// Checked before anything is sized by it (see checkPartCount).
			skipped = append(skipped, fmt.Sprintf("%s claims %d parts (S3 allows 1 to %d)", alg, v.Parts, maxParts))
		case v.Composite:
			if composite == nil || checksum.Strength(v) > checksum.Strength(*composite) {
				composite = &v
			}
		case h.ChecksumType == types.ChecksumTypeComposite:
			// COMPOSITE without the -N part count: the layout is unknown.
			skipped = append(skipped, string(alg)+" is composite but has no part count")
		default:
			full = append(full, v)
		}
	}
	sortValues(full)
	return full, composite, skipped
}

// sortValues orders values strongest first, for stable plans and tests.
func sortValues(vs []checksum.Value) {
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && checksum.Strength(vs[j]) > checksum.Strength(vs[j-1]); j-- {
			vs[j], vs[j-1] = vs[j-1], vs[j]
		}
	}
}

var md5ETag = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)

// etagMD5 returns the ETag as an MD5 value when it is one: a single-part
// upload (no "-N" suffix) not encrypted with SSE-KMS or SSE-C.
func etagMD5(h *awss3.HeadObjectOutput) (checksum.Value, bool) {
	etag := unquote(h.ETag)
	if !md5ETag.MatchString(etag) || opaqueETag(h) {
		return checksum.Value{}, false
	}
	v, err := checksum.ParseHex(checksum.MD5, strings.ToLower(etag))
	return v, err == nil
}

var multipartETag = regexp.MustCompile(`^[0-9a-fA-F]{32}-[1-9][0-9]{0,4}$`)

// etagParts returns a multipart ETag ("HEX-N": the MD5 of the parts' MD5s,
// on AWS and MinIO) as a composite MD5 value, when the object is not
// encrypted with SSE-KMS or SSE-C and N is a part count S3 allows.
func etagParts(h *awss3.HeadObjectOutput) (checksum.Value, bool) {
	etag := unquote(h.ETag)
	if !multipartETag.MatchString(etag) || opaqueETag(h) {
		return checksum.Value{}, false
	}
	v, err := checksum.ParseMultipartETag(etag)
	if err != nil || v.Parts > maxParts {
		return checksum.Value{}, false
	}
	return v, true
}

// opaqueETag says the object's ETag is not an MD5 of its bytes: under
// SSE-KMS (aws:kms, aws:kms:dsse) and SSE-C, S3 makes it something else.
func opaqueETag(h *awss3.HeadObjectOutput) bool {
	if aws.ToString(h.SSECustomerAlgorithm) != "" || aws.ToString(h.SSECustomerKeyMD5) != "" {
		return true
	}
	switch h.ServerSideEncryption {
	case types.ServerSideEncryptionAwsKms, types.ServerSideEncryptionAwsKmsDsse:
		return true
	}
	return false
}

// md5Chksum returns the whole-object MD5 rclone records in the object's
// user metadata (X-Amz-Meta-Md5chksum, base64) when it uploads a file in
// parts, whose ETag is then no MD5 of the file.
func md5Chksum(h *awss3.HeadObjectOutput) (checksum.Value, bool) {
	s := h.Metadata["md5chksum"] // the SDK lowercases metadata keys
	if s == "" {
		return checksum.Value{}, false
	}
	v, err := checksum.ParseBase64(checksum.MD5, s)
	if err != nil || v.Composite {
		return checksum.Value{}, false
	}
	v.From = checksum.FromMD5Chksum
	return v, true
}

// unquote strips the quotes S3 puts around ETags.
func unquote(p *string) string {
	if p == nil {
		return ""
	}
	return strings.Trim(*p, `"`)
}
