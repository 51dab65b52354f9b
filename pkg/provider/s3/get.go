package s3

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyauth "github.com/aws/smithy-go/auth"
	"github.com/aws/smithy-go/encoding/httpbinding"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// getter sends the data path's GetObject requests itself: built, signed
// with the SDK's SigV4 signer and sent through the same HTTP client (limiter,
// idle timeout, TLS and proxy rules) as every SDK request. The SDK builds a
// stack of some forty middlewares per call (endpoint rules, retry, metrics,
// checksum setup, response parsing into a struct), which cost about as much
// CPU as the rest of a 256 KiB download; a GET of a known object version
// needs none of it. The endpoint is still the SDK's: its rules resolve each
// bucket once. Buckets whose endpoint needs more than plain SigV4 (S3
// Express sessions, SigV4a access points) keep the SDK's GetObject.
type getter struct {
	hc        aws.HTTPClient
	creds     aws.CredentialsProvider
	anonymous bool
	signer    *v4.Signer
	opts      awss3.Options

	mu      sync.Mutex
	targets map[string]*target // by bucket
}

// target is where one bucket's objects are read and how requests are signed.
type target struct {
	direct          bool // false: use the SDK's GetObject
	base            url.URL
	prefix, rawPref string // the path up to the key, plain and escaped
	name, region    string // SigV4 signing name and region
}

// emptySHA256 is the payload hash of a request without a body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func newGetter(api *awss3.Client, hc aws.HTTPClient, anonymous bool) *getter {
	o := api.Options()
	return &getter{hc: hc, creds: o.Credentials, anonymous: anonymous, opts: o, targets: map[string]*target{},
		// S3 signs the path as sent (no second escaping), as the SDK's own S3 signer does.
		signer: v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true })}
}

// target resolves bucket's endpoint with the SDK's rules, once.
func (g *getter) target(ctx context.Context, bucket string) (*target, error) {
	g.mu.Lock()
	t, ok := g.targets[bucket]
	g.mu.Unlock()
	if ok {
		return t, nil
	}
	o := g.opts
	// The parameters the SDK binds for GetObject (bindEndpointParams).
	params := awss3.EndpointParameters{
		Bucket:                         aws.String(bucket),
		Region:                         aws.String(o.Region),
		UseFIPS:                        aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack:                   aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
		Endpoint:                       o.BaseEndpoint,
		ForcePathStyle:                 aws.Bool(o.UsePathStyle),
		Accelerate:                     aws.Bool(o.UseAccelerate),
		DisableMultiRegionAccessPoints: aws.Bool(o.DisableMultiRegionAccessPoints),
		UseArnRegion:                   aws.Bool(o.UseARNRegion),
		DisableS3ExpressSessionAuth:    o.DisableS3ExpressSessionAuth,
	}
	ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, params)
	if err != nil {
		return nil, fmt.Errorf("resolve the endpoint of bucket %s: %w", bucket, err)
	}
	t = &target{direct: true, base: ep.URI, name: "s3", region: o.Region}
	if schemes, ok := smithyauth.GetAuthOptions(&ep.Properties); ok && len(schemes) > 0 {
		s := schemes[0]
		// Endpoint rules name the scheme "sigv4"; the SDK's own id is accepted too.
		t.direct = s.SchemeID == "sigv4" || s.SchemeID == smithyauth.SchemeIDSigV4
		if n, ok := smithyhttp.GetSigV4SigningName(&s.SignerProperties); ok {
			t.name = n
		}
		if r, ok := smithyhttp.GetSigV4SigningRegion(&s.SignerProperties); ok {
			t.region = r
		}
	}
	// The operation path the SDK's serializer joins to the endpoint's.
	const label = "{Key+}"
	t.prefix = strings.TrimSuffix(smithyhttp.JoinPath(ep.URI.Path, "/"+label), label)
	t.rawPref = strings.TrimSuffix(smithyhttp.JoinPath(ep.URI.EscapedPath(), "/"+label), label)
	g.mu.Lock()
	g.targets[bucket] = t
	g.mu.Unlock()
	return t, nil
}

// getRequest is one GetObject.
type getRequest struct {
	bucket, key, versionID, etag string
	rng                          string // "" for the whole object
	checksums                    bool   // ask for the object's checksums (ChecksumMode=ENABLED)
}

