package oci

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A blob redirected to presigned object storage that cannot be reached: the
// error names the storage URL without its signature.
func TestBlobRedirectErrorsHideThePresignedQuery(t *testing.T) {
	reg := newRegistry(t)
	reg.pushImage(t, "r", "v1", mtOCIImageConfig, reg.blob(t, "r", mtLayerGzip, gz(t, tarOf(t, f("models/w", "x"))), nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	ln.Close() // nothing listens there any more: connection refused
	reg.setWrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
			http.Redirect(w, r, "http://"+dead+"/bucket/blob?X-Amz-Credential=CRED&X-Amz-Signature=SECRET", http.StatusTemporaryRedirect)
			return
		}
		next.ServeHTTP(w, r)
	})
	_, _, err = fetch(t, newProvider(t, nil), "oci://"+reg.host+"/r:v1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), dead+"/bucket/blob?REDACTED")
	assert.NotContains(t, err.Error(), "SECRET")
	assert.NotContains(t, err.Error(), "CRED")
}
