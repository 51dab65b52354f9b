package progress

import (
	"io"
	"sync/atomic"
)

// Sink is an io.Writer whose destination can change while in use: the
// logger is built before the Reporter (which logs through it), so it writes
// to a Sink that is pointed at Reporter.Writer once the bar exists, and
// warnings during a download then print above the bar instead of tearing it.
type Sink struct{ w atomic.Pointer[io.Writer] }

// NewSink starts writing to w.
func NewSink(w io.Writer) *Sink {
	s := &Sink{}
	s.Set(w)
	return s
}

// Set redirects later writes to w.
func (s *Sink) Set(w io.Writer) { s.w.Store(&w) }

// Write implements io.Writer.
func (s *Sink) Write(b []byte) (int, error) { return (*s.w.Load()).Write(b) }
