package pvc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// claimEnv is a pvc root with one claim mounted at root/claim.
type claimEnv struct {
	root, claim, dest string
}

func newClaim(t *testing.T) claimEnv {
	t.Helper()
	base := t.TempDir()
	e := claimEnv{root: filepath.Join(base, "pvc"), dest: filepath.Join(base, "dest")}
	e.claim = filepath.Join(e.root, "claim")
	require.NoError(t, os.MkdirAll(e.claim, 0o755))
	return e
}

// write creates rel (and its folders) under dir with data.
func write(t *testing.T, dir, rel, data string) string {
	t.Helper()
	p := filepath.Join(dir, rel)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	return p
}

func newProvider(root string, mode Mode, eopts ...engine.Option) testProvider {
	eopts = append([]engine.Option{engine.WithConcurrency(4), engine.WithChunkSize(1 << 20)}, eopts...)
	return newWith(engine.New(eopts...), WithRoot(root), WithMode(mode))
}

// testProvider is a provider with the engine whose settings it plans with.
type testProvider struct {
	*Provider
	eng *engine.Engine
}

func newWith(eng *engine.Engine, opts ...Option) testProvider {
	return testProvider{New(eng.PlanSettings(), opts...), eng}
}

// Fetch plans src and runs the plan into dest, as the command does.
func (p testProvider) Fetch(ctx context.Context, src, dest string) (*engine.Report, error) {
	plan, err := p.Plan(ctx, src)
	if err != nil {
		return nil, err
	}
	return p.eng.Run(ctx, dest, plan)
}

func sha(data string) string {
	s := sha256.Sum256([]byte(data))
	return hex.EncodeToString(s[:])
}

func paths(r *engine.Report) []string {
	var out []string
	for _, f := range r.Files {
		out = append(out, f.Path)
	}
	return out
}
