package backfill_test

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/backfill"
	"github.com/peloton-exporter/peloton_exporter/collector"
	"github.com/peloton-exporter/peloton_exporter/history"
)

var (
	chicago, _ = time.LoadLocation("America/Chicago")
	target     = []collector.Label{{Name: "job", Value: "peloton"}, {Name: "instance", Value: "exporter:10070"}}
)

// at is a time in the member's zone.
func at(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, chicago)
}

// ride is a completed workout of minutes from start.
func ride(id, discipline string, start time.Time, minutes int, joules float64) history.Workout {
	return history.Workout{ID: id, Start: start.Unix(), End: start.Add(time.Duration(minutes) * time.Minute).Unix(),
		Status: "COMPLETE", Discipline: discipline, Work: joules, HasWork: joules > 0, ClassLength: minutes * 60}
}

// history of three weeks in March 2026, across the change to daylight-saving time on Sunday
// March 8: a ride on Monday 2 and Saturday 7, a yoga class on Sunday 8 after the change, then
// nothing in the week of the 9th (the streak breaks), and a ride on Wednesday 18.
func threeWeeks() []history.Workout {
	ws := []history.Workout{
		ride("w4", "cycling", at(2026, 3, 18, 7, 0), 30, 300000),
		ride("w3", "yoga", at(2026, 3, 8, 21, 30), 20, 0),
		ride("w2", "cycling", at(2026, 3, 7, 9, 0), 45, 450000),
		ride("w1", "cycling", at(2026, 3, 2, 18, 0), 30, 280000),
	}
	ws[2].PR = true
	return ws
}

type point struct {
	t int64
	v float64
}

// parse reads the text back: the series by their label text, in file order, and checks the
// format promtool wants.
func parse(t *testing.T, text string) map[string][]point {
	t.Helper()
	if !strings.HasSuffix(text, "\n# EOF\n") {
		t.Fatalf("the file does not end with # EOF (and nothing after it): %q", text[max(0, len(text)-40):])
	}
	lineRE := regexp.MustCompile(`^([a-z_]+)(\{.*\}) (\S+) (\d+)$`)
	out := map[string][]point{}
	families := map[string]bool{}
	family := ""
	for _, line := range strings.Split(strings.TrimSuffix(text, "# EOF\n"), "\n") {
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "# TYPE ") {
			name := strings.Fields(line)[2]
			if families[name] {
				t.Fatalf("family %s appears twice: OpenMetrics keeps a family together", name)
			}
			families[name], family = true, name
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a sample line: %q", line)
		}
		if m[1] != family {
			t.Fatalf("sample of %s under the TYPE of %s", m[1], family)
		}
		if !strings.HasPrefix(m[2], `{job="peloton",instance="exporter:10070"`) {
			t.Fatalf("sample without the target labels: %q", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatal(err)
		}
		ts, _ := strconv.ParseInt(m[4], 10, 64)
		key := m[1] + m[2]
		if prev := out[key]; len(prev) > 0 && prev[len(prev)-1].t >= ts {
			t.Fatalf("%s: timestamp %d after %d: each series must ascend", key, ts, prev[len(prev)-1].t)
		}
		out[key] = append(out[key], point{ts, v})
	}
	return out
}

// valueAt is what an instant query with a lookback of window would see at t.
func valueAt(ps []point, t int64, window time.Duration) (float64, bool) {
	for i := len(ps) - 1; i >= 0; i-- {
		if ps[i].t <= t {
			return ps[i].v, t-ps[i].t < int64(window/time.Second)
		}
	}
	return 0, false
}

func write(t *testing.T, ws []history.Workout, until time.Time) (map[string][]point, backfill.Stats) {
	t.Helper()
	var b bytes.Buffer
	st, err := backfill.Write(&b, ws, collector.NewHistorySeries(nil, chicago, time.Monday), backfill.Options{Labels: target, Until: until})
	if err != nil {
		t.Fatal(err)
	}
	if int64(b.Len()) != st.Bytes {
		t.Errorf("stats say %d bytes, %d written", st.Bytes, b.Len())
	}
	return parse(t, b.String()), st
}

const seriesPrefix = `{job="peloton",instance="exporter:10070",`

