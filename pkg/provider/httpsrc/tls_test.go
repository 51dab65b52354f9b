package httpsrc

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

func TestUntrustedCertificateFailsAtOnce(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	start := time.Now()
	_, err := newP(newEngine()).Fetch(t.Context(), srv.URL+"/m.bin", t.TempDir())
	require.Error(t, err)
	assert.True(t, engine.IsPermanent(err))
	assert.Contains(t, err.Error(), "SSL_CERT_FILE")
	assert.Less(t, time.Since(start), time.Second, "not retried")

	// With the server's CA trusted, the same URL works.
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c := srv.Client()
	c.Transport.(*http.Transport).TLSClientConfig.RootCAs = pool
	_, err = newP(newEngine(), WithHTTPClient(c)).Fetch(t.Context(), srv.URL+"/m.bin", t.TempDir())
	require.NoError(t, err)
}
