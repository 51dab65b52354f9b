package engine

// Holding commits (Plan.CommitTogether): a plan whose files must appear
// together or not at all (a signed model: a changed byte in the third of
// three files must not leave the first two under their final names).
//
// Every file of such a plan is verified as usual, then renamed to a held
// name in the state folder (DEST/.storage-initializer/HASH.held) instead
// of its final name; every unit stops after its tree is merged and checked
// (phase "merged"). Only once every file and every unit of the plan got
// there does the commit start: held files are renamed to their final
// names, units commit their trees. Any failure before that point renames
// nothing; what was verified stays held for a rerun, which verifies each
// held file again (from its stamp, else by hashing it) and reuses it, as it
// reuses files already present under their final names.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// errNotCommitted is what a held participant returns when the run failed
// elsewhere: the run's own first error is the one reported. It is not
// Permanent, so a unit keeps its merged tree for the rerun.
var errNotCommitted = errors.New("not committed: another file of the model failed")

// commitGate lets the plan's participants (the files as a whole, each
// unit) commit only once all of them are verified.
type commitGate struct {
	mu   sync.Mutex
	left int
	open chan struct{}
}

func newCommitGate(participants int) *commitGate {
	g := &commitGate{left: participants, open: make(chan struct{})}
	if participants == 0 {
		close(g.open)
	}
	return g
}

// pass says one participant is verified and waits until every other one
// is, or the run failed. A nil gate (no CommitTogether) passes at once.
// Each participant calls it at most once.
func (g *commitGate) pass(ctx context.Context) error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	g.left--
	if g.left == 0 {
		close(g.open)
	}
	g.mu.Unlock()
	select {
	case <-g.open:
		// Everyone verified; a failure that raced the last arrival still wins.
		if ctx.Err() != nil {
			return errNotCommitted
		}
		return nil
	case <-ctx.Done():
		return errNotCommitted
	}
}

// heldName is where a verified file of a CommitTogether plan waits for the
// commit (in DEST's state folder, whatever store it was downloaded into).
func (fr *fileRun) heldName() string { return path.Join(StateDir, tmpBase(fr.rel)+".held") }

// finalName is where a verified file is renamed to: its path in DEST, or
// its held name when the plan commits together.
func (fr *fileRun) finalName() string {
	if fr.hold {
		return fr.heldName()
	}
	return fr.rel
}

// heldReady says an earlier run left this file verified and held.
func (fr *fileRun) heldReady(root *os.Root) bool {
	if !fr.hold {
		return false
	}
	fi, err := root.Lstat(fr.heldName())
	return err == nil && fi.Mode().IsRegular() && fi.Size() == fr.f.Size
}

// commitHeld gives every held file its final name, once the gate opened.
// A file found present under its final name had nothing held; a stale held
// copy of it (from an earlier run) is dropped, never renamed over it.
func commitHeld(ctx context.Context, root *os.Root, runs []*fileRun) error {
	for _, fr := range runs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if fr.status == StatusPresent {
			_ = root.Remove(fr.heldName())
			continue
		}
		if err := fr.commitHeldFile(root); err != nil {
			return err
		}
	}
	return nil
}

func (fr *fileRun) commitHeldFile(root *os.Root) error {
	held := fr.heldName()
	// The stamp binds the file's ctime to when it was sealed; the rename
	// below moves the ctime, so a stamp still valid is sealed again first
	// (else the next run would hash the file once more). A hardlink of a
	// node-cache entry is left alone: the entry's seal covers it.
	if f, err := root.OpenFile(held, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0); err == nil {
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil && st.Nlink == 1 {
			if _, ok := fr.matchStamp(stampContent(f)); ok {
				sealStamp(f, fr.stampValue())
			}
		}
		f.Close()
	} else if errors.Is(err, fs.ErrNotExist) {
		// Renamed by an interrupted commit of an earlier run, or a file
		// the plan never held (none of its bytes were written).
		if fi, serr := root.Lstat(fr.rel); serr == nil && fi.Mode().IsRegular() {
			return nil
		}
		return fmt.Errorf("commit %s: its verified copy %s is gone", fr.rel, held)
	}
	if err := replace(root, held, fr.rel); err != nil {
		return fmt.Errorf("commit %s (a symlink in DEST pointing outside it is refused): %w", fr.rel, err)
	}
	return nil
}

// removeStaleHeld drops, after a successful run, held files no plan will
// commit (a refused signed pull rerun without a signature): every held
// file of this run's plan was committed by now.
func removeStaleHeld(root *os.Root) {
	d, err := root.Open(StateDir)
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		if strings.HasSuffix(n, ".held") {
			_ = root.Remove(path.Join(StateDir, n))
		}
	}
}
