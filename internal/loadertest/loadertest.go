// Package loadertest is the one conformance suite for engine.Loader, after
// restic's internal/backend/test: every provider's loader runs the same
// cases against its real server (or a stand-in where users have none), so
// the contract the engine relies on holds for all of them alike.
//
// The contract (pkg/engine/types.go): Load calls fn with a reader that
// yields exactly length bytes starting at offset; one call is one attempt
// (no retries inside Load), so fn may be called again by a later Load; fn's
// error comes back as is; a response that ends early is an error, never
// fewer bytes handed over as if they were the range; a cancelled context
// ends Load promptly, even while the server stalls.
package loadertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/storage-initializer/storage-initializer/internal/faultproxy"
	"github.com/storage-initializer/storage-initializer/internal/testenv"
	"github.com/storage-initializer/storage-initializer/pkg/engine"
)

// Source is content published by a test's Publish function and the loader
// that reads it.
type Source struct {
	// Loader reads the published content; it was planned for exactly
	// len(content) bytes.
	Loader engine.Loader
	// Proxy, when set, stands between Loader and its server (see Front):
	// the suite arms it with truncations and stalls. It must be idle (no
	// rules) when Publish returns.
	Proxy *faultproxy.Proxy
	// Shorten, for a source with no server in between (a local file),
	// makes the content shorter than planned, as a truncation would.
	Shorten func()
}

// Publish stores content at a fresh source and returns its loader.
type Publish func(t *testing.T, content []byte) Source

// Front starts an idle fault proxy in front of target (an http(s) URL) for
// the test's duration; a Publish function points the loader at its URL and
// returns the proxy in Source.Proxy.
func Front(t *testing.T, target string) (*faultproxy.Proxy, string) {
	t.Helper()
	return faultproxy.Start(t, target, faultproxy.Config{})
}

// Size is the length of the content the suite publishes: odd, so no range
// lines up with a power of two by accident, and large enough for a server
// to send it in several writes.
const Size = 256<<10 + 77

// promptly bounds how long Load may take to notice a cancelled context.
const promptly = 5 * time.Second

// Run runs every case against sources made by publish.
func Run(t *testing.T, publish Publish) {
	t.Run("Ranges", func(t *testing.T) { testRanges(t, publish) })
	t.Run("SameRangeTwice", func(t *testing.T) { testSameRangeTwice(t, publish) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, publish) })
	t.Run("FnErrorReturnedAsIs", func(t *testing.T) { testFnError(t, publish) })
	t.Run("ServerErrorNotRetried", func(t *testing.T) { testServerError(t, publish) })
	t.Run("ShortBody", func(t *testing.T) { testShortBody(t, publish) })
	t.Run("CancelledContext", func(t *testing.T) { testCancelled(t, publish) })
	t.Run("CancelWhileStalled", func(t *testing.T) { testStalled(t, publish) })
}

// content is the bytes every case publishes.
func content() []byte { return testenv.Random(Size, 42) }

// span is one range to load.
type span struct {
	name           string
	offset, length int64
}

func (s span) String() string { return fmt.Sprintf("%s (%d+%d)", s.name, s.offset, s.length) }

// spans are the ranges every loader must serve exactly.
func spans(n int64) []span {
	return []span{
		{"whole file", 0, n},
		{"first byte", 0, 1},
		{"last byte", n - 1, 1},
		{"first half", 0, n / 2},
		{"second half", n / 2, n - n/2},
		{"across the middle", n/2 - 1000, 2000},
		{"one chunk inside", 4096, 64 << 10},
		{"all but the first byte", 1, n - 1},
		{"all but the last byte", 0, n - 1},
		{"tail", n - 100, 100},
		{"length 0 at the start", 0, 0},
		{"length 0 in the middle", n / 2, 0},
		{"length 0 at the end", n, 0},
	}
}

// load reads one range with a consumer like the engine's: everything the
// reader yields, failing on its error.
func load(ctx context.Context, l engine.Loader, s span) ([]byte, int, error) {
	var got []byte
	calls := 0
	err := l.Load(ctx, s.length, s.offset, func(r io.Reader) error {
		calls++
		var err error
		got, err = io.ReadAll(r)
		return err
	})
	return got, calls, err
}

func testRanges(t *testing.T, publish Publish) {
	want := content()
	src := publish(t, want)
	for _, s := range spans(int64(len(want))) {
		got, calls, err := load(context.Background(), src.Loader, s)
		if err != nil {
			t.Errorf("%v: %v", s, err)
			continue
		}
		if calls != 1 {
			t.Errorf("%v: fn called %d times, want once", s, calls)
		}
		checkBytes(t, s, got, want[s.offset:s.offset+s.length])
	}
}

