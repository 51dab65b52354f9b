package faultproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestReconfigureWaitsForHeldClientsThenStartsFromZero: a client held at
// the gate is let go, its request ends, the counters restart from zero and
// the new schedule applies to the next client.
func TestReconfigureWaitsForHeldClientsThenStartsFromZero(t *testing.T) {
	body := strings.Repeat("x", 100_000)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, body) }))
	t.Cleanup(backend.Close)
	p, url := Start(t, backend.URL, Config{HoldAfter: 10})
	if p.URL != url {
		t.Fatalf("Proxy.URL %q, Start returned %q", p.URL, url)
	}
	done := make(chan int, 1)
	go func() {
		resp, err := http.Get(url + "/b/k")
		if err != nil {
			done <- -1
			return
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- int(n)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !p.Stats().Held && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !p.Stats().Held {
		t.Fatal("the client was never held")
	}
	if err := p.Reconfigure(Config{Rules: []Rule{{Kind: InternalError}}}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := <-done; n != len(body) {
		t.Errorf("the held client read %d bytes after the release, want %d", n, len(body))
	}
	if st := p.Stats(); st.Requests != 0 || st.ObjectBytes != 0 || st.FaultCount() != 0 {
		t.Errorf("counters not zeroed: %+v", st)
	}
	resp, err := http.Get(url + "/b/k")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || p.Stats().FaultCount() != 1 {
		t.Errorf("new schedule: status %d, %d faults; want 500 and 1", resp.StatusCode, p.Stats().FaultCount())
	}
}
