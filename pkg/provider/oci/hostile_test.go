package oci

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostileLayerSizesRefused: a manifest whose layer claims a size near
// 2^62 (or a negative one) is refused at planning, before any range of it
// is scheduled or any buffer sized by it.
func TestHostileLayerSizesRefused(t *testing.T) {
	reg := newRegistry(t)
	layer := reg.blob(t, "r", mtLayerTar, tarOf(t, f("models/a", "a")), nil)
	for _, tc := range []struct {
		size int64
		want string
	}{
		{1 << 62, "claims 4611686018427387904 bytes"},
		{maxLayerSize + 1, "more than the 4398046511104 (4 TiB)"},
		{-1, "negative size"},
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			l := layer
			l.Size = tc.size
			tag := fmt.Sprintf("s%d", tc.size&0xffff)
			reg.pushImage(t, "r", tag, mtOCIImageConfig, l)
			p := newProvider(t, nil)
			_, err := p.Plan(t.Context(), "oci://"+reg.host+"/r:"+tag)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			dest, _, err := fetch(t, p, "oci://"+reg.host+"/r:"+tag)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, tree(t, dest))
		})
	}
	// Sizes each within bounds whose sum is not.
	big := layer
	big.Size = maxLayerSize
	var many []descriptor
	for range 17 {
		many = append(many, big)
	}
	reg.pushImage(t, "r", "sum", mtOCIImageConfig, many...)
	_, err := newProvider(t, nil).Plan(t.Context(), "oci://"+reg.host+"/r:sum")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "add up to more than")
}

func TestAbsurdLayerCountRefused(t *testing.T) {
	d := descriptor{MediaType: mtLayerTar, Digest: "sha256:" + sha64("b"), Size: 1}
	m := &manifest{Layers: make([]descriptor, maxLayers+1)}
	for i := range m.Layers {
		m.Layers[i] = d
	}
	_, err := planLayers(KindModelcar, m)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "100001 layers")
	m.Layers = m.Layers[:maxLayers]
	_, err = planLayers(KindModelcar, m)
	require.NoError(t, err)
}
