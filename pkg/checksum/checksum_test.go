package checksum

import (
	"math/rand/v2"
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
