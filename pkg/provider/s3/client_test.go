package s3

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHTTPClientPool(t *testing.T) {
	hc, err := newHTTPClient(settings{ConnectTimeout: defaultConnectTimeout, ReadTimeout: defaultReadTimeout}, 64)
	require.NoError(t, err)
	tr := hc.GetTransport()
	assert.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 64, "one idle connection per request in flight")
	assert.GreaterOrEqual(t, tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
	assert.True(t, tr.DisableCompression, "stored bytes, never transparently gunzipped")
	assert.False(t, tr.Protocols.HTTP2(), "parallel ranges use parallel TCP connections")
	assert.Equal(t, defaultReadTimeout, tr.ResponseHeaderTimeout)
	assert.Equal(t, defaultConnectTimeout, hc.GetDialer().Timeout)
}

func TestTLSConfig(t *testing.T) {
	cfg, err := newTLSConfig(settings{SkipVerify: true, CABundle: "/does/not/matter"})
	require.NoError(t, err)
	assert.True(t, cfg.InsecureSkipVerify)

	_, err = newTLSConfig(settings{CABundle: "/does/not/exist.pem"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read CA bundle")

	empty := t.TempDir() + "/empty.pem"
	require.NoError(t, writeFile(empty, "not a certificate"))
	_, err = newTLSConfig(settings{CABundle: empty})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "holds no PEM certificate")
}
