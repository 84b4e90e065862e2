package respcache

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// counting is a collector that counts how often it is gathered and can be made to fail.
type counting struct {
	calls atomic.Int64
	fail  atomic.Bool
	a, b  *prometheus.Desc
}

func (c *counting) Describe(ch chan<- *prometheus.Desc) { ch <- c.a; ch <- c.b }

func (c *counting) Collect(ch chan<- prometheus.Metric) {
	n := c.calls.Add(1)
	if c.fail.Load() {
		ch <- prometheus.NewInvalidMetric(c.a, fmt.Errorf("broken"))
		return
	}
	ch <- prometheus.MustNewConstMetric(c.a, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.b, prometheus.GaugeValue, 1)
}

type fixture struct {
	h   *Handler
	c   *counting
	gen atomic.Uint64
	now time.Time
}

func newFixture(t *testing.T, opts promhttp.HandlerOpts) *fixture {
	t.Helper()
	f := &fixture{now: time.Unix(1e9, 0), c: &counting{
		a: prometheus.NewDesc("test_answer", "Which computation this is.", nil, nil),
		b: prometheus.NewDesc("test_other", "Another series.", nil, nil),
	}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f.c)
	f.h = New(reg, opts, f.gen.Load, time.Second)
	f.h.now = func() time.Time { return f.now }
	return f
}

type answer struct {
	code               int
	contentType, gzip  string
	body               string
	contentEncodingSet bool
}

// get sends a request with the given header lines ("Name: value", repeatable) to target.
func (f *fixture) get(t *testing.T, target string, lines ...string) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ":")
		req.Header.Add(name, strings.TrimPrefix(value, " "))
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	a := answer{code: rec.Code, contentType: rec.Header().Get("Content-Type"), gzip: rec.Header().Get("Content-Encoding")}
	_, a.contentEncodingSet = rec.Header()["Content-Encoding"]
	body := io.Reader(rec.Body)
	if a.gzip == "gzip" {
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatalf("Content-Encoding gzip, but: %v", err)
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	a.body = string(b)
	return a
}

func TestAnswersAreReplayedUntilTheDataChanges(t *testing.T) {
	f := newFixture(t, promhttp.HandlerOpts{})
	first := f.get(t, "/metrics", "Accept: text/plain")
	second := f.get(t, "/metrics", "Accept: text/plain")
	if first != second || f.c.calls.Load() != 1 {
		t.Fatalf("second answer %+v, %d computations; want a replay of %+v", second, f.c.calls.Load(), first)
	}
	if other := f.get(t, "/metrics", "Accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"); other.contentType == first.contentType || f.c.calls.Load() != 2 {
		t.Errorf("another format got %q; want its own answer", other.contentType)
	}
	f.gen.Add(1)
	if after := f.get(t, "/metrics", "Accept: text/plain"); after.body == first.body {
		t.Error("a new generation still got the old answer")
	}
	calls := f.c.calls.Load()
	f.now = f.now.Add(1500 * time.Millisecond)
	f.get(t, "/metrics", "Accept: text/plain")
	if f.c.calls.Load() != calls+1 {
		t.Error("an answer older than maxAge was replayed")
	}
}

// Issue 14, 1: a filtered scrape must neither be served to others nor be served a full one.
func TestAQueryIsNeverServedFromOrIntoTheCache(t *testing.T) {
	f := newFixture(t, promhttp.HandlerOpts{})
	filtered := f.get(t, "/metrics?name[]=test_other")
	if strings.Contains(filtered.body, "test_answer") || !strings.Contains(filtered.body, "test_other") {
		t.Fatalf("the filtered scrape got:\n%s", filtered.body)
	}
	if full := f.get(t, "/metrics"); !strings.Contains(full.body, "test_answer") {
		t.Errorf("a full scrape after a filtered one got the filtered answer:\n%s", full.body)
	}
	if again := f.get(t, "/metrics?name[]=test_other"); strings.Contains(again.body, "test_answer") {
		t.Errorf("a filtered scrape after a full one got everything:\n%s", again.body)
	}
}

// Issue 14, 2: promhttp negotiates over every Accept-Encoding line; so must the key. Neither
// request may get the other's compression, in either order.
func TestCompressionIsNegotiatedOverEveryHeaderLine(t *testing.T) {
	for _, order := range []string{"split first", "plain first"} {
		t.Run(order, func(t *testing.T) {
			f := newFixture(t, promhttp.HandlerOpts{})
			split := func() answer { return f.get(t, "/metrics", "Accept-Encoding: ", "Accept-Encoding: gzip") }
			plain := func() answer { return f.get(t, "/metrics") }
			var s, p answer
			if order == "split first" {
				s, p = split(), plain()
			} else {
				p, s = plain(), split()
			}
			if s.gzip != "gzip" {
				t.Errorf("gzip in a second Accept-Encoding line: Content-Encoding %q, want gzip", s.gzip)
			}
			if p.contentEncodingSet {
				t.Errorf("a request that did not ask for compression got Content-Encoding %q", p.gzip)
			}
		})
	}
}

