package faultproxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// bodyWriter copies one response body to the client, applying a fault,
// counting bytes and honouring the hold gate.
type bodyWriter struct {
	p      *Proxy
	w      http.ResponseWriter
	rc     *http.ResponseController
	r      *http.Request
	object bool // counts toward ObjectBytes and the hold gate
}

// copy streams resp's body; rule (nil for none) picks the fault.
func (b *bodyWriter) copy(resp *http.Response, rule *Rule) error {
	at := int64(-1) // body offset of the fault; -1: none
	var swap *os.File
	var base int64 // object offset of the body's first byte (Swap)
	if rule != nil {
		at = faultOffset(rule.At, resp.ContentLength)
		if rule.Kind == Swap {
			f, err := os.Open(rule.SwapFile)
			if err != nil {
				return fmt.Errorf("swap file: %w", err)
			}
			defer f.Close()
			swap, base = f, rangeStart(resp)
		}
	}
	buf := make([]byte, 32<<10)
	var off int64 // body bytes read from the backend so far
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			end := off + int64(n)
			if rule != nil && at >= 0 {
				switch rule.Kind {
				case Flip:
					if at >= off && at < end {
						chunk[at-off] ^= 1
					}
				case Swap:
					if from := max(at, off); from < end {
						// Positions past the other version's end stay as is.
						_, _ = swap.ReadAt(chunk[from-off:], base+from)
					}
				case Reset, Truncate, Stall:
					if at >= off && at < end {
						k := at - off
						if err := b.write(chunk[:k]); err != nil {
							return err
						}
						chunk = chunk[k:]
						switch rule.Kind {
						case Reset:
							return resetConn(b.rc)
						case Truncate:
							_ = b.rc.Flush()
							return errFault // the handler returns: a clean, short chunked body
						case Stall:
							_ = b.rc.Flush()
							if !sleep(b.r, rule.Stall.d()) {
								return b.r.Context().Err()
							}
						}
					}
				}
			}
			if err := b.write(chunk); err != nil {
				return err
			}
			off = end
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr // backend failed: the server cuts the short body
		}
	}
}

// write hands p to the client in as many pieces as the hold gate allows.
func (b *bodyWriter) write(p []byte) error {
	for len(p) > 0 {
		n := int64(len(p))
		if b.object {
			var wait <-chan struct{}
			n, wait = b.p.reserve(n)
			if n == 0 {
				// Everything allowed is out: make sure the client has it,
				// then hold until released or the client is gone.
				_ = b.rc.Flush()
				if err := waitOn(b.r.Context(), wait); err != nil {
					return err
				}
				continue
			}
		}
		m, err := b.w.Write(p[:n])
		if b.object && int64(m) < n {
			b.p.objectBytes.Add(int64(m) - n) // return the unsent reservation
		}
		b.p.bytes.Add(int64(m))
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// reserve claims up to n object bytes under the hold gate; when none may be
// sent it returns 0 and the channel that closes on release.
func (p *Proxy) reserve(n int64) (int64, <-chan struct{}) {
	p.holdMu.Lock()
	defer p.holdMu.Unlock()
	if p.holdAfter > 0 {
		left := p.holdAfter - p.objectBytes.Load()
		if left <= 0 {
			return 0, p.released
		}
		n = min(n, left)
	}
	p.objectBytes.Add(n)
	return n, nil
}

func waitOn(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// faultOffset resolves Rule.At against the body length: negative means the
// middle, and an offset past the end is pulled in so the fault still hits.
func faultOffset(at, length int64) int64 {
	if at < 0 {
		if length > 0 {
			return length / 2
		}
		return 0
	}
	if length > 0 && at >= length {
		return length - 1
	}
	return at
}

// rangeStart is the object offset of a ranged response's first byte, from
// Content-Range ("bytes 100-199/1000"); 0 for a whole-object response.
func rangeStart(resp *http.Response) int64 {
	cr := resp.Header.Get("Content-Range")
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return 0
	}
	return n
}
