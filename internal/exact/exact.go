// Package exact holds the one reader every provider's loader hands the
// engine: it yields exactly the bytes of the range asked for, and a body
// that ends early (a chunked response cut cleanly, a Content-Length the
// transport did not check) reads as io.ErrUnexpectedEOF, never as a clean
// end of a shorter range. See engine.Loader.
package exact

import "io"

// Reader returns the first n bytes of r; io.ErrUnexpectedEOF when r ends
// before n bytes.
func Reader(r io.Reader, n int64) io.Reader { return &reader{r: io.LimitReader(r, n), left: n} }

type reader struct {
	r    io.Reader
	left int64
}

func (e *reader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
