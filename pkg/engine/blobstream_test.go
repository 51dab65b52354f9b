package engine

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

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		return Permanent(b.permanent)
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

func TestBlobStreamInOrderWithRetries(t *testing.T) {
	data := make([]byte, 100_003)
	for i := range data {
		data[i] = byte(rand.IntN(256))
	}
	src := &fakeBlob{data: data, failAt: map[int64]error{1000: io.ErrUnexpectedEOF, 50_000: errors.New("reset")}}
	var progress atomic.Int64
	s := openBlobStream(context.Background(), streamSpec{e: testStreamEngine(), src: src, name: "blob x", want: sha256Value(data), size: int64(len(data)),
		chunk: 1000, ahead: 4, progress: func(n int64) { progress.Add(n) }})
	defer s.Close()
	got, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got))
	assert.True(t, s.verified())
	assert.Equal(t, int64(len(data)), progress.Load())
	assert.Equal(t, int64(101+2), src.calls.Load(), "one request per range plus the two retries")
}

func TestBlobStreamDigestMismatchAtEnd(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 5000)
	s := openBlobStream(context.Background(), streamSpec{e: testStreamEngine(), src: &fakeBlob{data: data}, name: "blob x", want: sha256Value([]byte("other")),
		size: 5000, chunk: 1024, ahead: 2})
	defer s.Close()
	got, err := io.ReadAll(s)
	assert.ErrorIs(t, err, ErrBlobMismatch)
	assert.Len(t, got, 5000, "every byte is delivered; only the end fails")
	assert.False(t, s.verified())
}

func TestBlobStreamPermanentErrorAndClose(t *testing.T) {
	data := make([]byte, 10_000)
	src := &fakeBlob{data: data, permanent: errors.New("403 denied")}
	s := openBlobStream(context.Background(), streamSpec{e: testStreamEngine(), src: src, name: "blob x", want: sha256Value(data), size: 10_000, chunk: 100, ahead: 3})
	_, err := io.ReadAll(s)
	assert.ErrorContains(t, err, "403 denied")
	require.NoError(t, s.Close())
	assert.Less(t, src.calls.Load(), int64(10), "a permanent error stops the stream")

	// Closing a stream nobody reads stops its fetches too.
	s = openBlobStream(context.Background(), streamSpec{e: testStreamEngine(), src: &fakeBlob{data: data}, name: "blob x", want: sha256Value(data), size: 10_000, chunk: 100, ahead: 3})
	require.NoError(t, s.Close())
}

func TestBlobStreamEmptyBlob(t *testing.T) {
	s := openBlobStream(context.Background(), streamSpec{e: testStreamEngine(), src: &fakeBlob{}, name: "blob e", want: sha256Value(nil), size: 0, chunk: 100, ahead: 2})
	defer s.Close()
	got, err := io.ReadAll(s)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.True(t, s.verified())
}

// testStreamEngine retries like the real one, with test-sized delays.
func testStreamEngine() *Engine {
	return New(WithRetry(6, time.Millisecond, 5*time.Millisecond))
}

func sha256Value(b []byte) checksum.Value {
	s := sha256.Sum256(b)
	return checksum.Value{Algorithm: checksum.SHA256, Sum: s[:]}
}
