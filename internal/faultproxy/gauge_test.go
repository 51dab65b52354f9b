package faultproxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestGaugeCountsOverlappingRequests(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 200_000)
	g := &Gauge{Delay: 20 * time.Millisecond}
	srv := httptest.NewServer(g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})))
	defer srv.Close()
	get := func() {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for range 5 {
		get()
	}
	if g.Max() != 1 || g.Total() != 5 {
		t.Fatalf("sequential requests: max %d total %d, want 1 and 5", g.Max(), g.Total())
	}
	g.Reset()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(get)
	}
	wg.Wait()
	if g.Max() != 4 || g.Current() != 0 {
		t.Fatalf("4 concurrent requests: max %d current %d, want 4 and 0", g.Max(), g.Current())
	}
}

func TestThrottleAnswersOnceAndMeasuresTheWait(t *testing.T) {
	for _, date := range []bool{false, true} {
		th := &Throttle{Status: http.StatusTooManyRequests, After: 2 * time.Second, Date: date,
			Match: func(r *http.Request) bool { return r.URL.Path == "/x" }}
		srv := httptest.NewServer(th.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
		resp, err := http.Get(srv.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ra := resp.Header.Get("Retry-After")
		if resp.StatusCode != http.StatusTooManyRequests || ra == "" {
			t.Fatalf("first request: %d Retry-After %q", resp.StatusCode, ra)
		}
		if when, err := http.ParseTime(ra); date && (err != nil || time.Until(when) < time.Second) {
			t.Fatalf("Retry-After %q is not an HTTP-date ~2s ahead (%v)", ra, err)
		} else if !date && ra != "2" {
			t.Fatalf("Retry-After %q, want 2", ra)
		}
		time.Sleep(50 * time.Millisecond)
		resp, err = http.Get(srv.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		waited, n := th.Waited()
		if resp.StatusCode != http.StatusOK || n != 1 || waited < 50*time.Millisecond {
			t.Fatalf("second request: %d, throttled %d, waited %s", resp.StatusCode, n, waited)
		}
		srv.Close()
	}
}
