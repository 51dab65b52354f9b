// Package progress reports download progress: a live line on a terminal, and
// periodic log entries (every few seconds, never per chunk) in a pod.
package progress

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Reporter implements engine.Observer.
type Reporter struct {
	w        io.Writer
	log      *zap.Logger
	terminal bool
	every    time.Duration

	files, filesDone atomic.Int64
	total, done      atomic.Int64
	start            time.Time

	once sync.Once
	stop chan struct{}
	wg   sync.WaitGroup
}

var _ engine.Observer = (*Reporter)(nil)

// New starts a reporter; terminal selects the live line over log entries.
func New(w io.Writer, log *zap.Logger, terminal bool, every time.Duration) *Reporter {
	r := &Reporter{w: w, log: log, terminal: terminal, every: every, start: time.Now(), stop: make(chan struct{})}
	if terminal {
		r.every = 200 * time.Millisecond
	}
	if r.every <= 0 {
		r.every = 5 * time.Second
	}
	r.wg.Go(r.loop)
	return r
}

// Planned implements engine.Observer; several plans (SRC DEST pairs) add up.
func (r *Reporter) Planned(files int, bytes int64) {
	r.files.Add(int64(files))
	r.total.Add(bytes)
}

// Transferred implements engine.Observer.
func (r *Reporter) Transferred(n int64) { r.done.Add(n) }

// FileDone implements engine.Observer.
func (r *Reporter) FileDone(engine.FileResult) { r.filesDone.Add(1) }

// Stop ends the reporter, clearing the live line.
func (r *Reporter) Stop() {
	r.once.Do(func() {
		close(r.stop)
		r.wg.Wait()
		if r.terminal {
			fmt.Fprint(r.w, "\r\033[K")
		}
	})
}

func (r *Reporter) loop() {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.report()
		}
	}
}

func (r *Reporter) report() {
	done, total := r.done.Load(), r.total.Load()
	elapsed := time.Since(r.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed
	}
	eta := "?"
	if rate > 0 && total >= done {
		eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	if r.terminal {
		fmt.Fprintf(r.w, "\r\033[K%s / %s  %s/s  ETA %s  files %d/%d",
			Human(done), Human(total), Human(int64(rate)), eta, r.filesDone.Load(), r.files.Load())
		return
	}
	r.log.Info("progress", zap.Int64("bytes", done), zap.Int64("total_bytes", total),
		zap.Float64("mib_per_second", rate/(1<<20)), zap.String("eta", eta),
		zap.Int64("files_done", r.filesDone.Load()), zap.Int64("files", r.files.Load()))
}

// Human renders a byte count for people.
func Human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
