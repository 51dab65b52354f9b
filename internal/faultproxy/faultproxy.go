// Package faultproxy is a reverse proxy for tests that sits in front of a
// real server (MinIO, a registry) and injects the faults a download meets in
// the wild: connection resets and clean truncations mid-body, stalls, 500 /
// 503 SlowDown / 429 answers with Retry-After, flipped bits and a different
// object version served halfway through. Faults follow explicit rules or a
// seeded random schedule; the proxy counts requests, bytes and faults.
//
// The proxy forwards the Host header unchanged: a client signs its S3
// requests (SigV4) for the proxy's address, and MinIO checks the signature
// against the Host it receives, so signed requests stay valid.
//
// Tests use it in process (New, Start), the binary's end-to-end tests in
// cmd/ too. cmd/faultproxy runs it as its own process, driven over its
// admin API (see admin.go), for trying the binary against faults by hand.
package faultproxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// AdminPrefix is the path under which the admin API answers (when enabled).
// No S3 bucket or registry path can start with an underscore.
const AdminPrefix = "/_faultproxy/"

// Proxy is the fault-injecting reverse proxy. It is an http.Handler.
type Proxy struct {
	// URL is where Start serves the proxy (empty for New).
	URL string

	target *url.URL
	tr     *http.Transport
	admin  bool

	cfgMu sync.RWMutex
	cfg   *compiled

	// hold gate: see Config.HoldAfter.
	holdMu    sync.Mutex
	holdAfter int64
	released  chan struct{}

	requests    atomic.Int64
	active      atomic.Int64 // requests being served now
	objectReads atomic.Int64
	objectBytes atomic.Int64 // body bytes of object reads handed to clients
	bytes       atomic.Int64 // all body bytes handed to clients
	faultsMu    sync.Mutex
	faults      map[Kind]int64
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithAdmin serves the admin API under AdminPrefix.
func WithAdmin() Option { return func(p *Proxy) { p.admin = true } }

// New returns a proxy to target (e.g. http://127.0.0.1:9000) with cfg.
func New(target string, cfg Config, opts ...Option) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("faultproxy: target %q is not an http(s) URL", target)
	}
	p := &Proxy{
		target: u,
		// Compression off: the proxy must pass stored bytes through as is.
		tr: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 256,
			IdleConnTimeout: 30 * time.Second},
		faults: map[Kind]int64{},
	}
	for _, o := range opts {
		o(p)
	}
	if err := p.SetConfig(cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// Start serves a new proxy on a loopback port for the duration of the test
// and returns it with its URL.
func Start(tb testing.TB, target string, cfg Config, opts ...Option) (*Proxy, string) {
	tb.Helper()
	p, err := New(target, cfg, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(p)
	p.URL = srv.URL
	tb.Cleanup(func() {
		p.Release() // unblock held responses so Close does not wait on them
		srv.Close()
		p.Close()
	})
	return p, srv.URL
}

// SetConfig replaces the fault schedule. Rule counters and the random
// generator restart from the new seed; a hold gate is re-armed from the
// current byte count.
func (p *Proxy) SetConfig(cfg Config) error {
	c, err := compile(cfg)
	if err != nil {
		return fmt.Errorf("faultproxy: %w", err)
	}
	p.cfgMu.Lock()
	p.cfg = c
	p.cfgMu.Unlock()
	p.holdMu.Lock()
	if p.released != nil {
		close(p.released)
	}
	p.released = make(chan struct{})
	p.holdAfter = 0
	if cfg.HoldAfter > 0 {
		p.holdAfter = p.objectBytes.Load() + cfg.HoldAfter
	}
	p.holdMu.Unlock()
	return nil
}

// Release lets held responses go on and disarms the hold gate.
func (p *Proxy) Release() {
	p.holdMu.Lock()
	defer p.holdMu.Unlock()
	p.holdAfter = 0
	if p.released != nil {
		close(p.released)
	}
	p.released = make(chan struct{})
}

// Close drops idle connections to the backend.
func (p *Proxy) Close() { p.tr.CloseIdleConnections() }

// ServeHTTP forwards r to the backend, injecting the fault its rules pick.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.admin && strings.HasPrefix(r.URL.Path, AdminPrefix) {
		p.serveAdmin(w, r)
		return
	}
	p.requests.Add(1)
	p.active.Add(1)
	defer p.active.Add(-1)
	p.cfgMu.RLock()
	cfg := p.cfg
	p.cfgMu.RUnlock()
	object := cfg.counts(r)
	if object {
		p.objectReads.Add(1)
	}
	rule := cfg.decide(r)
	if rule != nil {
		p.count(rule.Kind)
	}

	if rule != nil {
		switch rule.Kind {
		case InternalError, SlowDown, TooManyRequests:
			writeError(w, r, rule)
			return
		case StallHeaders:
			if !sleep(r, time.Duration(rule.Stall)) {
				return
			}
		}
	}

	resp, err := p.forward(r)
	if err != nil {
		http.Error(w, "faultproxy: backend: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body := rule
	if body != nil && (resp.StatusCode/100 != 2 || r.Method == http.MethodHead) {
		body = nil // faults hit successful bodies only
	}
	copyHeader(w.Header(), resp.Header)
	if body != nil && body.Kind == Truncate {
		// Chunked encoding lets the body end early without any error.
		w.Header().Del("Content-Length")
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	bw := &bodyWriter{p: p, w: w, rc: http.NewResponseController(w), r: r, object: object}
	_ = bw.copy(resp, body)
}

// forward sends r to the backend with its Host header unchanged.
func (p *Proxy) forward(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = p.target.Scheme
	out.URL.Host = p.target.Host
	out.Host = r.Host // the client signed for this Host: keep it
	if r.ContentLength == 0 {
		out.Body = nil
	}
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	return p.tr.RoundTrip(out)
}

func (p *Proxy) count(k Kind) {
	p.faultsMu.Lock()
	p.faults[k]++
	p.faultsMu.Unlock()
}

// Stats is what the proxy has done since the counters were last reset.
type Stats struct {
	Requests int64 `json:"requests"` // every proxied request
	// Active is the requests being served now: a test that killed a client
	// waits for 0 before it resets the counters, or bytes the old handlers
	// still push into dead connections would count for the next run.
	Active      int64 `json:"active"`
	ObjectReads int64 `json:"object_reads"` // GETs of object bytes (see IsObjectRead)
	// ObjectBytes is the body bytes of object reads handed to clients.
	ObjectBytes int64          `json:"object_bytes"`
	Bytes       int64          `json:"bytes"` // all body bytes handed to clients
	Faults      map[Kind]int64 `json:"faults"`
	// Held says the hold gate is closed: HoldAfter bytes were served.
	Held bool `json:"held"`
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	p.faultsMu.Lock()
	faults := make(map[Kind]int64, len(p.faults))
	for k, v := range p.faults {
		faults[k] = v
	}
	p.faultsMu.Unlock()
	p.holdMu.Lock()
	held := p.holdAfter > 0 && p.objectBytes.Load() >= p.holdAfter
	p.holdMu.Unlock()
	return Stats{Requests: p.requests.Load(), Active: p.active.Load(), ObjectReads: p.objectReads.Load(),
		ObjectBytes: p.objectBytes.Load(), Bytes: p.bytes.Load(), Faults: faults, Held: held}
}

// ResetStats zeroes the counters (and re-arms a hold gate from zero).
func (p *Proxy) ResetStats() {
	p.holdMu.Lock()
	if p.holdAfter > 0 {
		p.holdAfter -= p.objectBytes.Load()
	}
	p.requests.Store(0)
	p.objectReads.Store(0)
	p.objectBytes.Store(0)
	p.bytes.Store(0)
	p.holdMu.Unlock()
	p.faultsMu.Lock()
	p.faults = map[Kind]int64{}
	p.faultsMu.Unlock()
}

// hopHeaders are per-connection headers a proxy must not forward.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
	for _, h := range hopHeaders {
		dst.Del(h)
	}
}

// sleep waits d or until the client goes away; it reports whether the
// client is still there.
func sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// writeError answers like the backend would when it is overloaded or
// broken: an S3 XML error, or a registry JSON error under /v2/.
func writeError(w http.ResponseWriter, r *http.Request, rule *Rule) {
	status, code, msg := http.StatusInternalServerError, "InternalError", "We encountered an internal error, please try again."
	switch rule.Kind {
	case SlowDown:
		status, code, msg = http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate."
	case TooManyRequests:
		status, code, msg = http.StatusTooManyRequests, "TooManyRequests", "Too many requests."
	}
	if rule.Kind != InternalError {
		w.Header().Set("Retry-After", strconv.Itoa(rule.RetryAfter))
	}
	w.Header().Set("X-Amz-Request-Id", "faultproxy")
	if strings.HasPrefix(r.URL.Path, "/v2/") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, strings.ToUpper(code), msg)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>%s</Code><Message>%s</Message><Resource>%s</Resource><RequestId>faultproxy</RequestId></Error>`,
		code, msg, r.URL.Path)
}

// resetConn hijacks the connection and closes it with a TCP RST.
func resetConn(rc *http.ResponseController) error {
	_ = rc.Flush()
	conn, buf, err := rc.Hijack()
	if err != nil {
		return err
	}
	_ = buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close sends RST instead of FIN
	}
	return conn.Close()
}

// errFault ends a body on purpose.
var errFault = io.ErrUnexpectedEOF
