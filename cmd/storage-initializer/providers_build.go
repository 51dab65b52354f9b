package main

import (
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
	"github.com/storage-initializer/storage-initializer/pkg/provider/s3"
)

// buildProviders constructs every provider this binary ships.
func buildProviders(eng *engine.Engine, cfg *config, getenv func(string) string) []provider.Provider {
	return []provider.Provider{
		s3.New(eng, s3.WithGetenv(getenv)),
	}
}
