package history

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/peloton-exporter/peloton_exporter/client"
)

// FuzzSync serves one arbitrary page body for every page (a Peloton that ignores page, or
// sends anything): a sync must end within two requests, and whatever it kept must make sane
// signals: no workout ending after now (give or take the clock skew), no negative or
// non-finite duration or output, no more counted workouts than Peloton listed. Syncs retried
// as the refresh back-off does must not get stuck (failed downloads spending the budget, say). Seeds: testdata/fuzz/FuzzSync.
func FuzzSync(f *testing.F) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		var pg client.WorkoutPage
		if json.Unmarshal(body, &pg) != nil {
			return
		}
		requests := 0
		fetch := func(context.Context, int, int) (*client.WorkoutPage, error) {
			requests++
			p := pg
			return &p, nil
		}
		s := Open("", log.NewNopLogger())
		at := now
		for i, wait := range []time.Duration{0, time.Minute, 2 * time.Minute, 4 * time.Minute} { // the refresh back-off
			at = at.Add(wait)
			requests = 0
			s.Sync(context.Background(), "member", at, fetch)
			if requests > 2 {
				t.Fatalf("sync %d: %d requests for one page served again and again", i, requests)
			}
		}
		if len(pg.Data) > 0 && requests == 0 {
			t.Fatal("the last sync sent no request: the ones before left it stuck")
		}
		sum := Summarize(s.Workouts(), now, time.UTC, time.Monday)
		counted := 0
		for slug, d := range sum.Disciplines {
			counted += d.Count
			if d.LastEnd.After(now.Add(clockSkew)) {
				t.Fatalf("%s: last workout ends at %v, after now", slug, d.LastEnd)
			}
			if d.DurationSeconds < 0 || math.IsInf(d.DurationSeconds, 0) || math.IsNaN(d.DurationSeconds) {
				t.Fatalf("%s: duration %v", slug, d.DurationSeconds)
			}
			if math.IsInf(d.OutputJoules, 0) || math.IsNaN(d.OutputJoules) {
				t.Fatalf("%s: output %v", slug, d.OutputJoules)
			}
		}
		if counted > len(pg.Data) {
			t.Fatalf("%d workouts counted from a page of %d", counted, len(pg.Data))
		}
		if sum.CurrentWeekWorkouts > counted {
			t.Fatalf("%d workouts this week, %d in all", sum.CurrentWeekWorkouts, counted)
		}
	})
}
