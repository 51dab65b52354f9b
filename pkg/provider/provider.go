// Package provider defines what every source protocol implements.
package provider

import (
	"context"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Provider materialises one source URI into DEST. Providers that yield plain
// files hand them to the engine (Engine.Fetch); providers that unpack
// archives or layers stage through the engine's commit path (engine.Stage).
type Provider interface {
	// Schemes lists the URI schemes handled, e.g. "s3".
	Schemes() []string
	// Fetch materialises src into dest and reports each file committed.
	Fetch(ctx context.Context, src, dest string) (*engine.Report, error)
}

// Planner is what every provider becomes: it describes a source as a plan
// and runs nothing; the engine executes the plan (Engine.Run).
type Planner interface {
	// Schemes lists the URI schemes handled, e.g. "s3".
	Schemes() []string
	// Plan resolves src (listing, HEAD, manifest…) into files, units and
	// links. It must not write anything.
	Plan(ctx context.Context, src string) (*engine.Plan, error)
}
