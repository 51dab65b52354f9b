package main

import (
	"fmt"
	"strings"

	"github.com/storage-initializer/storage-initializer/internal/redact"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
	"github.com/storage-initializer/storage-initializer/pkg/provider/azblob"
)

// azureBlobKey is the registry key of the Azure Blob provider: its URIs are
// https:// URIs of Azure's hosts, routed by azblob.Matches before the
// generic https:// provider sees them.
const azureBlobKey = "azure-blob"

// registry maps URI schemes to providers.
type registry map[string]provider.Planner

func newProviders(eng *engine.Engine, cfg *config, getenv func(string) string) registry {
	r := registry{}
	for _, p := range buildProviders(eng.PlanSettings(), cfg, getenv) {
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

func (r registry) forURI(src string) (provider.Planner, error) {
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
	return nil, &usageError{fmt.Sprintf("unsupported source %s (%s): supported are %s; Azure File shares, hdfs:// and git are not supported yet",
		redactURI(src), what, r.supported())}
}

func (r registry) supported() string {
	order := []string{"s3", "gs", "oci", "oci+fetch", "hf", "modelscope", "pvc", "file", "http", "https"}
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

// redactURI is redact.URI: user info, query and fragment cut by hand,
// whether or not src parses, before a URI reaches a log or an error.
func redactURI(src string) string { return redact.URI(src) }
