package engine

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// memSource serves a byte slice through the Loader contract and lets tests
// inject faults per call.
type memSource struct {
	data     []byte
	calls    atomic.Int64
	served   atomic.Int64
	inflight atomic.Int64
	maxIn    atomic.Int64
	// fault, when set, may replace the body or return an error for a call.
	fault func(call int64, off, length int64) (body io.Reader, err error)
	gate  chan struct{} // when set, each call waits for a token
}

func (m *memSource) Load(ctx context.Context, length, offset int64, fn func(io.Reader) error) error {
	call := m.calls.Add(1)
	n := m.inflight.Add(1)
	defer m.inflight.Add(-1)
	for {
		old := m.maxIn.Load()
		if n <= old || m.maxIn.CompareAndSwap(old, n) {
			break
		}
	}
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var body io.Reader = bytes.NewReader(m.data[offset : offset+length])
	if m.fault != nil {
		b, err := m.fault(call, offset, length)
		if err != nil {
			return err
		}
		if b != nil {
			body = b
		}
	}
	cr := &countingReader{r: body, n: &m.served}
	return fn(ctxReader{ctx, cr})
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// ctxReader makes a blocked body notice cancellation, as an HTTP body does.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func sumOf(alg checksum.Algorithm, b []byte) checksum.Value {
	h := alg.New()
	h.Write(b)
	return checksum.Value{Algorithm: alg, Sum: h.Sum(nil)}
}

// collector is an Observer recording events.
type collector struct {
	mu    sync.Mutex
	files []FileResult
	bytes atomic.Int64
}

func (c *collector) Planned(int, int64)    {}
func (c *collector) Transferred(n int64)   { c.bytes.Add(n) }
func (c *collector) FileDone(r FileResult) { c.mu.Lock(); c.files = append(c.files, r); c.mu.Unlock() }

func requireFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := readFile(path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "%s differs from the source (%d vs %d bytes)", path, len(got), len(want))
}
