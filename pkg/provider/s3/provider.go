// Package s3 fetches s3:// URIs from AWS S3 or any S3-compatible server
// (MinIO, Ceph…), configured from the environment KServe's webhook sets.
//
// The provider only plans: it lists the objects, asks each for its
// checksums, and hands the engine one File per object with a Loader that
// reads pinned byte ranges. Scheduling, retries, resume and verification
// are the engine's.
package s3

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/internal/httpx"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// Provider handles s3:// sources.
type Provider struct {
	set     provider.Settings
	getenv  func(string) string
	exists  func(string) bool
	limiter *httpx.Limiter
}

var _ provider.Planner = (*Provider)(nil)

// Option configures a Provider.
type Option func(*Provider)

// WithGetenv replaces os.Getenv as the source of the S3 environment
// (AWS_*, S3_*, STORAGE_CONFIG…). Tests use it to stay independent of the
// machine's environment. When AWS_ACCESS_KEY_ID is not set through it and
// anonymous access is off, the SDK's credential chain still reads the
// process environment and shared config files.
func WithGetenv(getenv func(string) string) Option {
	return func(p *Provider) {
		if getenv != nil {
			p.getenv = getenv
		}
	}
}

// New returns an S3 provider that plans with the run's settings.
func New(set provider.Settings, opts ...Option) *Provider {
	p := &Provider{set: set, getenv: os.Getenv, exists: fileExists}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Schemes implements provider.Provider.
func (p *Provider) Schemes() []string { return []string{"s3"} }

// Plan implements provider.Planner: src becomes the files it names, with
// sizes, checksums, part layouts and loaders; nothing is downloaded.
func (p *Provider) Plan(ctx context.Context, src string) (*engine.Plan, error) {
	files, err := p.Files(ctx, src)
	if err != nil {
		return nil, err
	}
	loc, _ := parseURI(src) // parsed by Files already
	return &engine.Plan{Source: loc.String(), Files: files}, nil
}

// Files resolves src into engine files (Plan without the wrapping).
func (p *Provider) Files(ctx context.Context, src string) ([]engine.File, error) {
	loc, err := parseURI(src)
	if err != nil {
		return nil, engine.Permanent(err)
	}
	s, err := resolveSettings(p.getenv, p.exists)
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("s3 configuration: %w", err))
	}
	files, err := p.planWith(ctx, s, loc)
	var re *regionError
	if errors.As(err, &re) && re.region != s.Region {
		// The server told us where the bucket is (x-amz-bucket-region): follow
		// it once instead of failing when no region was configured.
		p.set.Logger().Info("bucket is in another region; retrying there",
			zap.String("bucket", loc.Bucket), zap.String("region", re.region))
		s.Region = re.region
		files, err = p.planWith(ctx, s, loc)
	}
	return files, err
}

func (p *Provider) planWith(ctx context.Context, s settings, loc location) ([]engine.File, error) {
	c, err := newClient(ctx, s, p.set.Conns(), p.limiter)
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("s3 client: %w", err))
	}
	pl := &planner{c: c, set: p.set}
	return pl.plan(ctx, loc)
}