// At every minute of the three weeks, a query looking back one day sees what the history
// says at that minute: the workouts done by then, the weekly streak as it stood (broken in
// the empty week, counted in weeks that follow the calendar across the DST change), and no
// value from the future.
func TestValuesFollowTheHistory(t *testing.T) {
	ws := threeWeeks()
	until := at(2026, 3, 20, 12, 0)
	got, st := write(t, ws, until)
	if st.To.After(until) || st.From.Before(time.Unix(ws[3].Start, 0)) {
		t.Errorf("samples from %v to %v, want within the history and before %v", st.From, st.To, until)
	}
	rides := got[`peloton_workouts`+seriesPrefix+`discipline="cycling",name="Cycling"}`]
	streak := got[`peloton_weekly_streak{job="peloton",instance="exporter:10070"}`]
	weekEnd := got[`peloton_current_week_end_timestamp_seconds{job="peloton",instance="exporter:10070"}`]
	if len(rides) == 0 || len(streak) == 0 || len(weekEnd) == 0 {
		t.Fatalf("no rides or streak series in %d series", len(got))
	}
	for tm := ws[3].Start; tm <= until.Unix(); tm += 60 {
		wantRides := 0.0
		for _, w := range ws {
			if w.Discipline == "cycling" && w.End <= tm {
				wantRides++
			}
		}
		if v, ok := valueAt(rides, tm, 24*time.Hour); wantRides > 0 && (!ok || v != wantRides) {
			t.Fatalf("at %v: rides %v (%v), want %v", time.Unix(tm, 0).In(chicago), v, ok, wantRides)
		}
		// The rides of March 2 and 7 and the yoga of the 8th are one week (Monday 2 to
		// Sunday 8, 167 hours long); the week of the 9th is empty but can still be saved
		// until it ends; the week of the 16th starts broken, until the ride of the 18th.
		wantStreak := 1.0
		switch now := time.Unix(tm, 0); {
		case now.Before(time.Unix(ws[3].End, 0)):
			wantStreak = 0
		case !now.Before(at(2026, 3, 16, 0, 0)) && now.Before(time.Unix(ws[0].End, 0)):
			wantStreak = 0
		}
		// The week ends at the next Monday's midnight on the member's calendar: the week of
		// March 2 is 167 hours long.
		local := time.Unix(tm, 0).In(chicago)
		y, mo, d := local.Date()
		wantEnd := time.Date(y, mo, d+(8-int(local.Weekday()))%7, 0, 0, 0, 0, chicago)
		if local.Weekday() == time.Monday {
			wantEnd = time.Date(y, mo, d+7, 0, 0, 0, 0, chicago)
		}
		if v, ok := valueAt(weekEnd, tm, 24*time.Hour); !ok || v != float64(wantEnd.Unix()) {
			t.Fatalf("at %v: week ends %v (%v), want %v", local, time.Unix(int64(v), 0).In(chicago), ok, wantEnd)
		}
		if v, ok := valueAt(streak, tm, 24*time.Hour); !ok || v != wantStreak {
			t.Fatalf("at %v: weekly streak %v (%v), want %v", time.Unix(tm, 0).In(chicago), v, ok, wantStreak)
		}
	}
}

// Every series is written at least once a day while it exists, so that a query looking back
// a day never misses it; and peloton_workout_in_progress every 4 minutes during a workout and
// not after it, as plain queries see it.
func TestSamplesAreDenseEnough(t *testing.T) {
	ws := threeWeeks()
	got, _ := write(t, ws, at(2026, 3, 20, 12, 0))
	for key, ps := range got {
		if strings.HasPrefix(key, "peloton_workout_in_progress") || strings.HasPrefix(key, "peloton_weekly_streak_start") {
			continue // they exist only while a workout is in progress, or a streak runs
		}
		for i := 1; i < len(ps); i++ {
			if gap := ps[i].t - ps[i-1].t; gap > int64(backfill.DefaultStep/time.Second) {
				t.Errorf("%s: %ds between two samples", key, gap)
			}
		}
	}
	for _, w := range ws {
		key := `peloton_workout_in_progress` + seriesPrefix + `discipline="` + w.Discipline + `"}`
		for tm := w.Start; tm < w.End; tm += 30 {
			if v, ok := valueAt(got[key], tm, 5*time.Minute); !ok || v != 1 {
				t.Fatalf("%s at %ds into the workout: %v %v", key, tm-w.Start, v, ok)
			}
		}
		if _, ok := valueAt(got[key], w.End+5*60, 5*time.Minute); ok {
			t.Errorf("%s still seen 5 minutes after the workout ended", key)
		}
	}
}

