package main

import (
	"fmt"
	"strings"

	"github.com/storage-initializer/storage-initializer/internal/redact"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

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
	if p, ok := r[s]; ok {
		return p, nil
	}
	what := fmt.Sprintf("scheme %q", s)
	if s == "" {
		what = "no scheme"
	}
	return nil, &usageError{fmt.Sprintf("unsupported source %s (%s): supported are %s; gs:// and Azure blob (wasbs://, azure://) are not supported yet",
		redactURI(src), what, r.supported())}
}

func (r registry) supported() string {
	order := []string{"s3", "oci", "oci+fetch", "hf", "modelscope", "pvc", "file", "http", "https"}
	var out []string
	for _, s := range order {
		if _, ok := r[s]; ok {
			out = append(out, s+"://")
		}
	}
	if _, ok := r["file"]; ok {
		out = append(out, "/absolute/path")
	}
	return strings.Join(out, ", ")
}

// redactURI is redact.URI: user info, query and fragment cut by hand,
// whether or not src parses, before a URI reaches a log or an error.
func redactURI(src string) string { return redact.URI(src) }
