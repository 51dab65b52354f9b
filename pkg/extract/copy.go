package extract

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
)

// asyncMin is the file size from which writes move to their own goroutine.
const asyncMin = 8 << 20

const copyBuf = 1 << 20

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBuf); return &b }}

// copyFile writes exactly size bytes of r to f. For large files the write
// system calls run in a second goroutine, two buffers behind: the reader is
// usually a single-threaded decompressor, the bottleneck of a layer, and it
// should not also pay for copying into the page cache.
func copyFile(ctx context.Context, f *os.File, r io.Reader, size int64) (int64, error) {
	src := ctxReader{ctx, io.LimitReader(r, size)}
	if size < asyncMin {
		buf := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(buf)
		return io.CopyBuffer(onlyWriter{f}, src, *buf)
	}
	const nbuf = 3
	free := make(chan *[]byte, nbuf)
	for range nbuf {
		free <- copyBufs.Get().(*[]byte)
	}
	full := make(chan []byte, nbuf)
	werr := make(chan error, 1)
	go func() {
		var err error
		for b := range full {
			if err == nil {
				_, err = f.Write(b)
			}
			bp := b[:cap(b)]
			free <- &bp
		}
		werr <- err
	}()
	var n int64
	var rerr error
	for {
		bp := <-free
		k, err := io.ReadFull(src, *bp)
		if k > 0 {
			n += int64(k)
			full <- (*bp)[:k]
		} else {
			free <- bp
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				rerr = err
			}
			break
		}
	}
	close(full)
	err := <-werr
	for range nbuf {
		copyBufs.Put(<-free)
	}
	if rerr != nil {
		return n, rerr
	}
	return n, err
}
