package s3

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

func testClient(t *testing.T, s settings) *client {
	t.Helper()
	if s.AccessKeyID == "" && !s.Anonymous {
		s.AccessKeyID, s.SecretAccessKey = "AKIDEXAMPLE", "secret"
	}
	c, err := newClient(context.Background(), s, provider.Settings{}, nil)
	require.NoError(t, err)
	return c
}

// The getter takes each bucket's endpoint from the SDK's own rules, and
// leaves to the SDK what needs more than SigV4.
func TestGetterTargets(t *testing.T) {
	aws := testClient(t, settings{Region: "us-west-2"})
	for _, tc := range []struct {
		bucket, url, region string
		direct              bool
	}{
		{"models", "https://models.s3.us-west-2.amazonaws.com/", "us-west-2", true},
		// Dots do not fit a TLS wildcard: path style, as the SDK does.
		{"my.models", "https://s3.us-west-2.amazonaws.com/my.models/", "us-west-2", true},
		// S3 Express One Zone needs session credentials: the SDK's GetObject.
		{"models--usw2-az1--x-s3", "", "", false},
	} {
		tg, err := aws.get.target(context.Background(), tc.bucket)
		require.NoError(t, err, tc.bucket)
		assert.Equal(t, tc.direct, tg.direct, tc.bucket)
		if !tc.direct {
			continue
		}
		u := tg.base
		u.Path = tg.prefix
		assert.Equal(t, tc.url, u.String(), tc.bucket)
		assert.Equal(t, "s3", tg.name)
		assert.Equal(t, tc.region, tg.region)
	}
	minio := testClient(t, settings{Endpoint: "http://127.0.0.1:9000", Region: "us-east-1", PathStyle: true})
	tg, err := minio.get.target(context.Background(), "bench")
	require.NoError(t, err)
	assert.True(t, tg.direct)
	assert.Equal(t, "/bench/", tg.prefix)
}

// recorder is an S3 stand-in that records requests and answers with a
// canned response.
type recorder struct {
	mu     sync.Mutex
	reqs   []*http.Request
	status int
	hdr    http.Header
	body   string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	for k, v := range r.hdr {
		w.Header()[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = io.WriteString(w, r.body)
}

// A direct GET carries what the SDK's would: the escaped key, the version
// pin, If-Match, the range, the checksum mode, a SigV4 signature (with the
// session token) — and errors read as the SDK's do.
func TestGetterRequestAndErrors(t *testing.T) {
	rec := &recorder{status: http.StatusOK, body: "0123456789", hdr: http.Header{
		"X-Amz-Checksum-Crc32": {"pnDSyA=="}, "X-Amz-Checksum-Type": {"FULL_OBJECT"}}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := testClient(t, settings{Endpoint: srv.URL, Region: "eu-west-1", PathStyle: true,
		AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", SessionToken: "session-token"})
	key := "dir/a b+c%d/ü.bin"
	l := &loader{c: c, obj: objectRef{uri: "s3://bkt/" + key, bucket: "bkt", key: key, etag: `"e1"`, versionID: "v 1"}, size: 10, sumsInBody: true}

	var sums int
	require.NoError(t, l.Load(context.Background(), 10, 0, func(r io.Reader) error {
		if bc, ok := r.(engine.BodyChecksums); ok {
			sums = len(bc.Checksums())
		}
		b, err := io.ReadAll(r)
		assert.Equal(t, "0123456789", string(b))
		return err
	}))
	assert.Equal(t, 1, sums, "the response's checksum reaches the engine")
	require.Len(t, rec.reqs, 1)
	req := rec.reqs[0]
	assert.Equal(t, "/bkt/dir/a%20b%2Bc%25d/%C3%BC.bin", req.URL.EscapedPath())
	assert.Equal(t, "v 1", req.URL.Query().Get("versionId"))
	assert.Equal(t, `"e1"`, req.Header.Get("If-Match"))
	assert.Empty(t, req.Header.Get("Range"), "a whole object is one unranged GET")
	assert.Equal(t, "ENABLED", req.Header.Get("X-Amz-Checksum-Mode"))
	assert.Equal(t, "session-token", req.Header.Get("X-Amz-Security-Token"))
	auth := req.Header.Get("Authorization")
	assert.True(t, strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), auth)
	assert.Contains(t, auth, "/eu-west-1/s3/aws4_request")
	assert.Contains(t, auth, "if-match")
	assert.NotContains(t, auth, "secret")

	// A range the server answers in full is refused, never handed on.
	err := l.Load(context.Background(), 4, 3, func(io.Reader) error { t.Error("fn called"); return nil })
	require.Error(t, err)
	assert.Equal(t, "bytes=3-6", rec.reqs[1].Header.Get("Range"))
	assert.Empty(t, rec.reqs[1].Header.Get("X-Amz-Checksum-Mode"), "a range has no whole-object checksum")

	for _, tc := range []struct {
		status    int
		code      string
		permanent bool
		says      string
	}{
		{http.StatusPreconditionFailed, "PreconditionFailed", true, "changed during download"},
		{http.StatusNotFound, "NoSuchKey", true, "was deleted during download (NoSuchKey"},
		{http.StatusForbidden, "AccessDenied", true, "access denied at " + srv.URL},
		{http.StatusForbidden, "SignatureDoesNotMatch", true, "the secret key does not match"},
		{http.StatusServiceUnavailable, "SlowDown", false, "StatusCode: 503, RequestID: req-1, api error SlowDown"},
		{http.StatusInternalServerError, "", false, "StatusCode: 500"},
	} {
		rec.status, rec.hdr, rec.body = tc.status, http.Header{"X-Amz-Request-Id": {"req-1"}}, ""
		if tc.code != "" {
			rec.body = "<?xml version=\"1.0\"?><Error><Code>" + tc.code + "</Code><Message>no</Message></Error>"
		}
		err := l.Load(context.Background(), 10, 0, func(io.Reader) error { t.Error("fn called"); return nil })
		require.Error(t, err, tc.code)
		assert.Equal(t, tc.permanent, engine.IsPermanent(err), "%s: %v", tc.code, err)
		assert.Contains(t, err.Error(), tc.says)
		assert.NotContains(t, err.Error(), "\n")
	}
}
