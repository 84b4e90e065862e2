// Package respcache replays a handler's recent answer instead of computing it again.
//
// The exporter's data changes once per refresh (minutes), yet every scrape would gather,
// encode and gzip it anew: with several Prometheus servers or a dashboard hammering /metrics
// that is most of the cost of a scrape. The cache keeps the complete answer (status, headers,
// possibly compressed body) per request shape, so content negotiation and compression stay
// exactly what the wrapped handler (promhttp) does.
package respcache

import (
	"bytes"
	"net/http"
	"sync"
	"time"
)

// maxEntries bounds the cache whatever headers clients send; Prometheus sends the same ones
// on every scrape, so a handful of shapes is all that is ever needed.
const maxEntries = 16

// Handler serves cached answers of next.
type Handler struct {
	next       http.Handler
	generation func() uint64 // changes whenever the underlying data changes
	maxAge     time.Duration // bounds the age of what is not in generation (runtime metrics)
	now        func() time.Time

	mu      sync.Mutex
	entries map[key]*entry
}

// key is the shape of a request, as far as it can change the answer.
type key struct{ accept, encoding string }

type entry struct {
	once       sync.Once // one computation, shared by the requests that wait for it
	generation uint64
	created    time.Time
	status     int
	header     http.Header
	body       []byte
}

// New caches next's answers until generation changes or maxAge passes.
func New(next http.Handler, generation func() uint64, maxAge time.Duration) *Handler {
	return &Handler{next: next, generation: generation, maxAge: maxAge, now: time.Now, entries: map[key]*entry{}}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k := key{r.Header.Get("Accept"), r.Header.Get("Accept-Encoding")}
	gen := h.generation()
	h.mu.Lock()
	e := h.entries[k]
	if e == nil || e.generation != gen || h.now().Sub(e.created) > h.maxAge {
		if e == nil && len(h.entries) >= maxEntries {
			clear(h.entries)
		}
		e = &entry{generation: gen, created: h.now()}
		h.entries[k] = e
	}
	h.mu.Unlock()

	e.once.Do(func() {
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		h.next.ServeHTTP(rec, r)
		e.status, e.header, e.body = rec.status, rec.header, rec.body.Bytes()
	})
	if e.status != http.StatusOK {
		h.mu.Lock()
		if h.entries[k] == e {
			delete(h.entries, k) // errors are not worth keeping
		}
		h.mu.Unlock()
	}
	for name, values := range e.header {
		w.Header()[name] = values
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(e.body)
}

// recorder is the minimal ResponseWriter that keeps an answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
