package history

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/peloton-exporter/peloton_exporter/client"
)

// fakeDetails answers graph requests by workout id; fail decides each request's error.
type fakeDetails struct {
	mu       sync.Mutex
	requests map[string]int
	settings int
	fail     func(id string) error
	unitErr  error
}

func (f *fakeDetails) PerformanceGraph(_ context.Context, id string) (*client.PerformanceGraph, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[id]++
	if err := f.fail(id); err != nil {
		return nil, err
	}
	return &client.PerformanceGraph{Summaries: []client.GraphSummary{
		{Slug: "distance", Value: client.Number{Value: 10, Valid: true}}, // no unit: the settings decide
		{Slug: "calories", DisplayUnit: "kcal", Value: client.Number{Value: 100, Valid: true}},
	}}, nil
}

func (f *fakeDetails) Settings(context.Context) (*client.Settings, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settings++
	if f.unitErr != nil {
		return nil, f.unitErr
	}
	return &client.Settings{DistanceUnit: "metric"}, nil
}

func (f *fakeDetails) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[id]
}

func (f *fakeDetails) set(fail func(string) error, unitErr error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.unitErr = fail, unitErr
}

func storeOf(ids ...string) *Store {
	s := Open("", log.NewNopLogger())
	for i, id := range ids {
		s.workouts = append(s.workouts, Workout{ID: id, Start: 1700000000 - int64(i)*86400, End: 1700001800 - int64(i)*86400,
			Status: "COMPLETE", Discipline: "running"})
	}
	return s
}

func startTestFiller(t *testing.T, s *Store, src DetailSource) (*Filler, chan struct{}) {
	t.Helper()
	changed := make(chan struct{}, 100)
	f := StartFiller(s, src, FillerOptions{Interval: time.Millisecond, SaveEvery: time.Millisecond, Pause: time.Second,
		Changed: func() { changed <- struct{}{} }})
	t.Cleanup(f.Close)
	return f, changed
}

// waitIdle kicks the filler and waits until a round has surely ended: the requests stop
// changing.
func waitIdle(t *testing.T, f *Filler, total func() int) {
	t.Helper()
	f.Kick()
	deadline := time.Now().Add(10 * time.Second)
	last, still := -1, 0
	for still < 20 {
		if time.Now().After(deadline) {
			t.Fatal("the filler did not settle within 10s")
		}
		time.Sleep(5 * time.Millisecond)
		if n := total(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
}

var errForbidden = &client.HTTPError{Endpoint: "performance_graph", Status: 403, Message: "an HTML page instead of JSON (a CDN or bot-protection block?)"}

// A 403 (a CDN's block) is a failure, not a verdict: no workout is marked as having no graph,
// the round stops after three failures, the source is down meanwhile, and once the block is
// lifted every workout gets its detail.
func TestFillerForbiddenIsNotMissing(t *testing.T) {
	s := storeOf("a", "b", "c", "d", "e", "f")
	src := &fakeDetails{requests: map[string]int{}, fail: func(string) error { return errForbidden }}
	f, _ := startTestFiller(t, s, src)
	total := func() int {
		return src.count("a") + src.count("b") + src.count("c") + src.count("d") + src.count("e") + src.count("f")
	}
	waitIdle(t, f, total)
	if n := total(); n != roundFailures {
		t.Errorf("%d requests in a round that failed, want it to stop after %d", n, roundFailures)
	}
	if n := s.PendingDetails(); n != 6 {
		t.Errorf("%d of 6 workouts pending: a 403 marked some as without a graph", n)
	}
	if up, tried := f.Up(); up || !tried {
		t.Errorf("detail source up=%v tried=%v while every request fails", up, tried)
	}
	waitIdle(t, f, total) // a refresh's kick during the pause sends nothing
	if n := total(); n != roundFailures {
		t.Errorf("%d requests after a kick during the pause, want still %d", n, roundFailures)
	}

	src.set(func(string) error { return nil }, nil)
	deadline := time.Now().Add(10 * time.Second) // the first pause is a second here
	for s.PendingDetails() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d details still pending after the block was lifted", s.PendingDetails())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if up, _ := f.Up(); !up {
		t.Error("the detail source is still down after the fill")
	}
}

// One workout whose graph always fails costs one request, not one per refresh, and does not
// make the source down; the others are filled; a 404 is asked once.
func TestFillerOneBadWorkout(t *testing.T) {
	s := storeOf("a", "bad", "c", "gone")
	src := &fakeDetails{requests: map[string]int{}, fail: func(id string) error {
		switch id {
		case "bad":
			return errors.New("performance_graph: HTTP 500")
		case "gone":
			return &client.HTTPError{Endpoint: "performance_graph", Status: 404}
		}
		return nil
	}}
	f, _ := startTestFiller(t, s, src)
	total := func() int { return src.count("a") + src.count("bad") + src.count("c") + src.count("gone") }
	for range 5 { // five refreshes' kicks
		waitIdle(t, f, total)
	}
	if n := src.count("bad"); n != 1 {
		t.Errorf("the failing workout was asked %d times over five kicks, want once (then an hour later)", n)
	}
	if n := src.count("gone"); n != 1 {
		t.Errorf("the workout without a graph was asked %d times, want once", n)
	}
	if n := s.PendingDetails(); n != 1 {
		t.Errorf("%d pending, want only the failing one", n)
	}
	if up, _ := f.Up(); !up {
		t.Error("one failing workout made the detail source down")
	}
}

// A graph with a distance but no unit needs the member's setting; when it cannot be read the
// workout waits, rather than being kept without its distance for good.
func TestFillerUnitUnknownIsRetried(t *testing.T) {
	s := storeOf("a")
	src := &fakeDetails{requests: map[string]int{}, fail: func(string) error { return nil }, unitErr: errors.New("settings: HTTP 502")}
	f, _ := startTestFiller(t, s, src)
	waitIdle(t, f, func() int { return src.count("a") })
	if n := s.PendingDetails(); n != 1 {
		t.Fatalf("the workout was kept without knowing its distance's unit")
	}
	// An hour later (here: clear the wait) the settings answer.
	src.set(func(string) error { return nil }, nil)
	f.Close()
	f2, _ := startTestFiller(t, s, src)
	waitIdle(t, f2, func() int { return src.count("a") })
	ws := s.Workouts()
	if d := ws[0].Detail; d == nil || d.DistanceMeters == nil || *d.DistanceMeters != 10000 {
		t.Errorf("detail %+v, want 10 km in meters", d)
	}
}

func TestBackoffDoesNotOverflow(t *testing.T) {
	if d := backoff(39*time.Hour, 16, time.Hour); d != time.Hour {
		t.Errorf("backoff(39h, 16, 1h) = %v", d)
	}
	if d := backoff(time.Second, 3, time.Hour); d != 8*time.Second {
		t.Errorf("backoff(1s, 3, 1h) = %v", d)
	}
}

// A lone new workout whose graph fails is a round in which nothing worked: the source is
// down, and the refreshes' kicks send nothing until the pause ends.
func TestFillerLoneFailureIsAFailedRound(t *testing.T) {
	s := storeOf("new")
	src := &fakeDetails{requests: map[string]int{}, fail: func(string) error { return errors.New("performance_graph: HTTP 503") }}
	f, _ := startTestFiller(t, s, src)
	for range 4 {
		waitIdle(t, f, func() int { return src.count("new") })
	}
	if n := src.count("new"); n != 1 {
		t.Errorf("%d requests over four kicks within the pause, want 1", n)
	}
	if up, _ := f.Up(); up {
		t.Error("the detail source is up although its only request failed")
	}
}
