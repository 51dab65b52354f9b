package httpx

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// tlsConfig trusts the system's CAs plus o.CAFiles, or anything when
// o.InsecureSkipVerify is set.
func tlsConfig(o Options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.InsecureSkipVerify {
		cfg.InsecureSkipVerify = true //nolint:gosec // only where the user asked for it
		return cfg, nil
	}
	var pool *x509.CertPool
	for _, f := range o.CAFiles {
		if f.Path == "" {
			continue
		}
		pem, err := os.ReadFile(f.Path)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle %s (from %s): %w", f.Path, f.From, err)
		}
		if pool == nil {
			if pool, err = x509.SystemCertPool(); err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s (from %s) holds no PEM certificate: give a file of -----BEGIN CERTIFICATE----- blocks", f.Path, f.From)
		}
	}
	cfg.RootCAs = pool // nil: the system's
	return cfg, nil
}
