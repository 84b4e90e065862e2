package respcache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fixture struct {
	h     *Handler
	calls atomic.Int64
	gen   atomic.Uint64
	now   time.Time
	fail  atomic.Bool
}

func newFixture() *fixture {
	f := &fixture{now: time.Unix(1e9, 0)}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.calls.Add(1)
		if f.fail.Load() {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; accept="+r.Header.Get("Accept"))
		fmt.Fprintf(w, "answer %d for %s", n, r.Header.Get("Accept"))
	})
	f.h = New(next, f.gen.Load, time.Second)
	f.h.now = func() time.Time { return f.now }
	return f
}

func (f *fixture) get(t *testing.T, accept string) (int, string, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", accept)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
}

func TestAnswersAreReplayedUntilTheDataChanges(t *testing.T) {
	f := newFixture()
	_, ct, first := f.get(t, "text/plain")
	_, ct2, second := f.get(t, "text/plain")
	if first != second || ct != ct2 || f.calls.Load() != 1 {
		t.Fatalf("second answer %q (%s), %d computations; want a replay of %q", second, ct2, f.calls.Load(), first)
	}
	if _, _, other := f.get(t, "application/openmetrics-text"); other == first || f.calls.Load() != 2 {
		t.Errorf("another Accept got %q; want its own answer", other)
	}
	f.gen.Add(1)
	if _, _, after := f.get(t, "text/plain"); after == first {
		t.Error("a new generation still got the old answer")
	}
	calls := f.calls.Load()
	f.now = f.now.Add(1500 * time.Millisecond)
	f.get(t, "text/plain")
	if f.calls.Load() != calls+1 {
		t.Error("an answer older than maxAge was replayed")
	}
}

func TestConcurrentRequestsShareOneComputation(t *testing.T) {
	f := newFixture()
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); f.get(t, "text/plain") }()
	}
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d computations for 50 concurrent identical requests, want 1", n)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	f := newFixture()
	f.fail.Store(true)
	if code, _, _ := f.get(t, "text/plain"); code != http.StatusInternalServerError {
		t.Fatalf("code %d", code)
	}
	f.fail.Store(false)
	if code, _, _ := f.get(t, "text/plain"); code != http.StatusOK {
		t.Errorf("after recovery: code %d, want the fresh 200", code)
	}
}

func TestTheCacheStaysBounded(t *testing.T) {
	f := newFixture()
	for i := 0; i < 10*maxEntries; i++ {
		f.get(t, fmt.Sprintf("text/plain; n=%d", i))
	}
	if n := len(f.h.entries); n > maxEntries {
		t.Errorf("%d entries, want at most %d", n, maxEntries)
	}
}
