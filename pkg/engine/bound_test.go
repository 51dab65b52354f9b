package engine

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/storage-initializer/storage-initializer/pkg/checksum"
)

// gauge counts the requests in flight across every source of a run.
type gauge struct{ now, max atomic.Int64 }

type gaugedSource struct {
	Loader
	g *gauge
}

func (s gaugedSource) Load(ctx context.Context, length, offset int64, fn func(io.Reader) error) error {
	n := s.g.now.Add(1)
	defer s.g.now.Add(-1)
	for {
		old := s.g.max.Load()
		if n <= old || s.g.max.CompareAndSwap(old, n) {
			break
		}
	}
	time.Sleep(2 * time.Millisecond) // long enough for requests to overlap
	return s.Loader.Load(ctx, length, offset, fn)
}

// --concurrency N bounds every request of a run: file chunks and the
// ranges of units' blob streams together, whatever the number of files,
// units and blobs.
func TestOneRequestBoundAcrossFilesAndUnits(t *testing.T) {
	for _, n := range []int{1, 3} {
		g := &gauge{}
		var files []File
		for i := range 4 {
			data := randBytes(uint64(10+i), 300_000)
			files = append(files, File{Path: "f" + string(rune('a'+i)), Size: int64(len(data)),
				Expect: []checksum.Value{sumOf(checksum.CRC32C, data)}, Source: gaugedSource{&memSource{data: data}, g}})
		}
		b := blobs()
		u := testUnit(b, map[string]*memSource{})
		for i := range u.Blobs {
			u.Blobs[i].Source = gaugedSource{u.Blobs[i].Source, g}
		}
		e := New(WithConcurrency(n), WithChunkSize(16<<10), WithRetry(2, time.Millisecond, time.Millisecond))
		_, err := e.Run(context.Background(), t.TempDir(), &Plan{Source: "test", Files: files, Units: []Unit{u}})
		require.NoError(t, err)
		assert.LessOrEqual(t, g.max.Load(), int64(n), "at most --concurrency requests in flight")
		assert.Equal(t, int64(n), g.max.Load(), "the bound is reached (the test can fail)")
	}
}
