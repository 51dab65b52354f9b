package pvc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// modelsDir is where KServe mounts the model for the server; a source under
// it (multi-model serving) is already in place.
const modelsDir = "/mnt/models"

// location is a source resolved to a path on this machine.
type location struct {
	path string // absolute, clean, symlinks not yet resolved
	// boundary is the folder symlinks may not leave: the claim's mount for
	// pvc://, "" for a local path (the volume holding it, found at scan).
	boundary string
	kind     string // "PVC path" or "local path", for messages
	// missing is the hint appended when path does not exist.
	missing string
	noop    bool
}

// resolve maps src (pvc://CLAIM/PATH, file:///abs, /abs) to a location.
func (p *Provider) resolve(src string) (location, error) {
	scheme, rest, ok := strings.Cut(src, "://")
	if !ok {
		scheme, rest = "file", src
	}
	var loc location
	switch strings.ToLower(scheme) {
	case "pvc":
		var err error
		if loc, err = p.resolveClaim(src, rest); err != nil {
			return loc, err
		}
	case "file":
		// file:///abs and file://localhost/abs (RFC 8089); no other host.
		rest = strings.TrimPrefix(rest, "localhost")
		if !strings.HasPrefix(rest, "/") {
			return loc, fmt.Errorf("invalid local source %q: want file:///absolute/path or /absolute/path", src)
		}
		loc = location{path: filepath.Clean(rest), kind: "local path",
			missing: "check the path and that its volume is mounted in this container"}
	default:
		return loc, fmt.Errorf("internal: the pvc provider got %q", src)
	}
	loc.noop = loc.path == modelsDir || strings.HasPrefix(loc.path, modelsDir+"/")
	return loc, nil
}

// resolveClaim follows both KServe flows: several claims mounted side by
// side under ROOT/CLAIM, or the older one mounting the claim at ROOT itself.
func (p *Provider) resolveClaim(src, rest string) (location, error) {
	claim, sub, _ := strings.Cut(rest, "/")
	if claim == "" || claim == "." || claim == ".." {
		return location{}, fmt.Errorf("invalid PVC source %q: want pvc://CLAIM/PATH", src)
	}
	for _, seg := range strings.Split(sub, "/") {
		if seg == ".." {
			return location{}, fmt.Errorf("invalid PVC source %q: the path may not have a \"..\" segment", src)
		}
	}
	root := filepath.Clean(p.root)
	claimDir := filepath.Join(root, claim)
	if fi, err := os.Stat(claimDir); err == nil && fi.IsDir() {
		return location{path: filepath.Join(claimDir, sub), boundary: claimDir, kind: "PVC path",
			missing: fmt.Sprintf("is claim %s mounted at %s?", claim, claimDir)}, nil
	}
	return location{path: filepath.Join(root, sub), boundary: root, kind: "PVC path",
		missing: fmt.Sprintf("is claim %s mounted at %s or %s? (set --pvc-root to where claims are mounted)", claim, claimDir, root)}, nil
}