func checkBytes(t *testing.T, s span, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%v: fn read %d bytes, want exactly %d", s, len(got), len(want))
		return
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Errorf("%v: byte %d (offset %d) is %#x, want %#x", s, i, s.offset+int64(i), got[i], want[i])
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// testSameRangeTwice: a retry is another Load of the same range with the
// same fn; it must see the same bytes (Load keeps no state that a first
// call used up).
func testSameRangeTwice(t *testing.T, publish Publish) {
	want := content()
	src := publish(t, want)
	n := int64(len(want))
	for _, s := range []span{{"whole file", 0, n}, {"across the middle", n/2 - 1000, 2000}} {
		var reads [][]byte
		fn := func(r io.Reader) error {
			b, err := io.ReadAll(r)
			reads = append(reads, b)
			return err
		}
		for i := range 2 {
			if err := src.Loader.Load(context.Background(), s.length, s.offset, fn); err != nil {
				t.Fatalf("%v: load %d: %v", s, i+1, err)
			}
		}
		if len(reads) != 2 {
			t.Fatalf("%v: fn called %d times over two loads, want twice", s, len(reads))
		}
		checkBytes(t, s, reads[0], want[s.offset:s.offset+s.length])
		if !bytes.Equal(reads[0], reads[1]) {
			t.Errorf("%v: the second load read other bytes than the first", s)
		}
	}
}

// testConcurrent: the engine loads many ranges of one file at once through
// one loader.
func testConcurrent(t *testing.T, publish Publish) {
	want := content()
	src := publish(t, want)
	const parts = 8
	step := int64(len(want)) / parts
	var wg sync.WaitGroup
	errs := make([]error, parts)
	gots := make([][]byte, parts)
	for i := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gots[i], _, errs[i] = load(context.Background(), src.Loader, span{"part", int64(i) * step, step})
		}()
	}
	wg.Wait()
	for i := range parts {
		s := span{fmt.Sprintf("part %d of %d, loaded at once", i+1, parts), int64(i) * step, step}
		if errs[i] != nil {
			t.Errorf("%v: %v", s, errs[i])
			continue
		}
		checkBytes(t, s, gots[i], want[s.offset:s.offset+s.length])
	}
}

var errFromFn = errors.New("loadertest: fn failed")

// testFnError: Load returns fn's error as is — neither swallowed, nor
// retried (fn runs once), nor made permanent (the engine retries it), and a
// permanent one stays permanent.
func testFnError(t *testing.T, publish Publish) {
	src := publish(t, content())
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"retryable", errFromFn, false},
		{"permanent", engine.Permanent(errFromFn), true},
	} {
		calls := 0
		err := src.Loader.Load(context.Background(), 1000, 10, func(r io.Reader) error {
			calls++
			_, _ = io.CopyN(io.Discard, r, 10) // a consumer that failed halfway
			return tc.err
		})
		switch {
		case err == nil:
			t.Errorf("%s: fn's error was swallowed: Load returned nil", tc.name)
		case !errors.Is(err, errFromFn):
			t.Errorf("%s: Load returned %q, not fn's error", tc.name, err)
		case engine.IsPermanent(err) != tc.permanent:
			t.Errorf("%s: Load's error permanent=%v, fn's was %v: %v", tc.name, engine.IsPermanent(err), tc.permanent, err)
		}
		if calls != 1 {
			t.Errorf("%s: fn called %d times in one Load, want once (one call is one attempt)", tc.name, calls)
		}
	}
}

// testServerError: one Load is one attempt. A server error answered once
// comes back from Load (the engine retries, with its backoff and budget),
// rather than being retried underneath (an SDK's own retryer).
func testServerError(t *testing.T, publish Publish) {
	src := publish(t, content())
	if src.Proxy == nil {
		t.Skip("no server between the loader and its bytes (Source.Proxy unset, e.g. a local file): nothing answers 500")
	}
	arm(t, src.Proxy, faultproxy.Rule{Kind: faultproxy.InternalError, Path: ".", Times: 1})
	_, calls, err := load(context.Background(), src.Loader, span{"across the middle", Size/2 - 1000, 2000})
	if err == nil {
		t.Errorf("Load succeeded after a 500 (fn called %d times): it retried inside one attempt", calls)
	}
	if calls != 0 {
		t.Errorf("fn called %d times for a 500 answer", calls)
	}
	if engine.IsPermanent(err) {
		t.Errorf("a 500 is retryable, Load made it permanent: %v", err)
	}
	if f := src.Proxy.Stats().Faults[faultproxy.InternalError]; f != 1 {
		t.Errorf("the proxy answered %d requests with 500, want 1", f)
	}
}

