package collector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/collector"
)

// fileSource is a collector.Source answering from bodies held in memory (testdata/ fixtures),
// decoded as the client decodes Peloton's: the collector's own tests need no HTTP, no login.
// Set a body to change what Peloton says; set an error to make a source fail.
type fileSource struct {
	mu     sync.Mutex
	bodies map[string][]byte // "me", "overview", "workouts" (one page)
	errs   map[string]error
	calls  map[string]int
	// graphRequests counts PerformanceGraph calls.
	graphRequests int
}

var _ collector.Source = (*fileSource)(nil)

func newFileSource(me, overview, workouts []byte) *fileSource {
	return &fileSource{
		bodies: map[string][]byte{"me": me, "overview": overview, "workouts": workouts},
		errs:   map[string]error{},
	}
}

func (s *fileSource) set(endpoint string, body []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if body != nil {
		s.bodies[endpoint] = body
	}
	s.errs[endpoint] = err
}

// decode answers one request to endpoint.
func (s *fileSource) decode(endpoint string, out any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.errs[endpoint]; err != nil {
		return err
	}
	if err := json.Unmarshal(s.bodies[endpoint], out); err != nil {
		return fmt.Errorf("%s: decoding the answer: %w", endpoint, err)
	}
	return nil
}

func (s *fileSource) Me(context.Context) (*client.Me, error) {
	var me client.Me
	if err := s.decode("me", &me); err != nil {
		return nil, err
	}
	return &me, nil
}

func (s *fileSource) UserID(context.Context) (string, error) { return "fixture-member", nil }

func (s *fileSource) Overview(context.Context) (*client.Overview, error) {
	var ov client.Overview
	if err := s.decode("overview", &ov); err != nil {
		return nil, err
	}
	return &ov, nil
}

func (s *fileSource) Workouts(_ context.Context, page, _ int) (*client.WorkoutPage, error) {
	var p client.WorkoutPage
	if err := s.decode("workouts", &p); err != nil {
		return nil, err
	}
	if page > 0 { // the fixture is the whole history: later pages are empty
		p.Data, p.ShowNext = nil, nil
	}
	return &p, nil
}

func (s *fileSource) Stats() []client.RequestCount { return nil }

func (s *fileSource) TokenExpiry() (time.Time, bool) { return time.Time{}, false }

// The training detail: a graph is the body "graph/<workout id>" (404 without one); without a
// body the settings are empty and the member joined no challenge.

func (s *fileSource) PerformanceGraph(_ context.Context, id string) (*client.PerformanceGraph, error) {
	s.mu.Lock()
	s.graphRequests++
	_, ok := s.bodies["graph/"+id]
	err := s.errs["graph"] // every graph fails
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &client.HTTPError{Endpoint: "performance_graph", Status: 404, Message: "Workout not found"}
	}
	var g client.PerformanceGraph
	if err := s.decode("graph/"+id, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

func (s *fileSource) Settings(context.Context) (*client.Settings, error) {
	var st client.Settings
	return &st, s.decodeOr("settings", `{}`, &st)
}

func (s *fileSource) Challenges(context.Context) (*client.Challenges, error) {
	var ch client.Challenges
	s.count("challenges")
	return &ch, s.decodeOr("challenges", `{"challenges":[]}`, &ch)
}

func (s *fileSource) Challenge(_ context.Context, id string) (*client.Challenge, error) {
	var ch client.Challenge
	s.count("challenge")
	return &ch, s.decodeOr("challenge/"+id, `{}`, &ch)
}

// decodeOr decodes the body of endpoint, or def when there is none.
func (s *fileSource) decodeOr(endpoint, def string, out any) error {
	s.mu.Lock()
	if _, ok := s.bodies[endpoint]; !ok {
		s.bodies[endpoint] = []byte(def)
	}
	s.mu.Unlock()
	return s.decode(endpoint, out)
}

func (s *fileSource) count(endpoint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[endpoint]++
}

// body is the current body of an endpoint.
func (s *fileSource) body(endpoint string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[endpoint]
}

// requests says how many requests went to an endpoint ("graph" for the performance graphs).
func (s *fileSource) requests(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if endpoint == "graph" {
		return s.graphRequests
	}
	return s.calls[endpoint]
}
