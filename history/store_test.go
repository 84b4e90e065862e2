package history_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/history"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

type env struct {
	sim    *simulator.Simulator
	client *client.Client
	path   string
}

func newEnv(t *testing.T, cfg simulator.Config) *env {
	t.Helper()
	sim, err := simulator.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	c, err := client.New(client.Config{
		APIURL: sim.APIURL(), AuthURL: sim.AuthURL(), Transport: sim.Transport(),
		Username: simulator.DemoUsername, Password: simulator.DemoPassword, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, client: c, path: filepath.Join(t.TempDir(), "history.json")}
}

// sync runs one sync and returns how many workout pages it fetched.
func (e *env) sync(t *testing.T, s *history.Store) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := e.sim.Requests(simulator.EndpointWorkouts)
	n, err := s.Sync(ctx, e.sim.UserID(), e.client.Workouts)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if got := e.sim.Requests(simulator.EndpointWorkouts) - before; got != n {
		t.Fatalf("Sync says %d requests, the simulator saw %d", n, got)
	}
	return n
}

func TestFirstAndIncrementalSync(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 1999, InProgress: true}) // 2,000 with the live one
	s := history.Open(e.path, log.NewNopLogger())

	if n := e.sync(t, s); n > 20 {
		t.Errorf("first sync of 2,000 workouts took %d requests, want at most 20", n)
	}
	ws := s.Workouts()
	if len(ws) != 2000 {
		t.Fatalf("history holds %d workouts, want 2000", len(ws))
	}
	if ws[0].Completed() {
		t.Error("the in-progress workout at the top was taken as completed")
	}
	seen := map[string]bool{}
	for _, w := range ws {
		if seen[w.ID] {
			t.Fatalf("workout %s twice", w.ID)
		}
		seen[w.ID] = true
	}

	if n := e.sync(t, s); n != 1 {
		t.Errorf("a sync with nothing new took %d requests, want 1", n)
	}
	e.sim.AddWorkout(simulator.Workout{FitnessDiscipline: "yoga"})
	if n := e.sync(t, s); n != 1 {
		t.Errorf("a sync with one new workout took %d requests, want 1", n)
	}
	if got := s.Workouts(); len(got) != 2001 || (got[0].Discipline != "yoga" && got[1].Discipline != "yoga") {
		t.Errorf("after a new workout: %d workouts, newest %+v, %+v", len(got), got[0], got[1])
	}

	// A restart reads the file: no second download.
	s2 := history.Open(e.path, log.NewNopLogger())
	if len(s2.Workouts()) != 2001 {
		t.Fatalf("reopened history holds %d workouts", len(s2.Workouts()))
	}
	if n := e.sync(t, s2); n != 1 {
		t.Errorf("the first sync after a restart took %d requests, want 1", n)
	}
	if fi, err := os.Stat(e.path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("history file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
}

func TestDamagedHistoryFileIsRebuilt(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 250})
	for name, content := range map[string]string{"garbage": "\x00not json", "truncated": `{"version":1,"user_id":"x","workouts":[{"id":`, "future version": `{"version":7}`} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(e.path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			s := history.Open(e.path, log.NewNopLogger())
			if n := e.sync(t, s); n != 3 {
				t.Errorf("rebuilding 250 workouts took %d requests, want 3", n)
			}
			if len(s.Workouts()) != 250 {
				t.Errorf("rebuilt history holds %d workouts", len(s.Workouts()))
			}
		})
	}
}

func TestAnotherAccountsHistoryIsDiscarded(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 150})
	s := history.Open(e.path, log.NewNopLogger())
	ctx := context.Background()
	if _, err := s.Sync(ctx, "someone-else", e.client.Workouts); err != nil {
		t.Fatal(err)
	}
	if n := e.sync(t, s); n != 2 {
		t.Errorf("sync for a different member took %d requests, want a full download (2)", n)
	}
}

func TestFailedSyncChangesNothing(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 150})
	s := history.Open(e.path, log.NewNopLogger())
	e.sync(t, s)
	e.sim.AddWorkout(simulator.Workout{})
	e.sim.InjectFault(simulator.EndpointWorkouts, simulator.Fault{Status: 200, Body: `{"data": "not a list"}`, Times: 1})
	if _, err := s.Sync(context.Background(), e.sim.UserID(), e.client.Workouts); err == nil {
		t.Fatal("a malformed page was accepted")
	}
	if len(s.Workouts()) != 150 {
		t.Errorf("a failed sync changed the history to %d workouts", len(s.Workouts()))
	}
	e.sync(t, s)
	if len(s.Workouts()) != 151 {
		t.Errorf("after recovery: %d workouts, want 151", len(s.Workouts()))
	}
}

