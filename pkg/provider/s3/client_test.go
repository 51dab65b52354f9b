package s3

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHTTPClientPool(t *testing.T) {
	s := settings{ConnectTimeout: defaultConnectTimeout, ReadTimeout: defaultReadTimeout}
	o := httpOptions(s, 64, nil)
	hc, err := newAPIClient(o)
	require.NoError(t, err)
	cred, err := newCredentialsClient(o)
	require.NoError(t, err)
	for name, tr := range map[string]*http.Transport{"S3": hc.Transport.(*http.Transport), "credentials": cred.GetTransport()} {
		assert.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 64, "%s: one idle connection per request in flight", name)
		assert.GreaterOrEqual(t, tr.MaxIdleConns, tr.MaxIdleConnsPerHost, name)
		assert.True(t, tr.DisableCompression, "%s: stored bytes, never transparently gunzipped", name)
		assert.False(t, tr.Protocols.HTTP2(), "%s: parallel ranges use parallel TCP connections", name)
		assert.Equal(t, defaultReadTimeout, tr.ResponseHeaderTimeout, name)
		assert.Equal(t, defaultConnectTimeout, tr.TLSHandshakeTimeout, name)
	}
	assert.Equal(t, defaultConnectTimeout, o.DialTimeout)
}

func TestTLSConfig(t *testing.T) {
	hc, err := newAPIClient(httpOptions(settings{SkipVerify: true, CABundle: "/does/not/matter"}, 1, nil))
	require.NoError(t, err)
	assert.True(t, hc.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify)

	_, err = newAPIClient(httpOptions(settings{CABundle: "/does/not/exist.pem"}, 1, nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read CA bundle")
	assert.Contains(t, err.Error(), "AWS_CA_BUNDLE")

	empty := t.TempDir() + "/empty.pem"
	require.NoError(t, writeFile(empty, "not a certificate"))
	_, err = newCredentialsClient(httpOptions(settings{CABundle: empty}, 1, nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "holds no PEM certificate")
}

// S3 answers 301 for a bucket in another region: the SDK must see that
// answer, not follow it. 307 is followed (the method is kept).
func TestOnlyMethodKeepingRedirectsAreFollowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/moved"):
			w.Header().Set("x-amz-bucket-region", "eu-west-1")
			http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, "/temp"):
			http.Redirect(w, r, "/final", http.StatusTemporaryRedirect)
		default:
			w.Write([]byte(r.URL.Path))
		}
	}))
	defer srv.Close()
	hc, err := newAPIClient(httpOptions(settings{}, 1, nil))
	require.NoError(t, err)
	resp, err := hc.Get(srv.URL + "/moved")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	assert.Equal(t, "eu-west-1", resp.Header.Get("x-amz-bucket-region"))

	resp, err = hc.Get(srv.URL + "/temp")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, srv.URL+"/final", resp.Request.URL.String())
}
