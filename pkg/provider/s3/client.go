package s3

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

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
	// origin names where objects come from in file identities (and so in
	// node-cache keys): endpoint scheme and host:port, addressing, region.
	origin string
	// get sends the downloads' GetObject requests (get.go).
	get *getter
}

// WithLimiter bounds this provider's S3 requests in flight (listings,
// HEADs and ranged GETs alike) together with every other client sharing l:
// the run-wide --concurrency bound. The default is no bound beyond the
// engine's. Credential requests (STS, IMDS) are not counted: they go to
// other servers.
func WithLimiter(l *httpx.Limiter) Option { return func(p *Provider) { p.limiter = l } }

// newClient builds an S3 client from resolved settings. conns is the number
// of requests the engine keeps in flight: the connection pool must keep at
// least that many idle connections or every range pays a new handshake.
func newClient(ctx context.Context, s settings, set provider.Settings, l *httpx.Limiter) (*client, error) {
	conns := set.Conns()
	ho := httpOptions(s, conns, l)
	api, err := newAPIClient(ho)
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
		hc, err := newCredentialsClient(ho)
		if err != nil {
			return nil, err
		}
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
		HTTPClient:    withIdleTimeout(api, s.ReadTimeout),
		UsePathStyle:  s.PathStyle,
		UseAccelerate: s.Accelerate,
		AppID:         "storage-initializer",
		// Planning requests (list, head) are retried by the SDK, on the
		// run's one policy: --max-attempts, its backoff, Retry-After;
		// without the SDK's client-side rate limiter (which protects
		// long-running services, not a one-shot job). Downloads are retried
		// by the engine instead, see loader.go.
		Retryer: planRetryer{RetryerV2: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = set.MaxAttempts()
			o.RateLimiter = ratelimit.None
		}), set: set},
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
	c := &client{api: awss3.New(o), where: where, credSource: s.CredSource, anonymous: s.Anonymous, region: region,
		origin: origin(s, region)}
	c.get = newGetter(c.api, o.HTTPClient, s.Anonymous)
	return c, nil
}

// origin is the endpoint of a client's objects: scheme and host:port of a
// custom endpoint (AWS when none), path-style or virtual-host addressing,
// acceleration, and the region.
func origin(s settings, region string) string {
	ep := "aws"
	if s.Endpoint != "" {
		ep = strings.ToLower(s.Endpoint) // scheme://host[:port], checked by resolveEndpoint
	}
	addr := "virtual"
	switch {
	case s.PathStyle:
		addr = "path"
	case s.Accelerate && s.Endpoint == "":
		addr = "accelerate"
	}
	return fmt.Sprintf("endpoint=%s addressing=%s region=%s", ep, addr, region)
}

// httpOptions are the binary's HTTP rules (internal/httpx: proxies from
// the environment, HTTP/1.1 only, bytes as served, the redirect policy)
// with S3's settings: S3_VERIFY_SSL, the CA bundle (added to the system
// roots, so a bundle holding only a private CA does not break STS for
// IRSA), the connect and read timeouts.
func httpOptions(s settings, conns int, l *httpx.Limiter) httpx.Options {
	return httpx.Options{
		Conns:                 conns,
		CAFiles:               []httpx.CAFile{{Path: s.CABundle, From: "AWS_CA_BUNDLE or the CA configmap"}},
		InsecureSkipVerify:    s.SkipVerify,
		DialTimeout:           s.ConnectTimeout,
		TLSHandshakeTimeout:   s.ConnectTimeout,
		ResponseHeaderTimeout: s.ReadTimeout,
		ReadBufferSize:        128 << 10,
		// Temporary credentials travel in this header, not Authorization.
		SensitiveHeaders: []string{"X-Amz-Security-Token"},
		Limiter:          l,
	}
}

// newAPIClient returns the client of S3 requests. Only 307 and 308 are
// followed, as by the SDK's own client: S3 answers 301 for a bucket in
// another region, and that answer (x-amz-bucket-region) is what the SDK
// and regionError read.
func newAPIClient(o httpx.Options) (*http.Client, error) {
	hc, err := httpx.NewClient(o)
	if err != nil {
		return nil, err
	}
	policy := hc.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if c := req.Response.StatusCode; c != http.StatusTemporaryRedirect && c != http.StatusPermanentRedirect {
			return http.ErrUseLastResponse
		}
		return policy(req, via)
	}
	return hc, nil
}

// newCredentialsClient returns the client of the SDK's credential chain
// (STS, SSO, container and instance roles), which must be the SDK's
// buildable client so it can add AWS_CA_BUNDLE itself; its transport
// follows the same rules as the S3 requests'.
func newCredentialsClient(o httpx.Options) (*awshttp.BuildableClient, error) {
	var err error
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { err = httpx.Configure(tr, o) })
	if err != nil {
		return nil, err
	}
	return hc, nil
}
