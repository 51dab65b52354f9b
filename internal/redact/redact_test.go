package redact

import (
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestURI(t *testing.T) {
	for in, want := range map[string]string{
		// The inputs of issue 12: none of them parses.
		"https://user:PASSWORD@host/m%zz.bin?X-Amz-Signature=SIG": "https://REDACTED@host/m%zz.bin?REDACTED",
		"gs://u:pw@b/%zz":                          "gs://REDACTED@b/%zz",
		"https://host/m.bin?X-Amz-Signature=SIG\n": "https://host/m.bin?REDACTED",
		"https://host/m.bin?sig=SIG\r\n":           "https://host/m.bin?REDACTED",
		// Ordinary URIs keep scheme, host and path.
		"https://host/p":                    "https://host/p",
		"s3://bucket/model":                 "s3://bucket/model",
		"s3://bucket/model@v1/w.bin":        "s3://bucket/model@v1/w.bin",
		"oci://reg:5000/repo@sha256:abc":    "oci://reg:5000/repo@sha256:abc",
		"pvc://claim/path":                  "pvc://claim/path",
		"HTTPS://u@Host:8443/a/b":           "HTTPS://REDACTED@Host:8443/a/b",
		"https://u:p@host/p?sig=1#sha256=2": "https://REDACTED@host/p?REDACTED",
		"https://host/m.bin#sha256=2":       "https://host/m.bin#REDACTED",
		"https://host?token=T":              "https://host?REDACTED",
		"https://a:b@c@host/p":              "https://REDACTED@host/p",
		"https://u:p@[::1]:9000/b":          "https://REDACTED@[::1]:9000/b",
		"https://user:pa?ss@host/x":         "https://REDACTED?REDACTED", // '?' before '@': cut both ways
		"https://host?x=a@b/c":              "https://REDACTED?REDACTED",
		"//u:p@host/x":                      "//REDACTED@host/x",
		"":                                  "",
		// No scheme: a local path stays, anything before an '@' in the
		// first segment is taken for user info.
		"/mnt/models/a@b":    "/mnt/models/a@b",
		"u:p@host:9000":      "REDACTED@host:9000",
		"models/v1?token=T":  "models/v1?REDACTED",
		"x?https://u:p@h/":   "x?REDACTED",
		"1http://u:p@h/q":    "1http://REDACTED@h/q",
		"https:/u:p@host/x":  "https:/u:p@host/x", // a path to url.Parse too
		"bad\x1b[31mred\x7f": "bad[31mred",
		"https://h/a\u202eb": "https://h/ab",
		"https://h/\u0085x":  "https://h/x",
		"https://h/\xffx":    "https://h/\ufffdx",
	} {
		assert.Equal(t, want, URI(in), "%q", in)
	}
}

func TestError(t *testing.T) {
	ue := &url.Error{Op: "Get", URL: "https://bucket.example/blob?X-Amz-Signature=SIG", Err: errors.New("connection reset")}
	err := fmt.Errorf("blob sha256:1: %w", ue)
	red := Error(err)
	assert.Equal(t, `blob sha256:1: Get "https://bucket.example/blob?REDACTED": connection reset`, red.Error())
	var got *url.Error
	assert.ErrorAs(t, red, &got)
	assert.Same(t, ue, got)
	assert.Equal(t, "https://bucket.example/blob?REDACTED", got.URL)
	plain := errors.New("no URL")
	assert.Same(t, plain, Error(plain))

	joined := errors.Join(errors.New("a"), fmt.Errorf("b: %w", &url.Error{Op: "Get", URL: "https://u:pw@h/x", Err: errors.New("eof")}))
	assert.NotContains(t, Error(joined).Error(), "pw")
	assert.Nil(t, Error(nil))
}
