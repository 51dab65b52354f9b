package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// planAttempts bounds the SDK's own retries of planning requests (list,
// head). Downloads are retried by the engine instead, see loader.go.
const planAttempts = 4

// client is an S3 API client plus what error messages need to say where
// requests went and which credentials were used.
type client struct {
	api *awss3.Client
	// where names the endpoint in messages, e.g. "http://127.0.0.1:9000"
	// or "AWS S3 (us-west-2)".
	where string
	// credSource says where credentials came from, never what they are.
	credSource string
	anonymous  bool
	region     string
}

// newClient builds an S3 client from resolved settings. conns is the number
// of requests the engine keeps in flight: the connection pool must keep at
// least that many idle connections or every range pays a new handshake.
func newClient(ctx context.Context, s settings, conns int) (*client, error) {
	hc, err := newHTTPClient(s, conns)
	if err != nil {
		return nil, err
	}
	region := s.Region
	var creds aws.CredentialsProvider
	switch {
	case s.Anonymous:
		creds = aws.AnonymousCredentials{}
	case s.AccessKeyID != "":
		creds = credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, s.SessionToken)
	default:
		// The rest of the standard chain (shared config and credentials
		// files, web identity / IRSA, SSO, container and instance roles)
		// is the SDK's: it reads the process environment itself.
		opts := []func(*config.LoadOptions) error{config.WithHTTPClient(hc)}
		if region != "" {
			opts = append(opts, config.WithRegion(region))
		}
		if s.Profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(s.Profile))
		}
		cfg, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("load AWS credentials: %w", err)
		}
		creds = cfg.Credentials
		region = firstNonEmpty(region, cfg.Region)
	}
	region = firstNonEmpty(region, defaultRegion)

	o := awss3.Options{
		Region:        region,
		Credentials:   creds,
		HTTPClient:    withIdleTimeout(hc, s.ReadTimeout),
		UsePathStyle:  s.PathStyle,
		UseAccelerate: s.Accelerate,
		AppID:         "storage-initializer",
		// Planning requests are few and the engine is not involved, so the
		// SDK retries them, without its client-side rate limiter (which
		// exists to protect long-running services, not a one-shot job).
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = planAttempts
			o.RateLimiter = ratelimit.None
		}),
		// Only add request checksums where S3 requires them and never
		// validate responses: the engine verifies every file itself, with a
		// faster CRC64NVME and across ranged reads, which the SDK skips.
		RequestChecksumCalculation:                aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation:                aws.ResponseChecksumValidationWhenRequired,
		DisableLogOutputChecksumValidationSkipped: true,
	}
	where := fmt.Sprintf("AWS S3 (%s)", region)
	if s.Endpoint != "" {
		o.BaseEndpoint = aws.String(s.Endpoint)
		where = s.Endpoint
	}
	return &client{api: awss3.New(o), where: where, credSource: s.CredSource, anonymous: s.Anonymous, region: region}, nil
}

// newHTTPClient returns the SDK's buildable client (the credential chain
// needs that type to add AWS_CA_BUNDLE itself) tuned for bulk transfers.
func newHTTPClient(s settings, conns int) (*awshttp.BuildableClient, error) {
	tlsCfg, err := newTLSConfig(s)
	if err != nil {
		return nil, err
	}
	idle := max(conns+4, 16) // +4: planning HEADs and a straggler or two
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = s.ConnectTimeout }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = tlsCfg
			tr.TLSHandshakeTimeout = s.ConnectTimeout
			tr.ResponseHeaderTimeout = s.ReadTimeout
			tr.MaxIdleConns = max(idle, 100)
			tr.MaxIdleConnsPerHost = idle
			tr.IdleConnTimeout = 90 * time.Second
			// HTTP/1.1 only: parallel ranges want parallel TCP streams, not
			// one HTTP/2 connection whose flow-control window caps them all.
			tr.ForceAttemptHTTP2 = false
			tr.Protocols = new(http.Protocols)
			tr.Protocols.SetHTTP1(true)
			// Never let Go ask for gzip and transparently decompress: an
			// object stored with Content-Encoding: gzip must arrive as the
			// stored bytes, or sizes and checksums would not match.
			tr.DisableCompression = true
			tr.ReadBufferSize = 128 << 10
		}), nil
}

// newTLSConfig applies S3_VERIFY_SSL and the CA bundle. The bundle is added
// to the system roots rather than replacing them, so a bundle holding only a
// private CA does not break public endpoints (STS for IRSA).
func newTLSConfig(s settings) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.SkipVerify {
		cfg.InsecureSkipVerify = true //nolint:gosec // asked for with S3_VERIFY_SSL=0
		return cfg, nil
	}
	if s.CABundle == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(s.CABundle)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle (AWS_CA_BUNDLE or CA configmap): %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", s.CABundle)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
