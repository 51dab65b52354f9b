package pvc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Verified values in reports for files not checked by a manifest.
const (
	notVerifiedLink = "not verified (symlink)"
	notVerified     = "not verified (no manifest entry)"
	leftAlone       = "not linked (DEST already has it)"
)

// linker creates the links of one Fetch.
type linker struct {
	p       *Provider
	ctx     context.Context
	root    *os.Root // DEST: no link is ever created outside it
	digests map[string]string
	rep     *engine.Report
}

// link makes DEST show the source: each top-level entry becomes a symlink
// to it (a file source: one link to the file). With include/exclude
// patterns a folder holding both kept and dropped files becomes a real
// folder whose entries are linked one by one, so DEST shows exactly the
// kept files. An entry already in DEST is left alone and reported.
func (p *Provider) link(ctx context.Context, t *tree, dest string, digests map[string]string) (*engine.Report, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, fmt.Errorf("create destination %s: %w", dest, err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, fmt.Errorf("open destination %s: %w", dest, err)
	}
	defer root.Close()
	l := &linker{p: p, ctx: ctx, root: root, digests: digests, rep: &engine.Report{}}
	if !t.root.dir {
		err = l.entry(t.root)
	} else {
		for _, k := range t.root.kids {
			if err = l.node(k); err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return l.rep, nil
}

func (l *linker) node(n *node) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	if !n.dir {
		if l.p.eng.Keep(n.rel) {
			return l.entry(n)
		}
		return nil
	}
	kept, total := l.count(n)
	switch {
	case total == 0 && !l.p.eng.Keep(n.rel), total > 0 && kept == 0:
		return nil
	case kept == total:
		return l.entry(n)
	}
	// Mixed: a real folder, entries linked one by one.
	if fi, err := l.root.Lstat(n.rel); err == nil && fi.Mode().Type() != fs.ModeDir {
		l.p.log.Warn("already in DEST and not a folder; left alone", zap.String("path", n.rel))
		l.report(n, leftAlone)
		return nil
	}
	if err := l.root.Mkdir(n.rel, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create folder %s in DEST: %w", n.rel, err)
	}
	for _, k := range n.kids {
		if err := l.node(k); err != nil {
			return err
		}
	}
	return nil
}

// entry links DEST/n.rel to n, unless DEST already has that name.
func (l *linker) entry(n *node) error {
	if fi, err := l.root.Lstat(n.rel); err == nil {
		if fi.Mode().Type() == fs.ModeSymlink {
			if target, err := l.root.Readlink(n.rel); err == nil && target == n.link {
				l.report(n, notVerifiedLink) // from an earlier run: rerunning is a no-op
				return nil
			}
		}
		l.p.log.Warn("already in DEST; left alone", zap.String("path", n.rel))
		l.report(n, leftAlone)
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("check %s in DEST: %w", n.rel, err)
	}
	if err := l.root.Symlink(n.link, n.rel); err != nil {
		return fmt.Errorf("link %s in DEST to %s: %w", n.rel, n.link, err)
	}
	l.report(n, notVerifiedLink)
	return nil
}

// count returns the kept and total numbers of files under a folder.
func (l *linker) count(n *node) (kept, total int) {
	for _, k := range n.kids {
		if k.dir {
			a, b := l.count(k)
			kept, total = kept+a, total+b
			continue
		}
		total++
		if l.p.eng.Keep(k.rel) {
			kept++
		}
	}
	return kept, total
}

// report lists every file under n (n itself for a file).
func (l *linker) report(n *node, unverified string) {
	if n.dir {
		for _, k := range n.kids {
			l.report(k, unverified)
		}
		return
	}
	l.rep.Files = append(l.rep.Files, fileResult(n, l.digests, unverified))
	l.rep.Bytes += n.info.Size()
}

// fileResult describes a file that was checked, not fetched.
func fileResult(n *node, digests map[string]string, unverified string) engine.FileResult {
	r := engine.FileResult{Path: n.rel, Size: n.info.Size(), Status: engine.StatusPresent, Verified: unverified}
	if d, ok := digests[n.rel]; ok && unverified != leftAlone {
		r.Verified, r.Digest = "sha256", d
	}
	return r
}

// verifyReport lists the source's kept files (paths relative to the source).
func (p *Provider) verifyReport(t *tree, digests map[string]string) *engine.Report {
	rep := &engine.Report{}
	for _, f := range t.files {
		if p.eng.Keep(f.rel) {
			rep.Files = append(rep.Files, fileResult(f, digests, notVerified))
			rep.Bytes += f.info.Size()
		}
	}
	return rep
}
