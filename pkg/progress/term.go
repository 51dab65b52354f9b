package progress

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// termDisplay is the live bar for a person at a terminal:
//
//	files 3/12  1.21 GiB / 4.50 GiB [=====>----------------]  27%  412.3 MiB/s  ETA 8s
//
// mpb draws and redraws it; the Reporter's ticker feeds it the counters
// (never the engine's goroutines, which must not wait on a display).
type termDisplay struct {
	w   io.Writer
	p   *mpb.Progress
	bar *mpb.Bar

	mu   sync.Mutex
	last snapshot
}

func newTermDisplay(w io.Writer, r *Reporter) *termDisplay {
	d := &termDisplay{w: w}
	// WithAutoRefresh: the caller already decided this is a terminal; mpb
	// would otherwise refuse to redraw on anything but an *os.File.
	d.p = mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithRefreshRate(150*time.Millisecond))
	field := func(f func(s snapshot) string) decor.Decorator {
		return decor.Any(func(decor.Statistics) string { return f(d.snap()) })
	}
	// Total 0: the plan arrives later and grows with each SRC DEST pair;
	// mpb then completes the bar only when told (finish).
	d.bar = d.p.New(0, mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding("-").Rbound("]"),
		mpb.PrependDecorators(field(func(s snapshot) string {
			return fmt.Sprintf("files %d/%d  %9s / %-9s ", s.filesDone, s.files, Human(s.done), Human(s.total))
		})),
		mpb.AppendDecorators(field(func(s snapshot) string {
			pct := 0
			if s.total > 0 {
				pct = int(min(100*s.done/s.total, 100))
			}
			return fmt.Sprintf(" %3d%%  %s/s  ETA %s", pct, Human(int64(s.rate)), s.eta())
		})),
	)
	return d
}

func (d *termDisplay) snap() snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

func (d *termDisplay) update(s snapshot) {
	d.mu.Lock()
	d.last = s
	d.mu.Unlock()
	if s.total > 0 {
		d.bar.SetTotal(s.total, false)
	}
	d.bar.SetCurrent(s.done)
}

// finish draws the final state and stops mpb: a complete bar when every
// planned byte arrived, no bar when nothing was planned, else the bar stays
// where the run stopped.
func (d *termDisplay) finish(s snapshot) {
	d.update(s)
	switch {
	case s.files == 0 && s.total == 0: // nothing was planned (--dry-run, an early error)
		d.bar.Abort(true)
	case s.total > 0 && s.done >= s.total:
		d.bar.SetTotal(-1, true)
	default:
		d.bar.Abort(false)
	}
	d.p.Wait()
}

// Write prints above the bar while it runs, and straight to the terminal
// once it is gone (mpb refuses writes after Wait).
func (d *termDisplay) Write(b []byte) (int, error) {
	if n, err := d.p.Write(b); err == nil {
		return n, nil
	}
	return d.w.Write(b)
}
