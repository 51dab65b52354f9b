package faultproxy

import (
	"fmt"
	"time"
)

// Reconfigure readies the proxy for the next client of a test that runs
// clients one after another (and kills some): it opens the hold gate,
// waits up to timeout until the requests of earlier clients are over (or
// bytes their handlers still push into dead connections would count for
// the next one), zeroes the counters and installs cfg.
func (p *Proxy) Reconfigure(cfg Config, timeout time.Duration) error {
	p.Release()
	deadline := time.Now().Add(timeout)
	for p.active.Load() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("faultproxy: %d requests of an earlier client still served after %v", p.active.Load(), timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.ResetStats()
	return p.SetConfig(cfg)
}

// FaultCount is the number of faults injected, of every kind.
func (s Stats) FaultCount() int64 {
	var n int64
	for _, v := range s.Faults {
		n += v
	}
	return n
}