// The flagged ride sets the 45-minute record, from its start on.
func TestRecordsFromFlaggedWorkouts(t *testing.T) {
	ws := threeWeeks()
	got, _ := write(t, ws, at(2026, 3, 20, 12, 0))
	rec := got[`peloton_personal_record_output_joules`+seriesPrefix+`discipline="cycling",duration="45m"}`]
	if v, ok := valueAt(rec, at(2026, 3, 10, 0, 0).Unix(), 24*time.Hour); !ok || v != 450000 {
		t.Errorf("45m record %v (%v), want 450000", v, ok)
	}
	if _, ok := got[`peloton_personal_record_output_joules`+seriesPrefix+`discipline="cycling",duration="30m"}`]; ok {
		t.Error("a record for a class length no workout was flagged for")
	}
	when := got[`peloton_personal_record_timestamp_seconds`+seriesPrefix+`discipline="cycling",duration="45m"}`]
	if v, _ := valueAt(when, at(2026, 3, 10, 0, 0).Unix(), 24*time.Hour); v != float64(ws[2].Start) {
		t.Errorf("record time %v, want the ride's start %d", v, ws[2].Start)
	}
}

// Nothing after --until: a workout after it is not counted, nor written.
func TestUntil(t *testing.T) {
	ws := threeWeeks()
	until := at(2026, 3, 10, 0, 0)
	got, st := write(t, ws, until)
	if st.To.Unix() != until.Unix() {
		t.Errorf("last sample at %v, want at the end %v", st.To, until)
	}
	rides := got[`peloton_workouts`+seriesPrefix+`discipline="cycling",name="Cycling"}`]
	if v := rides[len(rides)-1].v; v != 2 {
		t.Errorf("%v rides by the end, want the 2 before it", v)
	}
}

func TestLabelsAreChecked(t *testing.T) {
	for _, c := range []struct {
		labels []collector.Label
		want   string
	}{
		{nil, "job and instance are required"},
		{[]collector.Label{{Name: "job", Value: "peloton"}}, "labels instance are required"},
		{[]collector.Label{{Name: "instance", Value: "x"}}, "labels job are required"},
		{append(target, collector.Label{Name: "job", Value: "again"}), "given twice"},
		{append(target, collector.Label{Name: "__name__", Value: "x"}), "not a label name"},
		{append(target, collector.Label{Name: "a-b", Value: "x"}), "not a label name"},
		{append(target, collector.Label{Name: "discipline", Value: "x"}), "one of peloton_"},
	} {
		_, err := backfill.Write(&bytes.Buffer{}, threeWeeks(), collector.NewHistorySeries(nil, chicago, time.Monday),
			backfill.Options{Labels: c.labels, Until: at(2026, 3, 20, 0, 0)})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("labels %v: err %v, want it to say %q", c.labels, err, c.want)
		}
	}
}

// An empty history is a valid, empty file.
func TestEmptyHistory(t *testing.T) {
	var b bytes.Buffer
	st, err := backfill.Write(&b, nil, collector.NewHistorySeries(nil, chicago, time.Monday), backfill.Options{Labels: target, Until: time.Now()})
	if err != nil || b.String() != "# EOF\n" || st.Samples != 0 {
		t.Errorf("empty history: %q, %+v, %v", b.String(), st, err)
	}
}

// A workout that never ended and is not going on (Peloton keeps abandoned ones without an
// end) was never in progress: the history never says a workout ran for months.
func TestUnendedWorkoutIsNotInProgress(t *testing.T) {
	ws := threeWeeks()
	ws = append(ws, history.Workout{ID: "w0", Start: at(2026, 3, 3, 7, 0).Unix(), Status: "FAILED", Discipline: "running"})
	got, _ := write(t, ws, at(2026, 3, 20, 12, 0))
	key := `peloton_workout_in_progress` + seriesPrefix + `discipline="running"}`
	for _, p := range got[key] {
		if p.v != 0 {
			t.Fatalf("%s is %v at %v, for a workout that never ended", key, p.v, time.Unix(p.t, 0))
		}
	}
}

// A change of another series during a workout (here a second ride that starts and ends
// within a long one, on one of its 4-minute ticks) does not skip the tick that keeps
// peloton_workout_in_progress fresh.
func TestInProgressTicksSurviveOtherEvents(t *testing.T) {
	long := ride("w5", "cycling", at(2026, 3, 19, 10, 0), 60, 600000)
	short := ride("w6", "cycling", time.Unix(long.Start, 0).Add(backfill.DefaultLiveStep), 5, 50000)
	got, _ := write(t, append(threeWeeks(), long, short), at(2026, 3, 20, 12, 0))
	key := `peloton_workout_in_progress` + seriesPrefix + `discipline="cycling"}`
	for tm := long.Start; tm < long.End; tm += 30 {
		if v, ok := valueAt(got[key], tm, 5*time.Minute); !ok || v != 1 {
			t.Fatalf("%s at %ds into the long ride: %v %v", key, tm-long.Start, v, ok)
		}
	}
}
