package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
	"github.com/storage-initializer/storage-initializer/pkg/provider/azblob"
)

// registry maps URI schemes to providers.
type registry map[string]provider.Provider

func newProviders(eng *engine.Engine, cfg *config, getenv func(string) string) registry {
	r := registry{}
	for _, p := range buildProviders(eng, cfg, getenv) {
		for _, s := range p.Schemes() {
			r[s] = p
		}
	}
	return r
}

// schemeOf returns the URI scheme, or "file" for a plain absolute path.
func schemeOf(src string) string {
	if strings.HasPrefix(src, "/") {
		return "file"
	}
	if i := strings.Index(src, "://"); i > 0 {
		return strings.ToLower(src[:i])
	}
	return ""
}

func (r registry) forURI(src string) (provider.Provider, error) {
	s := schemeOf(src)
	switch {
	case azblob.Matches(src):
		s = azureBlobKey
	case azblob.IsFileShare(src):
		return nil, &usageError{fmt.Sprintf("unsupported source %s: Azure File shares are not supported by this image; use KServe's storage-initializer image for them",
			redactURI(src))}
	}
	if p, ok := r[s]; ok {
		return p, nil
	}
	what := fmt.Sprintf("scheme %q", s)
	if s == "" {
		what = "no scheme"
	}
	return nil, &usageError{fmt.Sprintf("unsupported source %s (%s): supported are %s; hf:// is not supported yet",
		redactURI(src), what, r.supported())}
}

func (r registry) supported() string {
	order := []string{"s3", "gs", "oci", "oci+fetch", "pvc", "file", "http", "https"}
	var out []string
	for _, s := range order {
		if _, ok := r[s]; ok {
			out = append(out, s+"://")
		}
	}
	if _, ok := r[azureBlobKey]; ok {
		out = append(out, "https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH")
	}
	if _, ok := r["file"]; ok {
		out = append(out, "/absolute/path")
	}
	return strings.Join(out, ", ")
}

// redactURI drops user info and query strings (presigned URLs carry
// credentials there) before a URI reaches a log or an error.
func redactURI(src string) string {
	u, err := url.Parse(src)
	if err != nil || u.Scheme == "" {
		return src
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	return u.String()
}