// pagedFetch serves ws, newest first, as Peloton pages them, and counts the requests.
func pagedFetch(ws []client.Workout, requests *int) history.FetchFunc {
	return func(_ context.Context, page, limit int) (*client.WorkoutPage, error) {
		*requests++
		lo, hi := min(page*limit, len(ws)), min((page+1)*limit, len(ws))
		next := hi < len(ws)
		return &client.WorkoutPage{Data: ws[lo:hi], Total: client.Number{Value: float64(len(ws)), Valid: true}, ShowNext: &next}, nil
	}
}

// Workouts Peloton describes badly must not make every sync a full download.
func TestOddWorkoutsDoNotForceFullDownloads(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var ws []client.Workout
	for i := range 250 {
		start := now.Add(-time.Duration(i+1) * 24 * time.Hour).Unix()
		ws = append(ws, client.Workout{
			ID:                client.Text(fmt.Sprintf("w%03d", i)),
			StartTime:         client.Number{Value: float64(start), Valid: true},
			EndTime:           client.Number{Value: float64(start + 1800), Valid: true},
			Status:            "COMPLETE",
			FitnessDiscipline: "cycling",
		})
	}
	ws[5].FitnessDiscipline = ""      // kept, not counted
	ws[7].StartTime = client.Number{} // kept, not counted
	ws[9].ID = ""                     // cannot be kept at all

	s := history.Open("", log.NewNopLogger())
	sync := func() int {
		t.Helper()
		requests := 0
		if _, err := s.Sync(context.Background(), "member", pagedFetch(ws, &requests)); err != nil {
			t.Fatal(err)
		}
		return requests
	}
	if n := sync(); n != 3 {
		t.Errorf("first sync: %d requests, want 3", n)
	}
	if n := sync(); n != 1 {
		t.Errorf("sync with nothing new: %d requests, want 1 (the id-less workout is known to be unkeepable)", n)
	}
	if got := len(s.Workouts()); got != 249 {
		t.Errorf("history holds %d workouts, want 249 (all but the id-less one)", got)
	}
	if c := history.Summarize(s.Workouts(), now, time.UTC, time.Monday).Disciplines["cycling"].Count; c != 247 {
		t.Errorf("counted %d cycling workouts, want 247", c)
	}

	// Deleted workouts change the total: one full download, then quiet again. (Two, because
	// with the id-less one a single deletion would happen to make the counts agree.)
	ws = append(ws[:20], ws[22:]...)
	if n := sync(); n != 1+3 {
		t.Errorf("sync after a deletion: %d requests, want 1 + a full download of 3", n)
	}
	if n := sync(); n != 1 {
		t.Errorf("next sync: %d requests, want 1", n)
	}
}

// A first download cut short (here: the third page fails, as a timeout would) goes on from
// where it stopped at the next sync, so a history too long for one refresh still arrives.
func TestCutDownloadGoesOnWhereItStopped(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 450}) // 5 pages
	s := history.Open(e.path, log.NewNopLogger())
	e.sim.InjectFault(simulator.EndpointWorkouts, simulator.Fault{Times: 2}) // pages 0 and 1 pass
	e.sim.InjectFault(simulator.EndpointWorkouts, simulator.Fault{Status: 504, Body: `{"message":"Gateway Timeout"}`, Times: 1})
	if _, err := s.Sync(context.Background(), e.sim.UserID(), e.client.Workouts); err == nil {
		t.Fatal("the failing page was not reported")
	}
	if n := len(s.Workouts()); n != 0 {
		t.Errorf("%d workouts served from a cut download, want none until it is whole", n)
	}
	if n := e.sync(t, s); n != 3 {
		t.Errorf("the resumed download took %d requests, want the 3 pages left", n)
	}
	ws := s.Workouts()
	seen := map[string]bool{}
	for _, w := range ws {
		seen[w.ID] = true
	}
	if len(ws) != 450 || len(seen) != 450 {
		t.Errorf("history holds %d workouts (%d distinct), want 450", len(ws), len(seen))
	}
	if n := e.sync(t, s); n != 1 {
		t.Errorf("the next sync took %d requests, want 1", n)
	}
}
