// Package respcache serves promhttp's answers again instead of computing them again.
//
// The exporter's data changes once per refresh (minutes), yet every scrape would gather,
// encode and gzip it anew: with several Prometheus servers or a dashboard hammering /metrics
// that is most of the cost of a scrape. The cache keeps the complete answer (status, headers,
// possibly compressed body) per request shape.
//
// A cached answer must never reach a request that would have got a different one, or one
// scraper could poison what every other scraper (Prometheus included) receives. So the cache
// owns the promhttp handler it wraps, and:
//   - keys an answer on the format and the compression negotiated from the request, with the
//     formats and compressions that handler offers;
//   - hands that handler a canonical request holding only the negotiated compression, so the
//     answer depends on nothing but the key, however a client spells its headers;
//   - does not cache a request with a query string (promhttp filters on name[]) or a method
//     other than GET and HEAD: those are computed for themselves, from the same canonical
//     request (their query and method kept);
//   - has that handler write every answer into memory, and only then sends it: a client's
//     mistake (a refused compression) or its going away (a write that fails) never reaches
//     promhttp, which would log either as its own error, and anyone could flood the log.
package respcache

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// maxEntries bounds the cache whatever headers clients send; negotiation leaves only a
// handful of shapes (formats × escaping schemes × compressions), so it is never reached by
// well-behaved clients.
const maxEntries = 32

// maxSpellings bounds the memo of negotiations, whatever headers clients send.
const maxSpellings = 64

// Handler serves cached answers of a promhttp handler.
type Handler struct {
	next         http.Handler
	formats      []expfmt.Format
	compressions []string
	generation   func() uint64 // changes whenever the underlying data changes
	maxAge       time.Duration // bounds the age of what is not in generation (runtime metrics)
	now          func() time.Time

	mu      sync.Mutex
	entries map[key]*entry
	// negotiated memoizes negotiation, a pure function of the Accept line and the
	// Accept-Encoding lines (parsing Prometheus' Accept header costs more than a replay).
	negotiated map[string]key
}

// key is the shape of a request, as far as it can change the answer.
type key struct {
	format   expfmt.Format // what expfmt.NegotiateAccept chose, escaping scheme included
	encoding string        // the negotiated compression
}

type entry struct {
	once       sync.Once // one computation, shared by the requests that wait for it
	generation uint64
	created    time.Time
	status     int
	header     http.Header
	body       []byte
}

// New serves promhttp.HandlerFor(g, opts), caching its answers until generation changes or
// maxAge passes. opts.AcceptedFormats and opts.OfferedCompressions default as in promhttp,
// except that the compressions are fixed to identity and gzip when not given, so that the
// cache and the handler never disagree about what is offered.
func New(g prometheus.Gatherer, opts promhttp.HandlerOpts, generation func() uint64, maxAge time.Duration) *Handler {
	if len(opts.AcceptedFormats) == 0 {
		opts.AcceptedFormats = expfmt.DefaultAcceptedFormats()
		if opts.EnableOpenMetrics {
			opts.AcceptedFormats = expfmt.DefaultOpenMetricsAcceptedFormats()
		}
	}
	if len(opts.OfferedCompressions) == 0 {
		opts.OfferedCompressions = []promhttp.Compression{promhttp.Identity, promhttp.Gzip}
	}
	var compressions []string
	if !opts.DisableCompression {
		for _, c := range opts.OfferedCompressions {
			compressions = append(compressions, string(c))
		}
	}
	return &Handler{
		next:         promhttp.HandlerFor(g, opts),
		formats:      opts.AcceptedFormats,
		compressions: compressions,
		generation:   generation,
		maxAge:       maxAge,
		now:          time.Now,
		entries:      map[key]*entry{},
		negotiated:   map[string]key{},
	}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k := h.negotiate(r.Header)
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || (r.URL != nil && r.URL.RawQuery != "") {
		rec := newRecorder()
		h.next.ServeHTTP(rec, h.canonical(r, k))
		send(w, rec.status, rec.header, rec.body.Bytes())
		return
	}
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
		rec := newRecorder()
		h.next.ServeHTTP(rec, h.canonical(r, k))
		e.status, e.header, e.body = rec.status, rec.header, rec.body.Bytes()
	})
	if e.status != http.StatusOK {
		h.mu.Lock()
		if h.entries[k] == e {
			delete(h.entries, k) // errors are not worth keeping
		}
		h.mu.Unlock()
	}
	send(w, e.status, e.header, e.body)
}

// send writes an answer computed before. A write that fails is the client's going away.
func send(w http.ResponseWriter, status int, header http.Header, body []byte) {
	for name, values := range header {
		w.Header()[name] = values
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// negotiate returns the key of a request with header.
func (h *Handler) negotiate(header http.Header) key {
	raw := header.Get("Accept") + "\n" + strings.Join(header["Accept-Encoding"], "\n")
	h.mu.Lock()
	k, ok := h.negotiated[raw]
	h.mu.Unlock()
	if ok {
		return k
	}
	k = key{format: expfmt.NegotiateAccept(header, h.formats...), encoding: h.negotiateEncoding(header)}
	h.mu.Lock()
	if len(h.negotiated) >= maxSpellings {
		clear(h.negotiated) // a client sending ever new headers costs itself negotiations, no more
	}
	h.negotiated[raw] = k
	h.mu.Unlock()
	return k
}

// canonical is r (its method and URL, query included) reduced to what the key says: its
// Accept header (whose negotiation is expfmt's own, so it gives k.format again) and the
// negotiated compression alone, so that
// promhttp cannot answer two requests of one key differently, and never meets an
// Accept-Encoding it would refuse (a client's mistake it would log as its own error).
func (h *Handler) canonical(r *http.Request, k key) *http.Request {
	c := r.Clone(r.Context())
	c.Header = http.Header{}
	if accept := r.Header.Get("Accept"); accept != "" {
		c.Header.Set("Accept", accept)
	}
	c.Header.Set("Accept-Encoding", k.encoding)
	return c
}

// negotiateEncoding picks the compression as promhttp does (its internal copy of
// golang/gddo's httputil.NegotiateContentEncoding): over every Accept-Encoding line, the first
// offer with the highest quality, "*" matching any. Where promhttp would find nothing
// acceptable (every match at q=0) and fall back to identity after logging an error, this
// chooses identity directly. FuzzNegotiation checks the agreement against promhttp itself.
func (h *Handler) negotiateEncoding(header http.Header) string {
	best, bestQ := "identity", -1.0
	specs := parseAcceptEncoding(header)
	for _, offer := range h.compressions {
		for _, s := range specs {
			if s.q > bestQ && (s.value == "*" || s.value == offer) {
				best, bestQ = offer, s.q
			}
		}
	}
	if bestQ == 0 {
		return "identity"
	}
	return best
}

// recorder is the minimal ResponseWriter that keeps an answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func newRecorder() *recorder { return &recorder{header: http.Header{}, status: http.StatusOK} }

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
