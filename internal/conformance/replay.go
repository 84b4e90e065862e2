package conformance

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/peloton-exporter/peloton_exporter/internal/loophost"
)

// Replay serves a flow of the transcript on Peloton's host names over TLS on loopback: each
// request is checked against the next step and answered as the live service answered it.
type Replay struct {
	hosts   *loophost.Hosts
	servers []*http.Server
	steps   []*Step

	mu       sync.Mutex
	next     int
	vars     Vars
	problems []string
}

// StartReplay serves steps.
func StartReplay(steps []*Step) (*Replay, error) {
	names := map[string]bool{}
	for _, s := range steps {
		names[strings.ToLower(s.Request.Host)] = true
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	h, err := loophost.New(list...)
	if err != nil {
		return nil, err
	}
	r := &Replay{hosts: h, steps: steps}
	for _, n := range list {
		srv := &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
		r.servers = append(r.servers, srv)
		go func() { _ = srv.Serve(h.Listener(n)) }() // ends with Close
	}
	return r, nil
}

// Transport reaches the replay's hosts, and nothing else.
func (r *Replay) Transport() *http.Transport { return r.hosts.Transport() }

func (r *Replay) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	// A server's request URL has neither scheme nor host: the connection says which.
	req.URL.Scheme, req.URL.Host = "http", req.Host
	if req.TLS != nil {
		req.URL.Scheme = "https"
	}
	r.mu.Lock()
	if r.next >= len(r.steps) {
		r.problems = append(r.problems, fmt.Sprintf("a request after the transcript ended: %s %s%s", req.Method, req.Host, req.URL.Path))
		r.mu.Unlock()
		http.Error(w, "not in the transcript", http.StatusTeapot)
		return
	}
	step := r.steps[r.next]
	r.next++
	if step.Request.Path == "/authorize" {
		r.vars = VarsFrom(req.URL.Query())
	}
	r.problems = append(r.problems, step.CheckRequest(req, body, r.vars)...)
	vars := r.vars
	r.mu.Unlock()
	step.Write(w, vars)
}

// Problems lists every request that was not as the transcript expects, and the steps never
// reached.
func (r *Replay) Problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := append([]string(nil), r.problems...)
	for _, s := range r.steps[r.next:] {
		p = append(p, s.Name+": never reached")
	}
	return p
}

// Close stops the servers.
func (r *Replay) Close() {
	for _, s := range r.servers {
		s.Close()
	}
	r.hosts.Close()
}
