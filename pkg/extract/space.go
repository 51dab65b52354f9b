package extract

import (
	"fmt"
	"io"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/storage-initializer/storage-initializer/pkg/human"
)

// FreeSpace returns a FreeBytes function for the filesystem holding dir:
// the bytes an unprivileged user may still write there (-1 when statfs
// fails: no check rather than a false refusal).
func FreeSpace(dir string) func() int64 {
	return func() int64 {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return -1
		}
		return int64(st.Bavail) * int64(st.Bsize)
	}
}

// room fails when need bytes for rel exceed the free space reported.
func (t *tree) room(rel string, need int64) error {
	if need <= 0 || t.free == nil {
		return nil
	}
	if free := t.free(); free >= 0 && need > free {
		return fmt.Errorf("%w for %s: need %s, %s available: free space or use a larger volume",
			ErrNoSpace, rel, human.Bytes(need), human.Bytes(free))
	}
	return nil
}

// spaceReader re-checks, every spaceCheckEvery bytes, that what is left of
// a file still fits: other writers (parallel layers, other containers on
// the volume) share the filesystem.
type spaceReader struct {
	t       *tree
	rel     string
	r       io.Reader
	left    int64 // bytes of the file not read yet
	counted int64 // bytes read since the last check
}

func (s *spaceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.left -= int64(n)
	s.counted += int64(n)
	if s.counted >= spaceCheckEvery {
		s.counted = 0
		if cerr := s.t.room(s.rel, s.left); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

// ratioReader bounds the inflated bytes read from r against the stored
// bytes consumed (input), once past ratioGrace.
type ratioReader struct {
	t     *tree
	r     io.Reader
	input func() int64
	n     int64
}

func (c *ratioReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if cerr := c.t.ratio(c.n, c.input()); cerr != nil {
		return n, cerr
	}
	return n, err
}

// ratio fails when inflated bytes exceed MaxRatio times the stored bytes.
func (t *tree) ratio(inflated, stored int64) error {
	limit := t.opts.MaxRatio
	if limit < 0 || inflated <= ratioGrace || stored <= 0 || inflated/limit <= stored {
		return nil
	}
	return fmt.Errorf("%w: %s inflated from %s stored, more than %d× (a decompression bomb?): "+
		"if the archive is genuine, raise or disable the inflation ratio limit", ErrLimit,
		human.Bytes(inflated), human.Bytes(stored), limit)
}

// inputCounter is implemented by the reader Decompress returns.
type inputCounter interface{ InputBytes() int64 }

// countingReader counts the bytes read through it; atomically, since a
// concurrent zstd decoder reads its input from a goroutine of its own.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
