// Package provider defines what every source protocol implements: a
// Planner turns a URI into an engine.Plan and runs nothing; the engine
// executes plans (Engine.Run).
package provider

import (
	"context"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Planner is what every provider is.
type Planner interface {
	// Schemes lists the URI schemes handled, e.g. "s3".
	Schemes() []string
	// Plan resolves src (listing, HEAD, manifest…) into files, units and
	// links. It must not write anything.
	Plan(ctx context.Context, src string) (*engine.Plan, error)
}

// Settings are the run's choices a provider plans with: a snapshot of the
// engine's own (Engine.PlanSettings), so both hold the same values.
type Settings = engine.PlanSettings

// Fetch plans src with p and runs the plan into dest with eng.
func Fetch(ctx context.Context, eng *engine.Engine, p Planner, src, dest string) (*engine.Report, error) {
	plan, err := p.Plan(ctx, src)
	if err != nil {
		return nil, err
	}
	return eng.Run(ctx, dest, plan)
}
