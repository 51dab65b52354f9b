package pvc

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// checkFiles opens every kept file (can the current user read it?) and,
// when hash is set, compares each one the manifest lists with its SHA-256,
// in parallel (bounded by the engine's concurrency). It returns the
// verified digests by relative path. Every manifest entry must name a file
// of the source, except entries the source skips (top-level dotfiles) or
// the include/exclude patterns drop.
func (p *Provider) checkFiles(ctx context.Context, loc location, t *tree, m manifest, hash bool) (map[string]string, error) {
	if err := p.coverage(loc, t, m, hash); err != nil {
		return nil, err
	}
	if p.set.Verify == engine.VerifySize {
		hash = false
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu      sync.Mutex
		digests = map[string]string{}
		wg      sync.WaitGroup
		sem     = make(chan struct{}, p.set.Conns())
	)
	for _, f := range t.files {
		if !p.set.Kept(f.rel) {
			continue
		}
		want, listed := m.sums[f.rel]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			got, err := checkFile(ctx, loc, f, hash && listed)
			if err != nil {
				cancel(err)
				return
			}
			if got == nil {
				return
			}
			if !got.Equal(want) {
				cancel(fmt.Errorf("checksum mismatch for %s in %s: sha256 expected %s, got %s: the file is corrupt or %s is out of date",
					f.rel, loc.path, want, got, m.name))
				return
			}
			mu.Lock()
			digests[f.rel] = got.String()
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return digests, nil
}

// coverage checks the manifest against the files found, before any byte is
// read: a listed file that is missing fails, and so does an unlisted file
// under --verify=strict.
func (p *Provider) coverage(loc location, t *tree, m manifest, hash bool) error {
	if t.root.dir {
		have := make(map[string]bool, len(t.files))
		for _, f := range t.files {
			have[f.rel] = true
		}
		for rel := range m.sums {
			if strings.HasPrefix(rel, ".") || !p.set.Kept(rel) || have[rel] {
				continue
			}
			return fmt.Errorf("manifest %s lists %s, which is not a file in %s: the model is incomplete or the manifest is out of date",
				m.name, rel, loc.path)
		}
	}
	if p.set.Verify != engine.VerifyStrict || !hash {
		return nil // copy mode: the engine enforces strict itself
	}
	for _, f := range t.files {
		if _, ok := m.sums[f.rel]; !ok && p.set.Kept(f.rel) && !m.is(f) {
			where := "no manifest was found (--manifest or " + ManifestName + ")"
			if m.name != "" {
				where = "it is not listed in " + m.name
			}
			return fmt.Errorf("%s in %s cannot be verified and --verify=strict is set: %s; add a SHA-256 manifest or use --verify=auto",
				f.rel, loc.path, where)
		}
	}
	return nil
}

// checkFile opens f and, when hash is set, returns its SHA-256.
func checkFile(ctx context.Context, loc location, f *node, hash bool) (*checksum.Value, error) {
	fh, err := os.Open(f.real)
	if err != nil {
		return nil, unreadable(loc, f.real, err)
	}
	defer fh.Close()
	if !hash {
		return nil, nil
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, ctxReader{ctx, fh}, make([]byte, 1<<20)); err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, unreadable(loc, f.real, err)
	}
	return &checksum.Value{Algorithm: checksum.SHA256, Sum: h.Sum(nil)}, nil
}

// ctxReader stops a long hash when the run is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
