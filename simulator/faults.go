package simulator

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Fault replaces (or delays) the answer of one endpoint, to test how a
// client copes with a misbehaving Peloton or the CDN in front of it.
//
// If Status and Body are both empty the fault only delays (and adds
// Header) and the request is then answered normally. Otherwise the fault
// answers with Status (200 if 0) and Body verbatim.
type Fault struct {
	Status int
	Body   string      // raw body, may be malformed JSON, HTML, etc.
	Header http.Header // extra headers, e.g. Retry-After
	// Delay is waited before answering; the wait ends early when the
	// request's context ends or the simulator closes.
	Delay time.Duration
	// Times is how many requests the fault applies to; 0 means until
	// ClearFaults.
	Times int
	// PadTo pads the body with spaces (JSON whitespace) up to this many bytes,
	// streamed, for huge answers that cost the simulator no memory.
	PadTo int64
	// Stall leaves the answer unfinished after the body: the connection stays
	// open, sending nothing, until the client gives up or the simulator closes.
	Stall bool
	// Member restricts the fault to the API requests of one member (the username it signs in
	// with), recognised by its bearer token: one rider's slow or failing Peloton beside the
	// household's healthy ones. Empty: every request.
	Member string
}

// InjectFault queues f for the endpoint (one of the Endpoint constants).
// Faults of one endpoint apply in the order injected: a later one takes over
// when the earlier one's Times are used up, so "429 once, then 503 twice"
// can be scripted.
func (s *Simulator) InjectFault(endpoint string, f Fault) {
	f.Header = f.Header.Clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[endpoint] = append(s.faults[endpoint], f)
}

// ClearFaults removes every fault of every endpoint.
func (s *Simulator) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// takeFault counts the request and returns the first fault that applies to it (one of every
// request's, or one of the member's who sent it), using up one of its Times.
func (s *Simulator) takeFault(endpoint string, r *http.Request) (Fault, bool) {
	var from *member // looked up only when a fault asks: it costs a token check
	s.mu.Lock()
	s.requests[endpoint]++
	q := s.faults[endpoint]
	needMember := false
	for _, f := range q {
		needMember = needMember || f.Member != ""
	}
	s.mu.Unlock()
	if needMember {
		from = s.bearerMember(r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q = s.faults[endpoint] // again: it may have changed while unlocked
	for i := range q {
		if q[i].Member != "" && (from == nil || !strings.EqualFold(q[i].Member, from.login)) {
			continue
		}
		f := q[i]
		if q[i].Times > 0 {
			q[i].Times--
			if q[i].Times == 0 {
				s.faults[endpoint] = append(q[:i:i], q[i+1:]...)
			}
		}
		return f, true
	}
	return Fault{}, false
}

// endpoint wraps a handler so that it is counted and subject to faults.
func (s *Simulator) endpoint(name string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f, ok := s.takeFault(name, r)
		if !ok {
			h(w, r)
			return
		}
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				// Nobody is waiting for an answer any more. Abort rather than return: a
				// returning handler gets an empty 200 written for it, which over TLS can
				// still reach a client in the instant it gives up (its close_notify is
				// what ended the context).
				panic(http.ErrAbortHandler)
			case <-s.done:
				t.Stop()
				http.Error(w, "simulator closing", http.StatusServiceUnavailable)
				return
			}
		}
		for k, v := range f.Header {
			w.Header()[k] = v
		}
		if f.Status == 0 && f.Body == "" {
			h(w, r)
			return
		}
		if w.Header().Get("Content-Type") == "" {
			// JSON bodies are labelled as such; for the rest (HTML error
			// pages, truncated JSON) net/http sniffs, as a CDN page would be.
			if b := strings.TrimSpace(f.Body); b != "" && json.Valid([]byte(b)) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
			}
		}
		status := f.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		w.Write([]byte(f.Body))
		if pad := f.PadTo - int64(len(f.Body)); pad > 0 {
			chunk := []byte(strings.Repeat(" ", 64<<10))
			for ; pad > 0 && r.Context().Err() == nil; pad -= int64(len(chunk)) {
				if _, err := w.Write(chunk[:min(pad, int64(len(chunk)))]); err != nil {
					return
				}
			}
		}
		if f.Stall {
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			select {
			case <-r.Context().Done():
			case <-s.done:
			}
		}
	}
}
