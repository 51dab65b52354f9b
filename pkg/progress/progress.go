// Package progress reports download progress: a live bar on a terminal
// (github.com/vbauerster/mpb), and periodic log entries (every few seconds,
// never per chunk) in a pod, where stderr is not a terminal and a redrawn
// line would only fill the log.
package progress

import (
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Reporter implements engine.Observer. The engine calls it from many
// goroutines per chunk, so the observer methods only touch atomics; a
// single ticker turns the counters into output.
type Reporter struct {
	w     io.Writer
	log   *zap.Logger
	every time.Duration
	term  *termDisplay // nil when not on a terminal

	files, filesDone atomic.Int64
	total, done      atomic.Int64
	rate             atomic.Uint64 // float64 bits: smoothed bytes per second
	start            time.Time

	once sync.Once
	stop chan struct{}
	wg   sync.WaitGroup
}

var _ engine.Observer = (*Reporter)(nil)

// New starts a reporter writing to w; terminal selects the live bar over
// log entries every `every` (default 5s).
func New(w io.Writer, log *zap.Logger, terminal bool, every time.Duration) *Reporter {
	r := &Reporter{w: w, log: log, every: every, start: time.Now(), stop: make(chan struct{})}
	if terminal {
		r.every = 200 * time.Millisecond
		r.term = newTermDisplay(w, r)
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

// Writer is where other output (the console logger) should go while the
// reporter runs: on a terminal, lines written here appear above the live
// bar instead of tearing it; elsewhere it is w itself.
func (r *Reporter) Writer() io.Writer {
	if r.term == nil {
		return r.w
	}
	return r.term
}

// Stop ends the reporter: the bar is drawn one last time and left on screen.
func (r *Reporter) Stop() {
	r.once.Do(func() {
		close(r.stop)
		r.wg.Wait()
		if r.term != nil {
			r.term.finish(r.snapshot())
		}
	})
}

func (r *Reporter) loop() {
	t := time.NewTicker(r.every)
	defer t.Stop()
	last, lastAt := int64(0), r.start
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			done := r.done.Load()
			r.sample(done-last, now.Sub(lastAt))
			last, lastAt = done, now
			s := r.snapshot()
			if r.term != nil {
				r.term.update(s)
			} else {
				r.logProgress(s)
			}
		}
	}
}

// sample folds one tick's throughput into an exponentially weighted moving
// average over about five seconds, so the rate and ETA follow the current
// speed (after a resume, a stall, a slow first request) rather than the
// average since start.
func (r *Reporter) sample(bytes int64, dt time.Duration) {
	if dt <= 0 {
		return
	}
	inst := math.Max(float64(bytes), 0) / dt.Seconds()
	old := math.Float64frombits(r.rate.Load())
	alpha := 1 - math.Exp(-dt.Seconds()/5)
	if old == 0 {
		alpha = 1
	}
	r.rate.Store(math.Float64bits(old + alpha*(inst-old)))
}

// snapshot is one consistent-enough reading of the counters for output.
type snapshot struct {
	done, total      int64
	filesDone, files int64
	rate             float64 // bytes per second
	elapsed          time.Duration
}

func (r *Reporter) snapshot() snapshot {
	return snapshot{
		done: r.done.Load(), total: r.total.Load(),
		filesDone: r.filesDone.Load(), files: r.files.Load(),
		rate: math.Float64frombits(r.rate.Load()), elapsed: time.Since(r.start),
	}
}

// eta is the time left at the current rate, or "?" before there is one.
func (s snapshot) eta() string {
	if s.rate <= 0 || s.total < s.done {
		return "?"
	}
	return time.Duration(float64(s.total-s.done) / s.rate * float64(time.Second)).Round(time.Second).String()
}

func (r *Reporter) logProgress(s snapshot) {
	r.log.Info("progress", zap.Int64("bytes", s.done), zap.Int64("total_bytes", s.total),
		zap.Float64("mib_per_second", math.Round(s.rate/(1<<20)*10)/10), zap.String("eta", s.eta()),
		zap.Int64("files_done", s.filesDone), zap.Int64("files", s.files))
}
