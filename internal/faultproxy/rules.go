package faultproxy

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Kind is one fault the proxy can inject.
type Kind string

// The faults. Body offsets (Rule.At) count from the first byte of the
// response body; a negative At means half of the body.
const (
	// Reset sends At body bytes, then resets the TCP connection (RST), as a
	// dying load balancer or a NAT table flush would.
	Reset Kind = "reset"
	// Truncate ends the body cleanly after At bytes: Content-Length is
	// dropped and the chunked body is terminated properly, so the client
	// sees no transport error at all — only fewer bytes than it asked for.
	Truncate Kind = "truncate"
	// Stall sends At body bytes, then nothing for Rule.Stall, then the rest.
	// With StallHeaders the stall comes before the status line instead.
	Stall Kind = "stall"
	// StallHeaders stalls before sending anything (a server that accepted
	// the connection and hangs).
	StallHeaders Kind = "stall-headers"
	// InternalError answers 500 with an S3 (or registry) error body.
	InternalError Kind = "500"
	// SlowDown answers 503 SlowDown with Retry-After, as S3 does when a
	// prefix is throttled.
	SlowDown Kind = "503-slowdown"
	// TooManyRequests answers 429 with Retry-After (registries, CDNs).
	TooManyRequests Kind = "429"
	// Flip flips the low bit of the body byte at At: a bad NIC, disk or
	// middlebox that TCP's weak checksum did not catch.
	Flip Kind = "flip"
	// Swap serves, from body offset At on, the bytes of another version of
	// the object (Rule.SwapFile holds that version's full content): a
	// server or cache that switched versions mid-response while keeping
	// the headers of the old one.
	Swap Kind = "swap"
)

// Kinds lists every fault kind, for tables and validation.
var Kinds = []Kind{Reset, Truncate, Stall, StallHeaders, InternalError, SlowDown, TooManyRequests, Flip, Swap}

// Rule says which requests get which fault. Rules are checked in order; the
// first one that matches and fires decides the request's fault.
type Rule struct {
	Kind Kind `json:"kind"`
	// Method to match; "" means GET.
	Method string `json:"method,omitempty"`
	// Path is a regular expression on the URL path; "" matches every
	// object read (a GET of bucket/key or a registry blob/manifest, not a
	// listing).
	Path string `json:"path,omitempty"`
	// Skip lets this many matching requests through before faulting.
	Skip int `json:"skip,omitempty"`
	// Times bounds how many requests this rule faults; 0 means no bound.
	Times int `json:"times,omitempty"`
	// Prob is the chance that a matching request is faulted, drawn from
	// the proxy's seeded generator; 0 means always.
	Prob float64 `json:"prob,omitempty"`
	// At is the body offset the fault hits (Reset, Truncate, Stall, Flip,
	// Swap); negative means half of the body.
	At int64 `json:"at,omitempty"`
	// Stall is how long Stall and StallHeaders send nothing.
	Stall Duration `json:"stall,omitempty"`
	// RetryAfter is the Retry-After header of SlowDown and TooManyRequests,
	// in seconds.
	RetryAfter int `json:"retry_after,omitempty"`
	// SwapFile holds the other version's full content (Swap).
	SwapFile string `json:"swap_file,omitempty"`
}

// Config is the proxy's fault schedule.
type Config struct {
	// Seed makes the Prob draws reproducible (for a given request order).
	Seed  uint64 `json:"seed"`
	Rules []Rule `json:"rules,omitempty"`
	// HoldAfter, when positive, stops every object body once this many
	// object bytes have been served since the counters were last reset:
	// the proxy sends exactly that many and then holds every response
	// until Release. Kill tests use it to stop a client at a byte count.
	HoldAfter int64 `json:"hold_after,omitempty"`
	// Count, when set, is a regular expression on the URL path: only the
	// object reads it matches count as object reads and bytes (and toward
	// HoldAfter). A test that measures layer bytes uses it to leave out
	// manifests and config blobs.
	Count string `json:"count,omitempty"`
}

// Duration is a time.Duration that reads and writes as "1.5s" in JSON.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler; it takes "2s" or nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration: want a string like \"2s\" or nanoseconds: %w", err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// compiled is a Config ready to match requests.
type compiled struct {
	cfg   Config
	rules []compiledRule
	count *regexp.Regexp // nil: every object read counts

	mu  sync.Mutex // guards rng and the per-rule counters
	rng *rand.Rand
}

type compiledRule struct {
	Rule
	path    *regexp.Regexp
	seen    int // matching requests so far
	faulted int
}

func compile(cfg Config) (*compiled, error) {
	c := &compiled{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9E3779B97F4A7C15))}
	for i, r := range cfg.Rules {
		if !knownKind(r.Kind) {
			return nil, fmt.Errorf("rule %d: unknown fault kind %q", i, r.Kind)
		}
		if r.Kind == Swap && r.SwapFile == "" {
			return nil, fmt.Errorf("rule %d: swap needs swap_file", i)
		}
		cr := compiledRule{Rule: r}
		if r.Path != "" {
			re, err := regexp.Compile(r.Path)
			if err != nil {
				return nil, fmt.Errorf("rule %d: path: %w", i, err)
			}
			cr.path = re
		}
		c.rules = append(c.rules, cr)
	}
	if cfg.Count != "" {
		re, err := regexp.Compile(cfg.Count)
		if err != nil {
			return nil, fmt.Errorf("count: %w", err)
		}
		c.count = re
	}
	return c, nil
}

func knownKind(k Kind) bool {
	for _, x := range Kinds {
		if k == x {
			return true
		}
	}
	return false
}

// decide returns the rule that faults r, or nil.
func (c *compiled) decide(r *http.Request) *Rule {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.rules {
		cr := &c.rules[i]
		if !cr.matches(r) {
			continue
		}
		cr.seen++
		if cr.seen <= cr.Skip || cr.Times > 0 && cr.faulted >= cr.Times {
			continue
		}
		if cr.Prob > 0 && c.rng.Float64() >= cr.Prob {
			continue
		}
		cr.faulted++
		rule := cr.Rule
		return &rule
	}
	return nil
}

func (cr *compiledRule) matches(r *http.Request) bool {
	method := cr.Method
	if method == "" {
		method = http.MethodGet
	}
	if r.Method != method {
		return false
	}
	if cr.path != nil {
		return cr.path.MatchString(r.URL.Path)
	}
	return IsObjectRead(r)
}

// counts reports whether r is an object read the counters include.
func (c *compiled) counts(r *http.Request) bool {
	return IsObjectRead(r) && (c.count == nil || c.count.MatchString(r.URL.Path))
}

// IsObjectRead reports whether r reads an object's bytes: a GET of
// /bucket/key (path-style S3) or of a registry blob or manifest, as
// opposed to a listing, a bucket query or a HEAD.
func IsObjectRead(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	if strings.HasPrefix(p, "v2/") {
		return strings.Contains(p, "/blobs/") || strings.Contains(p, "/manifests/")
	}
	bucket, key, ok := strings.Cut(p, "/")
	if !ok || bucket == "" || key == "" || strings.HasSuffix(key, "/") {
		return false
	}
	q := r.URL.Query()
	for _, listing := range []string{"list-type", "uploads", "uploadId", "versions", "location", "versioning", "policy", "acl", "tagging"} {
		if q.Has(listing) {
			return false
		}
	}
	return true
}

func (d Duration) d() time.Duration { return time.Duration(d) }
