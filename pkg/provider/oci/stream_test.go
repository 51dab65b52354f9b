package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// fakeBlob serves ranges with random delays (so they complete out of
// order) and fails the ranges listed in failAt once each.
type fakeBlob struct {
	data      []byte
	mu        sync.Mutex
	failAt    map[int64]error
	calls     atomic.Int64
	permanent error
}

func (b *fakeBlob) Load(ctx context.Context, length, off int64, fn func(io.Reader) error) error {
	b.calls.Add(1)
	time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	if b.permanent != nil {
		return engine.Permanent(b.permanent)
	}
	b.mu.Lock()
	err, fail := b.failAt[off]
	delete(b.failAt, off)
	b.mu.Unlock()
	if fail {
		return err
	}
	return fn(bytes.NewReader(b.data[off : off+length]))
}

func TestLayerStreamInOrderWithRetries(t *testing.T) {
	data := make([]byte, 100_003)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	sum := sha256.Sum256(data)
	src := &fakeBlob{data: data, failAt: map[int64]error{1000: io.ErrUnexpectedEOF, 50_000: errors.New("reset")}}
	var progress atomic.Int64
	s := openStream(context.Background(), streamSpec{eng: testStreamEngine(), src: src, digest: "sha256:x", want: sum[:], size: int64(len(data)),
		chunk: 1000, ahead: 4, log: zap.NewNop(), progress: func(n int64) { progress.Add(n) }})
	defer s.Close()
	got, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got))
	assert.True(t, s.verified())
	assert.Equal(t, int64(len(data)), progress.Load())
	assert.Equal(t, int64(101+2), src.calls.Load(), "one request per range plus the two retries")
}

func TestLayerStreamDigestMismatchAtEnd(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 5000)
	wrong := sha256.Sum256([]byte("other"))
	s := openStream(context.Background(), streamSpec{eng: testStreamEngine(), src: &fakeBlob{data: data}, digest: "sha256:x", want: wrong[:],
		size: 5000, chunk: 1024, ahead: 2, log: zap.NewNop()})
	defer s.Close()
	got, err := io.ReadAll(s)
	assert.ErrorIs(t, err, ErrDigest)
	assert.Len(t, got, 5000, "every byte is delivered; only the end fails")
	assert.False(t, s.verified())
}

func TestLayerStreamPermanentErrorAndClose(t *testing.T) {
	data := make([]byte, 10_000)
	sum := sha256.Sum256(data)
	src := &fakeBlob{data: data, permanent: errors.New("403 denied")}
	s := openStream(context.Background(), streamSpec{eng: testStreamEngine(), src: src, digest: "sha256:x", want: sum[:], size: 10_000, chunk: 100, ahead: 3, log: zap.NewNop()})
	_, err := io.ReadAll(s)
	assert.ErrorContains(t, err, "403 denied")
	require.NoError(t, s.Close())
	assert.Less(t, src.calls.Load(), int64(10), "a permanent error stops the stream")

	// Closing a stream nobody reads stops its fetches too.
	s = openStream(context.Background(), streamSpec{eng: testStreamEngine(), src: &fakeBlob{data: data}, digest: "sha256:x", want: sum[:], size: 10_000, chunk: 100, ahead: 3, log: zap.NewNop()})
	require.NoError(t, s.Close())
}

func TestLayerStreamEmptyBlob(t *testing.T) {
	sum := sha256.Sum256(nil)
	s := openStream(context.Background(), streamSpec{eng: testStreamEngine(), src: &fakeBlob{}, digest: "sha256:e", want: sum[:], size: 0, chunk: 100, ahead: 2, log: zap.NewNop()})
	defer s.Close()
	got, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.True(t, s.verified())
}

// testStreamEngine retries like the real one, with test-sized delays.
func testStreamEngine() *engine.Engine {
	return engine.New(engine.WithRetry(6, time.Millisecond, 5*time.Millisecond))
}
