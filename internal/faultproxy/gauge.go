package faultproxy

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Gauge measures requests in flight at a server: wrap the server's handler
// (or a Proxy) with it and read Max after the run. A request counts from
// the moment the server sees it until its last body byte is handed to the
// connection (for a body of known length) or its handler returns (no body,
// or chunked): from then on the client may start its next request, so a
// client that keeps at most N requests in flight never shows more than N.
type Gauge struct {
	// Delay, when set, holds every request this long before it is served,
	// so that requests a client issues together overlap at the server and
	// a bound is reached (and a broken bound exceeded) on a fast loopback.
	Delay time.Duration
	// Count, when set, picks the requests that count; nil counts all.
	Count func(*http.Request) bool

	cur, peak atomic.Int64
	total     atomic.Int64
	mu        sync.Mutex
	seen      []string // METHOD PATH of every counted request
}

// Wrap returns h measured by g.
func (g *Gauge) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.Count != nil && !g.Count(r) {
			h.ServeHTTP(w, r)
			return
		}
		g.total.Add(1)
		g.mu.Lock()
		g.seen = append(g.seen, r.Method+" "+r.URL.Path)
		g.mu.Unlock()
		n := g.cur.Add(1)
		for {
			p := g.peak.Load()
			if n <= p || g.peak.CompareAndSwap(p, n) {
				break
			}
		}
		gw := &gaugeWriter{ResponseWriter: w, g: g, left: -1}
		defer gw.done()
		if g.Delay > 0 && !sleep(r, g.Delay) {
			return
		}
		h.ServeHTTP(gw, r)
	})
}

// Max is the most requests seen in flight at once since the last Reset.
func (g *Gauge) Max() int64 { return g.peak.Load() }

// Current is the requests in flight now.
func (g *Gauge) Current() int64 { return g.cur.Load() }

// Total is the requests counted since the last Reset.
func (g *Gauge) Total() int64 { return g.total.Load() }

// Seen lists "METHOD PATH" of the requests counted since the last Reset.
func (g *Gauge) Seen() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.seen...)
}

// Reset zeroes Max, Total and Seen (requests in flight keep counting).
func (g *Gauge) Reset() {
	g.peak.Store(g.cur.Load())
	g.total.Store(0)
	g.mu.Lock()
	g.seen = nil
	g.mu.Unlock()
}

// gaugeWriter ends its request's count when the last byte of a body of
// known length is about to be written, or when the handler returns.
type gaugeWriter struct {
	http.ResponseWriter
	g     *Gauge
	left  int64 // body bytes still to write; -1 unknown
	wrote bool  // header written
	ended bool
}

func (w *gaugeWriter) done() {
	if !w.ended {
		w.ended = true
		w.g.cur.Add(-1)
	}
}

func (w *gaugeWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if n, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); err == nil && n >= 0 {
			w.left = n
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *gaugeWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.left >= 0 {
		w.left -= int64(len(p))
		if w.left <= 0 {
			w.done() // the client may have it all once this write is out
		}
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *gaugeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
