package engine

// Planning a run of files: paths, verification and the disk pre-flight are
// decided before a byte is fetched.

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/storage-initializer/storage-initializer/pkg/human"
)

// dryRunFiles lists the files Run would produce and how each would be
// verified, touching nothing.
func dryRunFiles(runs []*fileRun) *Report {
	rep := &Report{}
	for _, fr := range runs {
		verified := fr.verified()
		if fr.inBody {
			verified = "checksum sent with the download"
		}
		rep.Files = append(rep.Files, FileResult{Path: fr.rel, Size: fr.f.Size, Status: StatusPlanned,
			Verified: verified, Digest: digestOf(fr)})
		rep.Bytes += max(fr.f.Size, 0)
	}
	return rep
}

// plan validates paths and picks each file's verification up front, so bad
// input fails before a byte is fetched.
func (e *Engine) plan(files []File) ([]*fileRun, error) {
	seen := map[string]bool{}
	var runs []*fileRun
	for _, f := range files {
		rel, err := CleanRel(f.Path)
		if err != nil {
			return nil, fmt.Errorf("refusing to write %q: %w", f.Path, err)
		}
		if !f.Unfiltered && !e.keep(rel) {
			continue
		}
		if seen[rel] {
			return nil, fmt.Errorf("two source files map to the same path %s", rel)
		}
		seen[rel] = true
		if f.Size < 0 && !f.Stream || f.Size != 0 && f.Source == nil {
			return nil, fmt.Errorf("internal: file %s has size %d and no source", rel, f.Size)
		}
		chk, err := chooseCheck(f, e.verify)
		if err != nil && !f.ChecksumsInBody {
			return nil, err
		}
		fr := newFileRun(f, rel, chk, e.chunkSize)
		fr.alloc = e.alloc
		if f.ChecksumsInBody && len(f.Expect) == 0 && f.Size <= e.chunkSize && f.Size > 0 && e.verify != VerifySize {
			fr.inBody = true
		}
		runs = append(runs, fr)
	}
	return runs, nil
}

// checkSpace fails at once when DEST's filesystem cannot hold what is left
// to fetch, instead of failing halfway.
func (e *Engine) checkSpace(root *os.Root, dest string, runs []*fileRun, extra int64) error {
	need := extra
	temps := tempSizes(root)
	markAbsent(root, runs)
	for _, fr := range runs {
		if fr.f.Size < 0 {
			continue // a stream of unknown length: checked as it is written
		}
		if fr.present(root) {
			continue // probably present; verified later
		}
		if fr.heldReady(root) {
			continue // verified and held by an earlier run (hold.go)
		}
		need += fr.f.Size
		need -= temps[path.Base(fr.tmpName())] // already allocated by an earlier run
	}
	free, err := freeBytes(dest)
	if err != nil || need <= free {
		return nil
	}
	return fmt.Errorf("not enough space in %s: need %s more, %s available: free space or use a larger volume",
		dest, human.Bytes(need), human.Bytes(free))
}

// tempSizes lists the temp files an earlier run left in the state folder,
// by name: one read of the folder instead of a failing stat per file.
func tempSizes(root *os.Root) map[string]int64 {
	d, err := root.Open(StateDir)
	if err != nil {
		return nil
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, de := range entries {
		if !de.Type().IsRegular() || !strings.HasSuffix(de.Name(), ".part") {
			continue
		}
		if fi, err := de.Info(); err == nil {
			out[de.Name()] = fi.Size()
		}
	}
	return out
}

// markAbsent settles, from one listing of DEST's top folder, that the
// files planned there which it does not list are absent: a fresh DEST
// costs one read of a folder instead of a failing stat per file.
func markAbsent(root *os.Root, runs []*fileRun) {
	d, err := root.Open(".")
	if err != nil {
		return
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return
	}
	have := make(map[string]struct{}, len(names))
	for _, n := range names {
		have[n] = struct{}{}
	}
	for _, fr := range runs {
		if _, ok := have[fr.rel]; !ok && fr.presence == 0 && leaf(fr.rel) {
			fr.presence = -1
		}
	}
}

// present reports whether a regular file of the planned size is already
// at fr's final name; the answer is kept, so the pre-flight and the start
// of the file ask DEST once between them.
func (fr *fileRun) present(root *os.Root) bool {
	if fr.presence == 0 {
		fr.presence = -1
		if fi, err := root.Lstat(fr.rel); err == nil && fi.Mode().IsRegular() && fi.Size() == fr.f.Size {
			fr.presence = 1
		}
	}
	return fr.presence == 1
}
