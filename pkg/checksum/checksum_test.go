package checksum

import (
	"crypto/md5"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCombineCRCMatchesWholeComputation(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 1<<20+12345)
	for i := range data {
		data[i] = byte(r.UintN(256))
	}
	for _, alg := range []Algorithm{CRC32, CRC32C, CRC64NVME} {
		t.Run(string(alg), func(t *testing.T) {
			h := alg.New()
			h.Write(data)
			want := CRCFromSum(h.Sum(nil))
			// split at several uneven cut points, including empty pieces
			cuts := []int{0, 1, 7, 4096, 65536, 500000, 500000, len(data)}
			var got uint64
			first := true
			for i := 0; i+1 < len(cuts); i++ {
				piece := data[cuts[i]:cuts[i+1]]
				ph := alg.New()
				ph.Write(piece)
				c := CRCFromSum(ph.Sum(nil))
				if first {
					got, first = c, false
					continue
				}
				got = CombineCRC(alg, got, c, int64(len(piece)))
			}
			assert.Equal(t, want, got)
			assert.Equal(t, h.Sum(nil), CRCToSum(alg, got))
		})
	}
}

func TestParseBase64Composite(t *testing.T) {
	v, err := ParseBase64(CRC32C, "yZRlqg==-3")
	require.NoError(t, err)
	assert.True(t, v.Composite)
	assert.Equal(t, 3, v.Parts)
	assert.Equal(t, "yZRlqg==-3", v.String())

	_, err = ParseBase64(SHA256, "yZRlqg==")
	assert.ErrorContains(t, err, "4 bytes, want 32")
	_, err = ParseBase64(CRC32, "not base64!")
	assert.Error(t, err)
}

func TestStrengthPrefersFullObjectAndCrypto(t *testing.T) {
	full := Value{Algorithm: CRC32}
	comp := Value{Algorithm: SHA256, Composite: true, Parts: 2}
	assert.Greater(t, Strength(full), Strength(comp))
	assert.Greater(t, Strength(Value{Algorithm: SHA256}), Strength(Value{Algorithm: CRC64NVME}))
	assert.Greater(t, Strength(Value{Algorithm: CRC32}), Strength(Value{Algorithm: MD5}))
}

func TestParseMultipartETag(t *testing.T) {
	// Two parts, "a" and "b": md5(md5("a") ‖ md5("b")).
	pa, pb := md5.Sum([]byte("a")), md5.Sum([]byte("b"))
	whole := md5.Sum(append(pa[:], pb[:]...))
	etag := hex.EncodeToString(whole[:]) + "-2"
	v, err := ParseMultipartETag(strings.ToUpper(etag[:32]) + "-2")
	require.NoError(t, err)
	assert.Equal(t, etag, v.String())
	assert.Equal(t, "md5 of 2 parts (multipart ETag)", v.Kind())
	assert.True(t, Composite(MD5, [][]byte{pa[:], pb[:]}).Equal(v), "the ETag is the composite MD5 of the part MD5s")
	for _, bad := range []string{etag[:32], etag[:32] + "-", etag[:32] + "-0", etag[:32] + "-x", etag[:30] + "-2", etag[:32] + "-02"} {
		_, err := ParseMultipartETag(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "md5 (rclone md5chksum)", Value{Algorithm: MD5, Sum: whole[:], From: FromMD5Chksum}.Kind())
}