// Issue 14, 4: an Accept-Encoding that refuses every offer is a client's mistake; promhttp
// would log it as its own error on every such request.
func TestRefusedCompressionsAreNotLoggedAsErrors(t *testing.T) {
	var logged atomic.Int64
	f := newFixture(t, promhttp.HandlerOpts{ErrorLog: printlnFunc(func(...any) { logged.Add(1) })})
	for i := range 50 {
		if a := f.get(t, "/metrics", fmt.Sprintf("Accept-Encoding: x-%d, identity;q=0, *;q=0", i)); a.code != http.StatusOK || a.contentEncodingSet {
			t.Fatalf("answer %+v, want an uncompressed 200", a)
		}
	}
	if n := logged.Load(); n != 0 {
		t.Errorf("%d error log lines for requests with refused compressions, want none", n)
	}
}

// The same for the requests that are passed through uncached: with a query string, or a
// method other than GET and HEAD. And a client that goes away before the answer is written
// (here: a writer that fails) is no error of the exporter's either.
func TestPassedThroughRequestsAreNotLoggedAsErrors(t *testing.T) {
	var logged atomic.Int64
	f := newFixture(t, promhttp.HandlerOpts{ErrorLog: printlnFunc(func(...any) { logged.Add(1) })})
	for i := range 20 {
		if a := f.get(t, fmt.Sprintf("/metrics?x=%d", i), fmt.Sprintf("Accept-Encoding: bogus%d, *;q=0", i)); a.code != http.StatusOK || a.contentEncodingSet {
			t.Fatalf("answer %+v, want an uncompressed 200", a)
		}
	}
	if a := f.get(t, "/metrics?name[]=test_other", "Accept-Encoding: ", "Accept-Encoding: gzip"); a.gzip != "gzip" || strings.Contains(a.body, "test_answer") {
		t.Errorf("a filtered request asking for gzip in its second line got Content-Encoding %q and:\n%s", a.gzip, a.body)
	}
	for _, method := range []string{http.MethodPost, http.MethodPut} {
		req := httptest.NewRequest(method, "/metrics", nil)
		req.Header.Set("Accept-Encoding", "bogus, *;q=0")
		f.h.ServeHTTP(httptest.NewRecorder(), req)
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics?x=gone", nil)
	f.h.ServeHTTP(failingWriter{httptest.NewRecorder()}, req)
	if n := logged.Load(); n != 0 {
		t.Errorf("%d error log lines for passed-through requests with refused compressions or a client gone, want none", n)
	}
}

// failingWriter is a client that went away: every write fails.
type failingWriter struct{ *httptest.ResponseRecorder }

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("write: broken pipe") }

type printlnFunc func(...any)

func (f printlnFunc) Println(v ...any) { f(v...) }

func TestOnlyGETAndHEADAreCached(t *testing.T) {
	f := newFixture(t, promhttp.HandlerOpts{})
	f.get(t, "/metrics")
	req := httptest.NewRequest(http.MethodPost, "/metrics", nil)
	f.h.ServeHTTP(httptest.NewRecorder(), req)
	if n := f.c.calls.Load(); n != 2 {
		t.Errorf("%d computations after a GET and a POST, want 2 (a POST is passed through)", n)
	}
	req = httptest.NewRequest(http.MethodHead, "/metrics", nil)
	f.h.ServeHTTP(httptest.NewRecorder(), req)
	if n := f.c.calls.Load(); n != 2 {
		t.Errorf("a HEAD after a GET was computed again (%d computations)", n)
	}
}

func TestConcurrentRequestsShareOneComputation(t *testing.T) {
	f := newFixture(t, promhttp.HandlerOpts{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); f.get(t, "/metrics", "Accept-Encoding: gzip") }()
	}
	wg.Wait()
	if n := f.c.calls.Load(); n != 1 {
		t.Errorf("%d computations for 50 concurrent identical requests, want 1", n)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	f := newFixture(t, promhttp.HandlerOpts{})
	f.c.fail.Store(true)
	if a := f.get(t, "/metrics"); a.code != http.StatusInternalServerError {
		t.Fatalf("code %d", a.code)
	}
	f.c.fail.Store(false)
	if a := f.get(t, "/metrics"); a.code != http.StatusOK {
		t.Errorf("after recovery: code %d, want the fresh 200", a.code)
	}
}

// Negotiation leaves few shapes, however many spellings clients send.
func TestTheCacheStaysSmall(t *testing.T) {
	f := newFixture(t, promhttp.HandlerOpts{})
	for i := range 10 * maxEntries {
		f.get(t, "/metrics", fmt.Sprintf("Accept: text/plain; n=%d", i), fmt.Sprintf("Accept-Encoding: gzip;q=0.%d, br", i))
	}
	if n := len(f.h.entries); n > 2 {
		t.Errorf("%d entries for requests of one format, want at most 2 (gzip or not)", n)
	}
	if n := f.c.calls.Load(); n > 2 {
		t.Errorf("%d computations, want at most 2", n)
	}
	if n := len(f.h.negotiated); n > maxSpellings {
		t.Errorf("%d memoized negotiations, want at most %d", n, maxSpellings)
	}
}
