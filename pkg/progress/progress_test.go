package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// syncBuffer is a bytes.Buffer safe for mpb's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// In a pod: one log entry per interval however many chunks arrive, with
// the counters a platform can alert on.
func TestLogsPeriodicallyNotPerChunk(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	var out syncBuffer
	r := New(&out, zap.New(core), false, 50*time.Millisecond)
	r.Planned(2, 4<<20)
	for range 10_000 { // 10,000 chunks of 100 bytes
		r.Transferred(100)
	}
	r.FileDone(engine.FileResult{})
	time.Sleep(180 * time.Millisecond)
	r.Stop()
	r.Transferred(1) // after Stop: no output, no panic

	entries := logs.FilterMessage("progress").All()
	require.NotEmpty(t, entries, "no progress entry in 180ms at a 50ms interval")
	assert.LessOrEqual(t, len(entries), 5, "progress must be periodic, not per chunk")
	last := entries[len(entries)-1].ContextMap()
	assert.Equal(t, int64(1_000_000), last["bytes"])
	assert.Equal(t, int64(4<<20), last["total_bytes"])
	assert.Equal(t, int64(1), last["files_done"])
	assert.Equal(t, int64(2), last["files"])
	assert.Contains(t, last, "mib_per_second")
	assert.Contains(t, last, "eta")
	assert.Empty(t, out.String(), "nothing but the logger writes in a pod")
}

// On a terminal: a live bar with bytes, rate, ETA and files; log lines go
// above it through Writer; the final state stays on screen.
func TestTerminalBar(t *testing.T) {
	var out syncBuffer
	r := New(&out, zap.NewNop(), true, 0)
	r.Planned(3, 3<<20)
	r.Transferred(1 << 20)
	r.FileDone(engine.FileResult{})
	_, err := r.Writer().Write([]byte("a log line\n"))
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	r.Transferred(2 << 20)
	r.FileDone(engine.FileResult{})
	r.FileDone(engine.FileResult{})
	r.Stop()
	_, err = r.Writer().Write([]byte("after stop\n")) // falls through to the terminal
	require.NoError(t, err)

	s := out.String()
	assert.Contains(t, s, "a log line")
	assert.Contains(t, s, "1.0 MiB / 3.0 MiB", "the bar shows bytes done and planned")
	assert.Contains(t, s, "files 1/3")
	assert.Contains(t, s, "/s  ETA ")
	assert.Contains(t, s, "3.0 MiB / 3.0 MiB", "the final state is drawn")
	assert.Contains(t, s, "100%")
	assert.Contains(t, s, "files 3/3")
	assert.True(t, strings.HasSuffix(s, "after stop\n"), "writes after Stop go straight out: %q", s[max(0, len(s)-80):])
	assert.True(t, r.term.bar.Completed(), "every planned byte arrived: the bar completes")
}

// A run that stops early leaves the bar where it was, not at 100%.
func TestTerminalBarStoppedEarly(t *testing.T) {
	var out syncBuffer
	r := New(&out, zap.NewNop(), true, 0)
	r.Planned(1, 10<<20)
	r.Transferred(1 << 20)
	time.Sleep(300 * time.Millisecond)
	r.Stop()
	assert.NotContains(t, out.String(), "100%")
	assert.True(t, r.term.bar.Aborted(), "the bar stays where the run stopped")
	assert.Contains(t, out.String(), "1.0 MiB / 10.0 MiB")
}

func TestRateFollowsCurrentSpeed(t *testing.T) {
	r := &Reporter{}
	r.sample(100<<20, time.Second) // first sample: taken as is
	s := r.snapshot()
	assert.InDelta(t, 100<<20, s.rate, 1)
	for range 30 { // 30s of a stall
		r.sample(0, time.Second)
	}
	assert.Less(t, r.snapshot().rate, float64(1<<20), "a stall must bring the rate down")
	s = snapshot{done: 50, total: 150, rate: 10}
	assert.Equal(t, "10s", s.eta())
	assert.Equal(t, "?", snapshot{total: 1}.eta())
}

func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.00 GiB"} {
		assert.Equal(t, want, Human(n))
	}
}

func TestSinkRedirects(t *testing.T) {
	var a, b bytes.Buffer
	s := NewSink(&a)
	_, _ = s.Write([]byte("one "))
	s.Set(&b)
	_, _ = s.Write([]byte("two"))
	assert.Equal(t, "one ", a.String())
	assert.Equal(t, "two", b.String())
}

// Nothing planned (--dry-run): the bar is dropped, not completed (on a
// terminal mpb then erases it; checked by hand under tmux).
func TestTerminalNothingPlanned(t *testing.T) {
	var out syncBuffer
	r := New(&out, zap.NewNop(), true, 0)
	time.Sleep(300 * time.Millisecond)
	r.Stop()
	assert.True(t, r.term.bar.Aborted())
	assert.False(t, r.term.bar.Completed())
}
