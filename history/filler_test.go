package history_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/peloton-exporter/peloton_exporter/history"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// The filler against the simulated Peloton, through the real client: every completed workout
// gets its detail in one request each, in base units whatever the member's unit, and the
// history file keeps them.
func TestFillerAgainstSimulator(t *testing.T) {
	for _, unit := range []string{"imperial", "metric"} {
		t.Run(unit, func(t *testing.T) {
			e := newEnv(t, simulator.Config{Workouts: 120, DistanceUnit: unit, Imports: 2})
			s := history.Open(e.path, log.NewNopLogger())
			e.sync(t, s)
			changed := make(chan struct{}, 100)
			f := history.StartFiller(s, e.client, history.FillerOptions{
				Interval: time.Millisecond, Changed: func() { changed <- struct{}{} },
			})
			defer f.Close()
			f.Kick()
			deadline := time.After(30 * time.Second)
			for s.PendingDetails() > 0 {
				select {
				case <-changed:
				case <-deadline:
					t.Fatalf("%d details still pending after 30s", s.PendingDetails())
				}
			}
			if n := e.sim.Requests(simulator.EndpointPerformanceGraph); n != 122 {
				t.Errorf("%d graph requests for 122 workouts", n)
			}
			if n := e.sim.Requests(simulator.EndpointSettings); n != 0 {
				t.Errorf("%d settings requests: every graph names its units", n)
			}
			var rides, withHR int
			for _, w := range s.Workouts() {
				d := w.Detail
				if d == nil || d.Unavailable != w.Imported {
					t.Fatalf("workout %s (%s, imported %v): detail %+v", w.ID, w.Discipline, w.Imported, d)
				}
				if d.Unavailable {
					continue // the simulator has no graph for an import (404): asked once
				}
				if w.Discipline == "cycling" {
					rides++
					// 1.4 * sqrt(watts) mph in the simulator: a ride of a few hundred watts goes
					// 5 to 12 m/s, whichever unit Peloton used.
					if d.AvgSpeedMetersPerS == nil || *d.AvgSpeedMetersPerS < 4 || *d.AvgSpeedMetersPerS > 12 {
						t.Errorf("ride %s: speed %v m/s", w.ID, d.AvgSpeedMetersPerS)
					}
					if d.DistanceMeters == nil || d.AvgOutputWatts == nil || d.AvgCadenceRPM == nil || d.EnergyJoules == nil {
						t.Fatalf("ride %s lacks values: %+v", w.ID, d)
					}
					// Distance and speed agree: both converted from the same unit.
					if want := *d.AvgSpeedMetersPerS * float64(w.End-w.Start); math.Abs(*d.DistanceMeters-want) > 0.05*want {
						t.Errorf("ride %s: %v m at %v m/s for %ds", w.ID, *d.DistanceMeters, *d.AvgSpeedMetersPerS, w.End-w.Start)
					}
				}
				if d.HeartRateZoneSecs != nil {
					withHR++
					total := 0.0
					for _, z := range d.HeartRateZoneSecs {
						total += z
					}
					if total != float64(w.End-w.Start) {
						t.Errorf("workout %s: %vs in zones of a %ds workout", w.ID, total, w.End-w.Start)
					}
				}
			}
			if rides == 0 || withHR == 0 {
				t.Errorf("%d rides, %d workouts with heart rate: the member has both", rides, withHR)
			}
			f.Close()
			if n := history.Open(e.path, log.NewNopLogger()).PendingDetails(); n != 0 {
				t.Errorf("%d details pending after reopening the history file", n)
			}
		})
	}
}

// countingLimiter is a shared pace that records when each request was let through.
type countingLimiter struct {
	mu    sync.Mutex
	every time.Duration
	last  time.Time
	times []time.Time
}

func (l *countingLimiter) Wait(ctx context.Context) error {
	l.mu.Lock() // held while waiting: one at a time, as a shared pace must be
	defer l.mu.Unlock()
	if wait := time.Until(l.last.Add(l.every)); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.last = time.Now()
	l.times = append(l.times, l.last)
	return nil
}

// Two fillers of two accounts share one pace: every request waits for it, so that together
// they send no more than one request per interval.
func TestFillersShareAPace(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 15})
	shared := &countingLimiter{every: 5 * time.Millisecond}
	var stores []*history.Store
	for i := range 2 {
		s := history.Open(filepath.Join(t.TempDir(), fmt.Sprint(i, ".json")), log.NewNopLogger())
		e.sync(t, s)
		f := history.StartFiller(s, e.client, history.FillerOptions{Interval: time.Millisecond, Shared: shared})
		t.Cleanup(f.Close)
		f.Kick()
		stores = append(stores, s)
	}
	deadline := time.Now().Add(30 * time.Second)
	for stores[0].PendingDetails()+stores[1].PendingDetails() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("details still pending after 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if n := e.sim.Requests(simulator.EndpointPerformanceGraph); len(shared.times) < n || n != 30 {
		t.Fatalf("%d requests, %d let through by the shared pace; want 30 of each", n, len(shared.times))
	}
	for i := 1; i < len(shared.times); i++ {
		if gap := shared.times[i].Sub(shared.times[i-1]); gap < shared.every {
			t.Fatalf("requests %d and %d of the two fillers %v apart, under the shared %v", i-1, i, gap, shared.every)
		}
	}
}
