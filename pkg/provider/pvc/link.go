package pvc

import (
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Verified values in reports for files not checked by a manifest.
const (
	notVerifiedLink = "not verified (symlink)"
	notVerified     = "not verified (no manifest entry)"
	leftAlone       = "not linked (DEST already has it)"
)

// links plans how DEST shows the source: each top-level entry becomes a
// symlink to it (a file source: one link to the file). With include/exclude
// patterns a folder holding both kept and dropped files becomes a real
// folder whose entries are linked one by one, so DEST shows exactly the
// kept files. The engine creates them and leaves alone (and reports) an
// entry DEST already has.
func (p *Provider) links(t *tree, digests map[string]string) []engine.Link {
	l := &linkPlanner{p: p, digests: digests}
	if !t.root.dir {
		l.entry(t.root)
	} else {
		for _, k := range t.root.kids {
			l.node(k)
		}
	}
	return l.out
}

type linkPlanner struct {
	p       *Provider
	digests map[string]string
	out     []engine.Link
}

func (l *linkPlanner) node(n *node) {
	if !n.dir {
		if l.p.set.Kept(n.rel) {
			l.entry(n)
		}
		return
	}
	kept, total := l.count(n)
	switch {
	case total == 0 && !l.p.set.Kept(n.rel), total > 0 && kept == 0:
		return
	case kept == total:
		l.entry(n)
		return
	}
	// Mixed: a real folder, entries linked one by one.
	l.out = append(l.out, engine.Link{Path: n.rel, Dir: true, LeftAlone: l.results(n, leftAlone)})
	for _, k := range n.kids {
		l.node(k)
	}
}

// entry links DEST/n.rel to n.
func (l *linkPlanner) entry(n *node) {
	l.out = append(l.out, engine.Link{Path: n.rel, Target: n.link,
		Results: l.results(n, notVerifiedLink), LeftAlone: l.results(n, leftAlone)})
}

// count returns the kept and total numbers of files under a folder.
func (l *linkPlanner) count(n *node) (kept, total int) {
	for _, k := range n.kids {
		if k.dir {
			a, b := l.count(k)
			kept, total = kept+a, total+b
			continue
		}
		total++
		if l.p.set.Kept(k.rel) {
			kept++
		}
	}
	return kept, total
}

// results lists every file under n (n itself for a file).
func (l *linkPlanner) results(n *node, unverified string) []engine.FileResult {
	if !n.dir {
		return []engine.FileResult{fileResult(n, l.digests, unverified)}
	}
	var out []engine.FileResult
	for _, k := range n.kids {
		out = append(out, l.results(k, unverified)...)
	}
	return out
}

// fileResult describes a file that was checked, not fetched.
func fileResult(n *node, digests map[string]string, unverified string) engine.FileResult {
	r := engine.FileResult{Path: n.rel, Size: n.info.Size(), Status: engine.StatusPresent, Verified: unverified}
	if d, ok := digests[n.rel]; ok && unverified != leftAlone {
		r.Verified, r.Digest = "sha256", d
	}
	return r
}

// verifyResults lists the source's kept files (paths relative to the source).
func (p *Provider) verifyResults(t *tree, digests map[string]string) []engine.FileResult {
	var out []engine.FileResult
	for _, f := range t.files {
		if p.set.Kept(f.rel) {
			out = append(out, fileResult(f, digests, notVerified))
		}
	}
	return out
}