// getResponse is what the loader reads of a GetObject response.
type getResponse struct {
	body   io.ReadCloser
	length *int64
	sums   func() *awss3.GetObjectOutput // the checksum headers, as the SDK would parse them
}

// get sends one GetObject; errors have the SDK's shape (awshttp.ResponseError
// around a smithy.APIError), so describe reads them as it reads the SDK's.
func (g *getter) get(ctx context.Context, r getRequest, sdk func() (*awss3.GetObjectOutput, error)) (*getResponse, error) {
	t, err := g.target(ctx, r.bucket)
	if err != nil {
		return nil, err
	}
	if !t.direct {
		out, err := sdk()
		if err != nil {
			return nil, err
		}
		return &getResponse{body: out.Body, length: out.ContentLength, sums: func() *awss3.GetObjectOutput { return out }}, nil
	}
	u := t.base
	u.Path = t.prefix + r.key
	u.RawPath = t.rawPref + httpbinding.EscapePath(r.key, false)
	if r.versionID != "" {
		u.RawQuery = "versionId=" + url.QueryEscape(r.versionID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build the request for %s: %w", r.key, err)
	}
	h := req.Header
	h.Set("User-Agent", "storage-initializer")
	h.Set("If-Match", r.etag)
	if r.rng != "" {
		h.Set("Range", r.rng)
	}
	if r.checksums {
		h.Set("X-Amz-Checksum-Mode", string(types.ChecksumModeEnabled))
	}
	h.Set("X-Amz-Content-Sha256", emptySHA256)
	if !g.anonymous {
		creds, err := g.creds.Retrieve(ctx)
		if err != nil {
			return nil, fmt.Errorf("retrieve AWS credentials: %w", err)
		}
		if err := g.signer.SignHTTP(ctx, creds, req, emptySHA256, t.name, t.region, time.Now().UTC()); err != nil {
			return nil, fmt.Errorf("sign the request for %s: %w", r.key, err)
		}
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return nil, &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, responseError(resp)
	}
	var length *int64
	if resp.ContentLength >= 0 {
		length = aws.Int64(resp.ContentLength)
	}
	return &getResponse{body: resp.Body, length: length, sums: func() *awss3.GetObjectOutput { return checksumHeaders(resp.Header) }}, nil
}

// checksumHeaders reads the headers getSums looks at, as the SDK's
// deserializer would.
func checksumHeaders(h http.Header) *awss3.GetObjectOutput {
	str := func(name string) *string {
		if v := h.Get(name); v != "" {
			return aws.String(v)
		}
		return nil
	}
	return &awss3.GetObjectOutput{
		ChecksumCRC64NVME:    str("X-Amz-Checksum-Crc64nvme"),
		ChecksumCRC32:        str("X-Amz-Checksum-Crc32"),
		ChecksumCRC32C:       str("X-Amz-Checksum-Crc32c"),
		ChecksumSHA1:         str("X-Amz-Checksum-Sha1"),
		ChecksumSHA256:       str("X-Amz-Checksum-Sha256"),
		ChecksumType:         types.ChecksumType(h.Get("X-Amz-Checksum-Type")),
		ETag:                 str("Etag"),
		SSECustomerAlgorithm: str("X-Amz-Server-Side-Encryption-Customer-Algorithm"),
		ServerSideEncryption: types.ServerSideEncryption(h.Get("X-Amz-Server-Side-Encryption")),
	}
}

// maxErrorBody bounds how much of an error response is read for its code.
const maxErrorBody = 64 << 10

// responseError turns a non-2xx response into the error the SDK returns
// for it: the S3 error code and message from the XML body.
func responseError(resp *http.Response) error {
	defer resp.Body.Close()
	var doc struct {
		Code      string `xml:"Code"`
		Message   string `xml:"Message"`
		RequestID string `xml:"RequestId"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if xml.Unmarshal(data, &doc) != nil || doc.Code == "" {
		// No body (or not S3's): the SDK names the status instead.
		doc.Code = strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "")
		if doc.Code == "" {
			doc.Code = "HTTP" + strconv.Itoa(resp.StatusCode)
		}
	}
	reqID := resp.Header.Get("X-Amz-Request-Id")
	if reqID == "" {
		reqID = doc.RequestID
	}
	return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: resp},
			Err:      &smithy.GenericAPIError{Code: doc.Code, Message: doc.Message},
		},
		RequestID: reqID,
	}}
}
