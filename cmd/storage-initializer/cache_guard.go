package main

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// checkCacheApart refuses a run whose writes or local reads would touch the
// node cache other than through the engine: a DEST, summary or termination
// log inside the cache folder (or a DEST holding it) could plant entries,
// and a local source inside it (file://, an absolute path, pvc:// under a
// --pvc-root that holds it) would hand out entries this pod was never
// authorised for (docs/node-cache.md).
func checkCacheApart(cfg *config) error {
	if cfg.cacheDir == "" {
		return nil
	}
	cache := realPath(cfg.cacheDir)
	for i := 0; i+1 < len(cfg.pairs); i += 2 {
		src, dest := cfg.pairs[i], cfg.pairs[i+1]
		if overlaps(realPath(dest), cache) {
			return &usageError{fmt.Sprintf("DEST %s and the node cache %s overlap: choose a DEST outside the cache", dest, cfg.cacheDir)}
		}
		if p, ok := localPath(src, cfg.pvcRoot); ok && overlaps(realPath(p), cache) {
			return &usageError{fmt.Sprintf("source %s is inside the node cache %s: the cache is read only through the engine", redactURI(src), cfg.cacheDir)}
		}
	}
	for _, out := range []string{cfg.summaryJSON, cfg.terminationLog} {
		if out != "" && within(realPath(out), cache) {
			return &usageError{fmt.Sprintf("%s is inside the node cache %s: write it elsewhere", out, cfg.cacheDir)}
		}
	}
	return nil
}

// localPath is where a local source reads on this machine.
func localPath(src, pvcRoot string) (string, bool) {
	switch schemeOf(src) {
	case "file":
		if strings.HasPrefix(src, "/") {
			return src, true
		}
		u, err := url.Parse(src)
		if err != nil {
			return "", false
		}
		return filepath.Join("/", u.Host, u.Path), true
	case "pvc":
		rest := src[len("pvc://"):]
		return filepath.Join(pvcRoot, rest), true
	}
	return "", false
}

// realPath resolves symlinks in the longest existing prefix of p.
func realPath(p string) string {
	p, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	rest := ""
	for cur := p; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func overlaps(a, b string) bool { return within(a, b) || within(b, a) }
