package collector_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/collector"
)

// Without the detail filler there is no pending count: nothing is pending.
func TestNoDetailNoPendingCount(t *testing.T) {
	e := newTrainingEnv(t, trainingSource(t), collector.Options{NoDetail: true})
	e.refresh(t)
	if v, ok := sample(t, e.exp, "peloton_workout_detail_pending", nil); ok {
		t.Errorf("peloton_workout_detail_pending = %v with the detail turned off", v)
	}
	if _, ok := sample(t, e.exp, "peloton_source_up", map[string]string{"source": "workout_detail"}); ok {
		t.Error("a workout_detail source is reported with the detail turned off")
	}
}

// A CDN's 403 on every graph: no workout is marked as without a graph, the data stays, the
// workout_detail source is down and peloton_up is not.
func TestDetailBlockedByACDN(t *testing.T) {
	src := trainingSource(t)
	src.set("graph", nil, &client.HTTPError{Endpoint: "performance_graph", Status: 403, Message: "an HTML page instead of JSON (a CDN or bot-protection block?)"})
	e := newTrainingEnv(t, src, collector.Options{})
	e.refresh(t)
	waitFor(t, func() bool {
		v, _ := sample(t, e.exp, "peloton_source_up", map[string]string{"source": "workout_detail"})
		return e.exp.DetailIdle() && src.requests("graph") >= 3 && v == 0
	})
	expectSample(t, e.exp, "peloton_up", nil, 1)
	expectSample(t, e.exp, "peloton_workout_detail_pending", nil, 7)
	if n := src.requests("graph"); n != 3 {
		t.Errorf("%d graph requests while blocked, want a round of 3, then a pause", n)
	}
	e.clock.Advance(6 * time.Minute)
	e.refresh(t)
	waitFor(t, e.exp.DetailIdle)
	if n := src.requests("graph"); n != 3 {
		t.Errorf("%d graph requests after a refresh during the pause, want still 3", n)
	}
}

// The challenges fail: their last values stay, peloton_up stays 1, the challenges source is
// down, and the next refreshes do not ask again until the back-off (a TTL, doubling) is over.
func TestChallengesFailing(t *testing.T) {
	src := trainingSource(t)
	e := newTrainingEnv(t, src, collector.Options{NoDetail: true})
	e.refresh(t)
	progress := map[string]string{"year": "2025"}
	expectSample(t, e.exp, "peloton_annual_challenge_progress_seconds", progress, 7450*60)

	src.set("challenges", nil, &client.HTTPError{Endpoint: "challenges", Status: 500})
	addWorkout(t, src, "t8", 1764012000) // due: a workout was completed
	e.clock.Advance(6 * time.Minute)
	e.refresh(t)
	expectSample(t, e.exp, "peloton_up", nil, 1)
	expectSample(t, e.exp, "peloton_source_up", map[string]string{"source": "challenges"}, 0)
	expectSample(t, e.exp, "peloton_annual_challenge_progress_seconds", progress, 7450*60)
	failed := src.requests("challenges")
	e.clock.Advance(4 * time.Minute) // under the first back-off (one TTL)
	e.refresh(t)
	if n := src.requests("challenges"); n != failed {
		t.Errorf("%d challenge requests within the back-off, want still %d", n, failed)
	}
	src.set("challenges", nil, nil)
	e.clock.Advance(2 * time.Minute)
	e.refresh(t)
	expectSample(t, e.exp, "peloton_source_up", map[string]string{"source": "challenges"}, 1)
	if !strings.Contains(e.logs.String(), "cannot read the Annual Challenge") || !strings.Contains(e.logs.String(), "works again") {
		t.Errorf("the failure and the recovery are not logged:\n%s", e.logs.String())
	}
}

// The challenges are read again an hour after a read a new workout caused, once a day with
// nothing new, and after a workout was deleted and another done (the count unchanged).
func TestChallengesReadAgain(t *testing.T) {
	src := trainingSource(t)
	e := newTrainingEnv(t, src, collector.Options{NoDetail: true})
	e.refresh(t)
	reads := func() int { return src.requests("challenges") }
	step := func(d time.Duration) { e.clock.Advance(d); e.refresh(t) }

	step(6 * time.Minute)
	if n := reads(); n != 1 {
		t.Fatalf("%d reads with nothing new, want 1", n)
	}
	addWorkout(t, src, "t8", 1764012000)
	step(6 * time.Minute)
	if n := reads(); n != 2 {
		t.Fatalf("%d reads after a new workout, want 2", n)
	}
	step(30 * time.Minute)
	if n := reads(); n != 2 {
		t.Fatalf("%d reads half an hour later, want still 2", n)
	}
	step(31 * time.Minute)
	if n := reads(); n != 3 {
		t.Fatalf("%d reads an hour after the new workout's read, want 3", n)
	}
	step(6 * time.Minute)
	if n := reads(); n != 3 {
		t.Fatalf("%d reads after the recheck, want still 3", n)
	}
	step(24 * time.Hour)
	if n := reads(); n != 4 {
		t.Fatalf("%d reads a day later with nothing new, want 4", n)
	}
	// t2 is deleted and t9 done: as many workouts as before, a newer end.
	removeWorkout(t, src, "t2")
	addWorkout(t, src, "t9", 1764090000)
	step(6 * time.Minute)
	if n := reads(); n != 5 {
		t.Fatalf("%d reads after a deletion and a new workout, want 5", n)
	}
}

// editWorkouts changes the source's workout list.
func editWorkouts(t *testing.T, src *fileSource, edit func([]map[string]any) []map[string]any) {
	t.Helper()
	var page map[string]any
	if err := json.Unmarshal(src.body("workouts"), &page); err != nil {
		t.Fatal(err)
	}
	var ws []map[string]any
	for _, w := range page["data"].([]any) {
		ws = append(ws, w.(map[string]any))
	}
	ws = edit(ws)
	page["data"], page["total"] = ws, len(ws)
	b, err := json.Marshal(page)
	if err != nil {
		t.Fatal(err)
	}
	src.set("workouts", b, nil)
}

// addWorkout puts a completed ride of 20 minutes from start at the top of the history.
func addWorkout(t *testing.T, src *fileSource, id string, start int64) {
	editWorkouts(t, src, func(ws []map[string]any) []map[string]any {
		w := map[string]any{"id": id, "status": "COMPLETE", "start_time": start, "end_time": start + 1200,
			"fitness_discipline": "cycling", "total_work": 200000, "timezone": "America/Chicago"}
		return append([]map[string]any{w}, ws...)
	})
}

// removeWorkout drops a workout from the history, as a deletion at Peloton does.
func removeWorkout(t *testing.T, src *fileSource, id string) {
	editWorkouts(t, src, func(ws []map[string]any) []map[string]any {
		return slices.DeleteFunc(ws, func(w map[string]any) bool { return w["id"] == id })
	})
}