// testShortBody: a body that ends cleanly before length bytes (no transport
// error at all: chunked encoding ended early) must surface as an error,
// from the reader or from Load.
func testShortBody(t *testing.T, publish Publish) {
	want := content()
	n := int64(len(want))
	for _, s := range []span{{"whole file", 0, n}, {"across the middle", n/2 - 1000, 2000}} {
		t.Run(s.name, func(t *testing.T) {
			src := publish(t, want)
			switch {
			case src.Proxy != nil:
				arm(t, src.Proxy, faultproxy.Rule{Kind: faultproxy.Truncate, Path: ".", At: -1})
			case src.Shorten != nil:
				src.Shorten()
			default:
				t.Fatal("Source has neither a Proxy nor a Shorten: the suite cannot shorten the body")
			}
			var got []byte
			var readErr error
			called := false
			err := src.Loader.Load(context.Background(), s.length, s.offset, func(r io.Reader) error {
				called = true
				got, readErr = io.ReadAll(r)
				return readErr
			})
			if called && readErr == nil && int64(len(got)) < s.length {
				t.Errorf("%v: the reader ended cleanly after %d bytes: a short body handed to fn as if it were the range", s, len(got))
			}
			if err == nil {
				t.Errorf("%v: Load returned nil for a body cut short (fn read %d bytes)", s, len(got))
			}
			if src.Proxy != nil && src.Proxy.Stats().Faults[faultproxy.Truncate] == 0 {
				t.Errorf("%v: the proxy truncated nothing: the fault did not hit the loader's request", s)
			}
		})
	}
}

// arm makes every GET through p fail with rule.
func arm(t *testing.T, p *faultproxy.Proxy, rule faultproxy.Rule) {
	t.Helper()
	if err := p.SetConfig(faultproxy.Config{Rules: []faultproxy.Rule{rule}}); err != nil {
		t.Fatal(err)
	}
}

// testCancelled: a context cancelled before Load starts fails it at once
// with the context's error.
func testCancelled(t *testing.T, publish Publish) {
	src := publish(t, content())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	_, _, err := load(ctx, src.Loader, span{"across the middle", Size/2 - 1000, 2000})
	if took := time.Since(start); took > promptly {
		t.Errorf("Load with a cancelled context took %v", took)
	}
	switch {
	case err == nil:
		t.Error("Load with a cancelled context returned nil")
	case !errors.Is(err, context.Canceled):
		t.Errorf("Load with a cancelled context: %v, want an error wrapping context.Canceled", err)
	}
}

// testStalled: a server that stops sending (before the headers, or halfway
// through the body) must not keep Load once its context is cancelled.
func testStalled(t *testing.T, publish Publish) {
	want := content()
	for _, tc := range []struct {
		name string
		rule faultproxy.Rule
	}{
		{"before the headers", faultproxy.Rule{Kind: faultproxy.StallHeaders, Path: ".", Stall: faultproxy.Duration(time.Minute)}},
		{"halfway through the body", faultproxy.Rule{Kind: faultproxy.Stall, Path: ".", At: -1, Stall: faultproxy.Duration(time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := publish(t, want)
			if src.Proxy == nil {
				t.Skip("no server between the loader and its bytes (Source.Proxy unset, e.g. a local file): nothing can stall")
			}
			arm(t, src.Proxy, tc.rule)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, _, err := load(ctx, src.Loader, span{"whole file", 0, int64(len(want))})
				done <- err
			}()
			// Cancel once the request is at the server (and stalled there).
			deadline := time.Now().Add(promptly)
			for src.Proxy.Stats().Faults[tc.rule.Kind] == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if src.Proxy.Stats().Faults[tc.rule.Kind] == 0 {
				t.Fatal("the loader's request never reached the stalling proxy")
			}
			time.Sleep(100 * time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("Load returned before the stall ended or the context was cancelled: %v", err)
			default:
			}
			cancel()
			select {
			case err := <-done:
				if err == nil {
					t.Error("Load returned nil after its context was cancelled mid-stall")
				}
			case <-time.After(promptly):
				t.Errorf("Load still running %v after its context was cancelled while the server stalled", promptly)
			}
			src.Proxy.Release()
		})
	}
}

// Only returns the loader of the one file, or the one blob, that plan
// holds (a Publish function plans a source of one file), failing the test
// when planning failed or the plan holds anything else; the plan is closed
// when the test ends.
func Only(t *testing.T, plan *engine.Plan, err error, size int) engine.Loader {
	t.Helper()
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if plan.Close != nil {
		t.Cleanup(plan.Close)
	}
	files := plan.Files
	for _, u := range plan.Units {
		for _, b := range u.Blobs {
			files = append(files, b.File)
		}
	}
	if len(files) != 1 {
		t.Fatalf("plan of %s holds %d files and blobs, want one", plan.Source, len(files))
	}
	if files[0].Size != int64(size) {
		t.Fatalf("plan of %s: %s is %d bytes, want %d", plan.Source, files[0].Path, files[0].Size, size)
	}
	return files[0].Source
}

// FrontServer puts an idle fault proxy inside srv, a running test server
// whose URL is handed out by others (a hub's redirects to its CDN): srv's
// own handler moves behind a second listener and requests to srv.URL pass
// the proxy first. Call it before srv serves a request (its handler is
// swapped without synchronisation).
func FrontServer(t *testing.T, srv *httptest.Server) *faultproxy.Proxy {
	t.Helper()
	inner := httptest.NewServer(srv.Config.Handler)
	t.Cleanup(inner.Close)
	p, err := faultproxy.New(inner.URL, faultproxy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Release(); p.Close() })
	srv.Config.Handler = p
	return p
}
