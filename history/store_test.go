package history_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/history"
	"github.com/peloton-exporter/peloton_exporter/internal/syncbuf"
	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
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
	n, err := s.Sync(ctx, e.sim.UserID(), time.Now(), e.client.Workouts)
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
	if _, err := s.Sync(ctx, "someone-else", time.Now(), e.client.Workouts); err != nil {
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
	if _, err := s.Sync(context.Background(), e.sim.UserID(), time.Now(), e.client.Workouts); err == nil {
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

// pagedFetch serves *ws (as it is at each request), newest first, as Peloton pages it, and
// counts the requests.
func pagedFetch(ws *[]client.Workout, requests *int) history.FetchFunc {
	return func(_ context.Context, page, limit int) (*client.WorkoutPage, error) {
		*requests++
		all := *ws
		lo, hi := min(page*limit, len(all)), min((page+1)*limit, len(all))
		next := hi < len(all)
		return &client.WorkoutPage{Data: all[lo:hi], Total: client.Number{Value: float64(len(all)), Valid: true}, ShowNext: &next}, nil
	}
}

// Workouts Peloton describes badly must not make every sync a full download.
func TestOddWorkoutsDoNotForceFullDownloads(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ws := cycling(250, now)
	ws[5].FitnessDiscipline = ""      // kept, not counted
	ws[7].StartTime = client.Number{} // kept, not counted
	ws[9].ID = ""                     // cannot be kept at all

	s := history.Open("", log.NewNopLogger())
	sync := func() int {
		t.Helper()
		requests := 0
		if _, err := s.Sync(context.Background(), "member", time.Now(), pagedFetch(&ws, &requests)); err != nil {
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
	if _, err := s.Sync(context.Background(), e.sim.UserID(), time.Now(), e.client.Workouts); err == nil {
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

// Issue 14, 9: the history file follows the state file's rules: a symlink to another file is
// neither chmod-ed nor overwritten, a symlink to a history is written through.
func TestHistoryFileSymlinks(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 20})
	other := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(other, []byte("not a history"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(other, 0o644)
	if err := os.Symlink(other, e.path); err != nil {
		t.Fatal(err)
	}
	e.sync(t, history.Open(e.path, log.NewNopLogger()))
	if fi, _ := os.Stat(other); fi.Mode().Perm() != 0o644 || testkit.ReadFile(t, other) != "not a history" {
		t.Errorf("the other file was changed: mode %v, content %.50q", fi.Mode().Perm(), testkit.ReadFile(t, other))
	}

	real := filepath.Join(t.TempDir(), "history.json")
	e.sync(t, history.Open(real, log.NewNopLogger()))
	os.Chmod(real, 0o644)
	link := filepath.Join(t.TempDir(), "history.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	s := history.Open(link, log.NewNopLogger())
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o600 {
		t.Errorf("a world-readable history was not tightened: %v", fi.Mode().Perm())
	}
	e.sim.AddWorkout(simulator.Workout{})
	e.sync(t, s)
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced (%v)", err)
	}
	if n := len(history.Open(real, log.NewNopLogger()).Workouts()); n != 21 {
		t.Errorf("the linked history holds %d workouts, want 21", n)
	}
}

// cycling is n completed 30-minute rides, newest first, one a day before now.
func cycling(n int, now time.Time) []client.Workout {
	var ws []client.Workout
	for i := range n {
		start := now.Add(-time.Duration(i+1) * 24 * time.Hour).Unix()
		ws = append(ws, client.Workout{
			ID:                client.Text(fmt.Sprintf("w%04d", i)),
			StartTime:         client.Number{Value: float64(start), Valid: true},
			EndTime:           client.Number{Value: float64(start + 1800), Valid: true},
			Status:            "COMPLETE",
			FitnessDiscipline: "cycling",
		})
	}
	return ws
}

func ids[W client.Workout | history.Workout](ws []W) []string {
	var out []string
	for _, w := range ws {
		switch w := any(w).(type) {
		case client.Workout:
			out = append(out, string(w.ID))
		case history.Workout:
			out = append(out, w.ID)
		}
	}
	return out
}

// Issue 14, 6: a Peloton that ignores page and always says there is more made one sync send
// 1,000 identical requests, and then no sync sent any. A repeated page stops the sync at once,
// and the next one, against a recovered Peloton, downloads the history.
func TestRepeatingPagesStopAtOnceAndDoNotStick(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 250})
	s := history.Open(e.path, log.NewNopLogger())
	yes := true
	ignoresPage := func(ctx context.Context, _, limit int) (*client.WorkoutPage, error) {
		p, err := e.client.Workouts(ctx, 0, limit)
		if p != nil {
			p.ShowNext = &yes
		}
		return p, err
	}
	n, err := s.Sync(context.Background(), e.sim.UserID(), time.Now(), ignoresPage)
	if err == nil || !strings.Contains(err.Error(), "earlier pages") {
		t.Errorf("sync against a Peloton repeating its first page: %v, want an error saying so", err)
	}
	if n > 2 {
		t.Errorf("%d requests before the repetition was noticed, want 2", n)
	}
	if n := e.sync(t, s); n != 3 {
		t.Errorf("the sync after Peloton recovered took %d requests, want the full download of 3", n)
	}
	if got := len(s.Workouts()); got != 250 {
		t.Errorf("history holds %d workouts, want 250", got)
	}
}

// Issue 14, 7: a workout deleted while the first sync pages through the history shifts the
// later pages: one workout is never seen, the deleted one is kept, and the counts agree. The
// total changed between pages, so the next sync downloads the history again.
func TestAWorkoutDeletedDuringTheFirstSyncIsRepaired(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ws := cycling(450, now)
	requests := 0
	inner := pagedFetch(&ws, &requests)
	deleted := false
	fetch := func(ctx context.Context, page, limit int) (*client.WorkoutPage, error) {
		if page == 2 && !deleted {
			ws, deleted = slices.Delete(ws, 10, 11), true // deleted on Peloton after page 0 was read
		}
		return inner(ctx, page, limit)
	}
	s := history.Open("", log.NewNopLogger())
	for i := range 2 {
		if _, err := s.Sync(context.Background(), "member", now.Add(time.Duration(i)*5*time.Minute), fetch); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := ids(s.Workouts()), ids(ws); !slices.Equal(got, want) {
		t.Errorf("after two syncs the history holds %d workouts, Peloton %d; differences: %v", len(got), len(want), symmetricDifference(got, want))
	}
}

func symmetricDifference(a, b []string) []string {
	in := map[string]int{}
	for _, x := range a {
		in[x]++
	}
	for _, x := range b {
		in[x]--
	}
	var out []string
	for x, n := range in {
		if n != 0 {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

// Issue 14, 7: a total that alternates between two values forced a full download every other
// refresh. Full downloads are bounded per day, also across restarts (a restart loop must not
// multiply them), and the history keeps being served meanwhile.
func TestFullDownloadsAreBoundedPerDayAcrossRestarts(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ws := cycling(250, now)
	calls := 0
	fetch := func(_ context.Context, page, limit int) (*client.WorkoutPage, error) {
		calls++
		lo, hi := min(page*limit, len(ws)), min((page+1)*limit, len(ws))
		next := hi < len(ws)
		total := 250 + calls%2 // Peloton cannot make up its mind
		return &client.WorkoutPage{Data: ws[lo:hi], Total: client.Number{Value: float64(total), Valid: true}, ShowNext: &next}, nil
	}
	path := filepath.Join(t.TempDir(), "history.json")
	full := 0
	for i := range 12 * 24 { // a day of refreshes every 5 minutes, a restart before each
		s := history.Open(path, log.NewNopLogger())
		n, err := s.Sync(context.Background(), "member", now.Add(time.Duration(i)*5*time.Minute), fetch)
		if err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
		if n > 1 {
			full++
		}
		if len(s.Workouts()) != 250 {
			t.Fatalf("sync %d: %d workouts served", i, len(s.Workouts()))
		}
	}
	if full > 3 {
		t.Errorf("%d full downloads in a day, want at most 3", full)
	}
}

// Issue 14, 8: times Peloton cannot mean (before it existed, far in the future, an end before
// the start, values that overflow a duration) are kept out of every signal, logged once, and
// do not make later syncs download anything more.
func TestImplausibleTimesAreKeptOutOfTheSignals(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ws := cycling(5, now)
	odd := []client.Workout{
		{ID: "overflow", StartTime: client.Number{Value: -9.2e18, Valid: true}, EndTime: client.Number{Value: 9.2e18, Valid: true}, Status: "COMPLETE", FitnessDiscipline: "cycling"},
		{ID: "future", StartTime: client.Number{Value: float64(now.AddDate(0, 0, 400).Unix()), Valid: true}, EndTime: client.Number{Value: float64(now.AddDate(0, 0, 400).Unix() + 600), Valid: true}, Status: "COMPLETE", FitnessDiscipline: "cycling"},
		{ID: "backwards", StartTime: client.Number{Value: float64(now.Add(-time.Hour).Unix()), Valid: true}, EndTime: client.Number{Value: float64(now.Add(-2 * time.Hour).Unix()), Valid: true}, Status: "COMPLETE", FitnessDiscipline: "cycling"},
		{ID: "1970", StartTime: client.Number{Value: 600, Valid: true}, EndTime: client.Number{Value: 1200, Valid: true}, Status: "COMPLETE", FitnessDiscipline: "cycling"},
	}
	ws = append(odd, ws...)
	var logs syncbuf.Buffer
	s := history.Open("", log.NewLogfmtLogger(&logs))
	for range 2 {
		requests := 0
		if _, err := s.Sync(context.Background(), "member", now, pagedFetch(&ws, &requests)); err != nil {
			t.Fatal(err)
		}
		if requests != 1 {
			t.Errorf("a sync took %d requests, want 1", requests)
		}
	}
	c := history.Summarize(s.Workouts(), now, time.UTC, time.Monday).Disciplines["cycling"]
	if c.Count != 5 || c.DurationSeconds != 5*1800 || c.LastEnd.After(now) {
		t.Errorf("cycling = %+v; want the 5 plausible rides only, none ending in the future", c)
	}
	if n := strings.Count(logs.String(), "implausible times"); n != 1 {
		t.Errorf("%d log lines about implausible times, want 1:\n%s", n, logs.String())
	}
}

// A first download that fails (a Peloton repeating its pages, or a page that times out) must
// not use up the day's full downloads: refreshes retried 1, 2, 4 and 8 minutes apart, with a
// restart before each (a crash-looping container), spent all three in minutes, and the
// history then stayed empty for 24 hours after Peloton recovered, as no sync sent a request.
func TestFailedFirstDownloadsDoNotSpendTheBudget(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	yes := true
	for name, broken := range map[string]func(healthy history.FetchFunc) history.FetchFunc{
		"repeating pages": func(healthy history.FetchFunc) history.FetchFunc {
			return func(ctx context.Context, _, limit int) (*client.WorkoutPage, error) {
				p, err := healthy(ctx, 0, limit) // page ignored, more always announced
				if p != nil {
					p.ShowNext = &yes
				}
				return p, err
			}
		},
		"a page that times out": func(healthy history.FetchFunc) history.FetchFunc {
			return func(ctx context.Context, page, limit int) (*client.WorkoutPage, error) {
				if page == 2 {
					return nil, context.DeadlineExceeded
				}
				return healthy(ctx, page, limit)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			ws := cycling(250, now)
			requests := 0
			healthy := pagedFetch(&ws, &requests)
			path := filepath.Join(t.TempDir(), "history.json")
			at := now
			for i, wait := range []time.Duration{0, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute} {
				at = at.Add(wait)
				s := history.Open(path, log.NewNopLogger())
				if _, err := s.Sync(context.Background(), "member", at, broken(healthy)); err == nil {
					t.Fatalf("attempt %d against a broken Peloton succeeded", i)
				}
			}
			s := history.Open(path, log.NewNopLogger())
			requests = 0
			if _, err := s.Sync(context.Background(), "member", at.Add(16*time.Minute), healthy); err != nil {
				t.Errorf("the first sync after Peloton recovered: %v", err)
			}
			if requests != 3 || len(s.Workouts()) != 250 {
				t.Errorf("the first sync after Peloton recovered sent %d requests and holds %d workouts; want the full download (3) of 250",
					requests, len(s.Workouts()))
			}
		})
	}
}

// A deep deletion and a new workout between two syncs put Peloton's total back where it was at
// the last full download: the history, one workout longer than Peloton's list, must not pass
// for consistent because the total is the one that was excused before.
func TestADeepDeletionAndANewWorkoutAreNoticed(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for name, odd := range map[string]bool{"every workout keepable": false, "one without an id": true} {
		t.Run(name, func(t *testing.T) {
			ws := cycling(250, now.Add(-24*time.Hour))
			if odd {
				ws[3].ID = "" // Peloton counts it, the history cannot keep it
			}
			requests := 0
			fetch := pagedFetch(&ws, &requests)
			s := history.Open("", log.NewNopLogger())
			for i := range 2 {
				if _, err := s.Sync(context.Background(), "member", now, fetch); err != nil {
					t.Fatal(err)
				}
				if i == 1 && requests != 3+1 {
					t.Fatalf("two syncs of an unchanged list took %d requests, want 3 + 1", requests)
				}
			}
			ws = slices.Delete(ws, 200, 201) // an old workout, far below the newest page
			ws = slices.Insert(ws, 0, cycling(1, now.Add(time.Hour))...)
			ws[0].ID = "new"
			if _, err := s.Sync(context.Background(), "member", now.Add(time.Hour), fetch); err != nil {
				t.Fatal(err)
			}
			want := slices.DeleteFunc(ids(ws), func(id string) bool { return id == "" })
			if got := ids(s.Workouts()); !slices.Equal(got, want) {
				t.Errorf("the history holds %d workouts, Peloton lists %d keepable; differences: %v", len(got), len(want), symmetricDifference(got, want))
			}
		})
	}
}

// A member with no workouts yet has an empty history after every sync, so every sync is a
// full download, of one empty page. Those must not spend the day's budget either: after three
// the workouts source went down for a day, and the first workout went unseen.
func TestAnAccountWithoutWorkoutsKeepsSyncing(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var ws []client.Workout
	requests := 0
	fetch := pagedFetch(&ws, &requests)
	s := history.Open(filepath.Join(t.TempDir(), "history.json"), log.NewNopLogger())
	at := now
	for i := range 6 {
		at = at.Add(5 * time.Minute)
		requests = 0
		if _, err := s.Sync(context.Background(), "member", at, fetch); err != nil || requests != 1 {
			t.Fatalf("sync %d of an empty account: %d requests, %v; want 1 and no error", i, requests, err)
		}
	}
	ws = cycling(1, at)
	if _, err := s.Sync(context.Background(), "member", at.Add(5*time.Minute), fetch); err != nil || len(s.Workouts()) != 1 {
		t.Errorf("the first workout: %v, history of %d", err, len(s.Workouts()))
	}
}

// What was learned of the member stays when a later refresh learns less (its profile or
// overview failed), grows with what it learns, and survives a restart.
func TestProfileIsKeptAndMerged(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 5})
	s := history.Open(e.path, log.NewNopLogger())
	e.sync(t, s)
	s.SetProfile(history.Profile{Names: map[string]string{"cycling": "Cycling"}, Timezone: "America/Chicago"})
	s.SetProfile(history.Profile{})
	s.SetProfile(history.Profile{Names: map[string]string{"caesar": "Rowing"}})
	want := history.Profile{Names: map[string]string{"cycling": "Cycling", "caesar": "Rowing"}, Timezone: "America/Chicago"}
	for _, st := range []*history.Store{s, history.Open(e.path, log.NewNopLogger())} {
		if got := st.Profile(); !reflect.DeepEqual(got, want) {
			t.Errorf("profile %+v, want %+v", got, want)
		}
	}
}

// A sync that finds nothing new leaves the file as it is: a history of thousands of workouts
// is not written again every five minutes (an SD card's wear, and memory churn).
func TestSyncWithNothingNewWritesNothing(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 30})
	s := history.Open(e.path, log.NewNopLogger())
	e.sync(t, s)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(e.path, old, old); err != nil {
		t.Fatal(err)
	}
	e.sync(t, s)
	if fi, err := os.Stat(e.path); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("the history file was written again by a sync with nothing new (%v)", err)
	}
	e.sim.AddWorkout(simulator.Workout{})
	e.sync(t, s)
	if fi, err := os.Stat(e.path); err != nil || fi.ModTime().Equal(old) {
		t.Errorf("a new workout was not saved (%v)", err)
	}
}

// A detail set is never pending again, shows in the next read of the workouts, and leaves a
// slice read before untouched (readers hold no lock); it is saved with the next SaveDetails.
func TestSetDetail(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 5})
	s := history.Open(e.path, log.NewNopLogger())
	e.sync(t, s)
	before := s.Workouts()
	none := func(string) bool { return false }
	id, ok := s.PendingDetail(none)
	if !ok {
		t.Fatal("no workout pending its detail")
	}
	s.SetDetail(id, history.Detail{Unavailable: true})
	s.SetDetail("no-such-workout", history.Detail{})
	if next, _ := s.PendingDetail(none); next == id {
		t.Errorf("workout %s still pending after its detail was set", id)
	}
	if s.PendingDetails() != history.Pending(before)-1 {
		t.Errorf("%d pending, want one fewer than %d", s.PendingDetails(), history.Pending(before))
	}
	after := s.Workouts()
	i := slices.IndexFunc(after, func(w history.Workout) bool { return w.ID == id })
	if i < 0 || after[i].Detail == nil || !after[i].Detail.Unavailable || before[i].Detail != nil {
		t.Errorf("the detail is not in the workouts read after, or changed those read before")
	}
	s.SaveDetails()
	reopened := history.Open(e.path, log.NewNopLogger()).Workouts()
	if j := slices.IndexFunc(reopened, func(w history.Workout) bool { return w.ID == id }); j < 0 || reopened[j].Detail == nil {
		t.Error("the detail was not saved")
	}
}

// A save that failed is made again by the next sync, even one with nothing new: the file
// holds the day's full downloads, which a restart must not forget.
func TestAFailedSaveIsMadeAgain(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 30})
	if err := os.Mkdir(e.path, 0o700); err != nil { // a directory where the file goes: saving fails
		t.Fatal(err)
	}
	s := history.Open(e.path, log.NewNopLogger())
	e.sync(t, s)
	if err := os.Remove(e.path); err != nil {
		t.Fatal(err)
	}
	e.sync(t, s)
	if n := len(history.Open(e.path, log.NewNopLogger()).Workouts()); n != 30 {
		t.Errorf("after the failed save and a sync with nothing new, the file holds %d workouts, want 30", n)
	}
}
