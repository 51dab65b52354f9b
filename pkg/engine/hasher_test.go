package engine

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// hashFixture is a temp file the tests write chunks into while a hotHasher
// hashes it, as fileRun does: writes, then advance over the done prefix.
type hashFixture struct {
	t      *testing.T
	f      *os.File
	data   []byte
	chunk  int64
	mu     sync.Mutex
	done   []bool
	h      *hotHasher
	lanes  []*digestLane
	writes int64 // bytes per write call (the engine's buffer)
}

func newHashFixture(t *testing.T, data []byte, chunk int64, lanes ...*digestLane) *hashFixture {
	f, err := os.Create(filepath.Join(t.TempDir(), "part"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	n := (int64(len(data)) + chunk - 1) / chunk
	fx := &hashFixture{t: t, f: f, data: data, chunk: chunk, done: make([]bool, n), lanes: lanes, writes: 4 << 10}
	fx.h = newHotHasher(f, int64(len(data)), lanes...)
	return fx
}

func (fx *hashFixture) bounds(i int) (int64, int64) {
	off := int64(i) * fx.chunk
	return off, min(off+fx.chunk, int64(len(fx.data)))
}

// attempt writes bytes of chunk i (body, which may differ from the data)
// through an inline hash, stopping after cut bytes when cut >= 0.
func (fx *hashFixture) attempt(ih *inlineHash, i int, body []byte, cut int) {
	off, _ := fx.bounds(i)
	ih.attempt()
	for n := 0; n < len(body) && (cut < 0 || n < cut); {
		m := min(int(fx.writes), len(body)-n)
		if cut >= 0 {
			m = min(m, cut-n)
		}
		_, err := fx.f.WriteAt(body[n:n+m], off+int64(n))
		require.NoError(fx.t, err)
		ih.wrote(body[n : n+m])
		n += m
	}
}

// complete marks chunk i done and advances the hasher over the prefix.
func (fx *hashFixture) complete(i int) {
	fx.mu.Lock()
	fx.done[i] = true
	j := 0
	for j < len(fx.done) && fx.done[j] {
		j++
	}
	ready := int64(len(fx.data))
	if j < len(fx.done) {
		ready, _ = fx.bounds(j)
	}
	fx.mu.Unlock()
	fx.h.advance(ready)
}

// fetch is one successful fetch of chunk i.
func (fx *hashFixture) fetch(i int) {
	off, end := fx.bounds(i)
	ih := fx.h.inline(off)
	fx.attempt(ih, i, fx.data[off:end], -1)
	ih.finish(true)
	fx.complete(i)
}

func (fx *hashFixture) sums() [][][]byte {
	got, err := fx.h.result()
	require.NoError(fx.t, err)
	return got
}

func sha256Bytes(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestHotHasherInOrderHashesEverythingInline(t *testing.T) {
	data := randBytes(21, 300<<10)
	fx := newHashFixture(t, data, 64<<10, newDigestLane(checksum.SHA256, []int64{int64(len(data))}))
	for i := range fx.done {
		fx.fetch(i)
	}
	assert.Equal(t, sha256Bytes(data), fx.sums()[0][0])
	assert.Equal(t, int64(len(data)), fx.h.inlined.Load(), "chunks arriving in order are hashed from their buffers")
	assert.Zero(t, fx.h.readBack.Load(), "nothing is read back when chunks arrive in order")
}

func TestHotHasherOutOfOrderChunksReadBackOnlyWhatArrivedEarly(t *testing.T) {
	data := randBytes(22, 1<<20+123)
	chunk := int64(64 << 10)
	fx := newHashFixture(t, data, chunk, newDigestLane(checksum.SHA256, []int64{int64(len(data))}))
	// Chunks 1..n-1 arrive before chunk 0, which then holds the frontier.
	for i := len(fx.done) - 1; i >= 1; i-- {
		fx.fetch(i)
	}
	fx.fetch(0)
	assert.Equal(t, sha256Bytes(data), fx.sums()[0][0])
	assert.Equal(t, chunk, fx.h.inlined.Load(), "only the frontier chunk hashes inline")
	assert.Equal(t, int64(len(data))-chunk, fx.h.readBack.Load())

	// Concurrent writers in a random order, with the race detector.
	for seed := range uint64(5) {
		fx := newHashFixture(t, data, chunk, newDigestLane(checksum.SHA256, []int64{int64(len(data))}))
		order := rand.New(rand.NewPCG(seed, 1)).Perm(len(fx.done))
		var wg sync.WaitGroup
		for _, i := range order {
			wg.Go(func() { fx.fetch(i) })
		}
		wg.Wait()
		assert.Equal(t, sha256Bytes(data), fx.sums()[0][0], "seed %d", seed)
		// Every byte is hashed once: inline, or read back.
		assert.Equal(t, int64(len(data)), fx.h.inlined.Load()+fx.h.readBack.Load(), "seed %d", seed)
	}
}

func TestHotHasherTakesOverAChunkMidwayAndCatchesUp(t *testing.T) {
	data := randBytes(23, 256<<10)
	chunk := int64(128 << 10)
	fx := newHashFixture(t, data, chunk, newDigestLane(checksum.SHA256, []int64{int64(len(data))}))
	// Chunk 1 is half written while chunk 0 is still missing: not hashed.
	ih1 := fx.h.inline(chunk)
	ih1.attempt()
	half := data[chunk : chunk+chunk/2]
	_, err := fx.f.WriteAt(half, chunk)
	require.NoError(t, err)
	ih1.wrote(half)
	assert.False(t, ih1.owned)
	fx.fetch(0)
	// Its next write takes the frontier over: the half is read back once,
	// the rest is hashed from the buffer.
	rest := data[chunk+chunk/2:]
	_, err = fx.f.WriteAt(rest, chunk+chunk/2)
	require.NoError(t, err)
	ih1.wrote(rest)
	require.True(t, ih1.owned)
	ih1.finish(true)
	fx.complete(1)
	assert.Equal(t, sha256Bytes(data), fx.sums()[0][0])
	assert.Equal(t, chunk+int64(len(rest)), fx.h.inlined.Load())
	assert.Equal(t, int64(len(half)), fx.h.readBack.Load())
}

// A frontier attempt that hashed bytes inline and then failed must not
// leave them in the digest: the retry writes other bytes over them (here
// the first attempt's were corrupt, as a body failing a transactional
// checksum is), and the digest has to be the one of what is on disk.
func TestHotHasherFailedInlineAttemptRestartsFromDisk(t *testing.T) {
	data := randBytes(24, 200<<10)
	chunk := int64(64 << 10)
	corrupt := append([]byte(nil), data[:chunk]...)
	corrupt[10] ^= 0xff

	t.Run("attempt fails", func(t *testing.T) {
		fx := newHashFixture(t, data, chunk, newDigestLane(checksum.SHA256, []int64{int64(len(data))}))
		ih := fx.h.inline(0)
		fx.attempt(ih, 0, corrupt, int(chunk/2)) // hashed inline, then the body broke
		require.True(t, ih.owned)
		fx.attempt(ih, 0, data[:chunk], -1) // the Loader's retry: a new fn call
		ih.finish(true)
		fx.complete(0)
		for i := 1; i < len(fx.done); i++ {
			fx.fetch(i)
		}
		assert.Equal(t, sha256Bytes(data), fx.sums()[0][0])
	})
	t.Run("the whole fetch fails, another worker refetches", func(t *testing.T) {
		fx := newHashFixture(t, data, chunk, newDigestLane(checksum.SHA256, []int64{int64(len(data))}))
		fx.fetch(1)
		ih := fx.h.inline(0)
		fx.attempt(ih, 0, corrupt, -1)
		ih.finish(false) // the loader failed after fn returned
		fx.fetch(0)
		for i := 2; i < len(fx.done); i++ {
			fx.fetch(i)
		}
		assert.Equal(t, sha256Bytes(data), fx.sums()[0][0])
	})
}

func TestHotHasherPartsLanesGitSHA1AndEmptyFiles(t *testing.T) {
	data := randBytes(25, 3<<20+77)
	// Parts that do not line up with the read-back block.
	bounds := []int64{1<<20 + 5, 2<<20 + 9, int64(len(data))}
	comp := newDigestLane(checksum.SHA256, bounds)
	seal := newDigestLane(checksum.SHA256, []int64{int64(len(data))})
	md := newDigestLane(checksum.MD5, []int64{int64(len(data))})
	git := newDigestLane(checksum.GitSHA1, []int64{int64(len(data))})
	fx := newHashFixture(t, data, 1<<20+5, comp, seal, md, git)
	fx.writes = 256 << 10
	for i := len(fx.done) - 1; i >= 0; i-- {
		fx.fetch(i)
	}
	got := fx.sums()
	var prev int64
	for i, b := range bounds {
		assert.Equal(t, sha256Bytes(data[prev:b]), got[0][i], "part %d", i+1)
		prev = b
	}
	assert.Equal(t, sha256Bytes(data), got[1][0])
	m := md5.Sum(data)
	assert.Equal(t, m[:], got[2][0])
	g := sha1.Sum(append([]byte(fmt.Sprintf("blob %d\x00", len(data))), data...))
	assert.Equal(t, g[:], got[3][0], "git blob sha1 is seeded with the size")

	empty := newHashFixture(t, nil, 64<<10, newDigestLane(checksum.SHA256, []int64{0}), newDigestLane(checksum.GitSHA1, []int64{0}))
	got = empty.sums()
	assert.Equal(t, sha256Bytes(nil), got[0][0])
	g = sha1.Sum([]byte("blob 0\x00"))
	assert.Equal(t, g[:], got[1][0])
}

func TestHotHasherStopFailsTheResult(t *testing.T) {
	data := randBytes(26, 100<<10)
	fx := newHashFixture(t, data, 64<<10, newDigestLane(checksum.SHA256, []int64{int64(len(data))}))
	fx.fetch(0)
	fx.h.stop()
	_, err := fx.h.result()
	require.ErrorContains(t, err, "hasher stopped")
}

// A temp file shorter than the bytes reported complete (truncated under
// the hasher) fails the digest with an error; the mapping's fault must
// not crash the process.
func TestHotHasherTruncatedFileIsAnErrorNotACrash(t *testing.T) {
	data := randBytes(27, 100<<10)
	f, err := os.Create(filepath.Join(t.TempDir(), "part"))
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Write(data)
	require.NoError(t, err)
	size := int64(8 << 20)
	h := newHotHasher(f, size, newDigestLane(checksum.SHA256, []int64{size}))
	h.advance(size)
	_, err = h.result()
	require.ErrorContains(t, err, "missing from the temporary file")
}

// A reader that is not a file is read back through a buffer.
func TestHotHasherReadsBackWithoutAMapping(t *testing.T) {
	data := randBytes(28, 9<<20+3)
	sums, err := hashReadBack(bytes.NewReader(data), newDigestLane(checksum.SHA256, []int64{int64(len(data))}), int64(len(data)))
	require.NoError(t, err)
	assert.Equal(t, sha256Bytes(data), sums[0])
}

// Bytes at offsets beyond the planned size can never match (and never
// panic); a lane covers exactly the file's planned bytes.
func TestDigestLaneBeyondItsSizeNeverMatches(t *testing.T) {
	l := newDigestLane(checksum.SHA256, []int64{10})
	l.write(make([]byte, 20), 0)
	assert.Equal(t, [][]byte{sha256Bytes(make([]byte, 10))}, l.sums)
	l = newDigestLane(checksum.SHA256, []int64{10})
	l.write(make([]byte, 5), 0)
	l.write(make([]byte, 5), 15)
	assert.Empty(t, l.sums)
}
