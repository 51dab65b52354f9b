package s3_test

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/internal/testenv"
)

// TestTLS puts a TLS reverse proxy with a self-signed certificate in front
// of MinIO and checks S3_VERIFY_SSL, AWS_CA_BUNDLE and the CA configmap
// mount.
func TestTLS(t *testing.T) {
	m := testenv.MinIO(t)
	bucket := m.Bucket(t)
	m.Put(t, bucket, "m/w.bin", []byte("over tls"), "")
	target, err := url.Parse(m.Endpoint)
	require.NoError(t, err)
	// The proxy keeps the Host header, so MinIO checks the signature made
	// for the proxy's address.
	srv := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	caFile := filepath.Join(dir, "cabundle.crt")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	hostPort := srv.Listener.Addr().String()
	keys := []string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey}
	src := "s3://" + bucket + "/m"

	for _, tc := range []struct {
		name string
		env  []string
		ok   bool
	}{
		{"untrusted certificate fails", []string{"S3_ENDPOINT=" + hostPort}, false},
		{"S3_USE_HTTPS=1 is https", []string{"S3_ENDPOINT=" + hostPort, "S3_USE_HTTPS=1", "S3_VERIFY_SSL=0"}, true},
		{"S3_VERIFY_SSL=false skips verification", []string{"AWS_ENDPOINT_URL=" + srv.URL, "S3_VERIFY_SSL=false"}, true},
		{"AWS_CA_BUNDLE trusts the certificate", []string{"AWS_ENDPOINT_URL=" + srv.URL, "AWS_CA_BUNDLE=" + caFile}, true},
		{"CA configmap mount trusts the certificate", []string{"AWS_ENDPOINT_URL=" + srv.URL,
			"CA_BUNDLE_CONFIGMAP_NAME=ca", "CA_BUNDLE_VOLUME_MOUNT_POINT=" + dir}, true},
		{"STORAGE_CONFIG ca_bundle", []string{`STORAGE_CONFIG={"type":"s3","endpoint_url":"` + srv.URL + `","ca_bundle":"` + caFile + `"}`}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := newProvider(append(tc.env, keys...)).Files(context.Background(), src)
			if !tc.ok {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "certificate")
				return
			}
			require.NoError(t, err)
			require.Len(t, files, 1)
			assert.Equal(t, []byte("over tls"), readAll(t, files[0]))
		})
	}
}
