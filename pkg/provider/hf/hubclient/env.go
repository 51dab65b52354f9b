package hubclient

import (
	"github.com/storage-initializer/storage-initializer/internal/httpx"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// Env is what a hub provider is built from: the run's settings, where its
// variables are read and the run-wide bound on requests in flight. Both
// providers take the same options (Option), so they are built one way.
type Env struct {
	set     provider.Settings
	getenv  func(string) string
	limiter *httpx.Limiter
}

// Option configures an Env.
type Option func(*Env)

// WithGetenv sets where the hub's variables are read (default: nowhere,
// every variable unset).
func WithGetenv(f func(string) string) Option { return func(e *Env) { e.getenv = f } }

// WithLimiter bounds the hub's requests in flight together with every
// other client sharing l (the run-wide --concurrency bound).
func WithLimiter(l *httpx.Limiter) Option { return func(e *Env) { e.limiter = l } }

// NewEnv returns set with opts applied.
func NewEnv(set provider.Settings, opts ...Option) Env {
	e := Env{set: set, getenv: func(string) string { return "" }}
	for _, o := range opts {
		o(&e)
	}
	return e
}

// Settings are the run's settings.
func (e Env) Settings() provider.Settings { return e.set }

// Getenv reads variable k.
func (e Env) Getenv(k string) string { return e.getenv(k) }

// Client returns a client for cfg sharing the run's limiter; an error is
// Permanent (a CA bundle that cannot be read).
func (e Env) Client(cfg Config) (*Client, error) {
	cfg.Limiter = e.limiter
	c, err := New(e.set, cfg)
	return c, engine.Permanent(err)
}
