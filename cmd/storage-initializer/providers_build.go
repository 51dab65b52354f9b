package main

import (
	"github.com/storage-initializer/storage-initializer/pkg/engine"
	"github.com/storage-initializer/storage-initializer/pkg/provider"
)

// buildProviders constructs every provider this binary ships.
func buildProviders(eng *engine.Engine, cfg *config, getenv func(string) string) []provider.Provider {
	return nil
}
