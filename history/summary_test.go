package history

import (
	"testing"
	"time"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestWeekBoundsAcrossDaylightSaving(t *testing.T) {
	chicago := mustLoad(t, "America/Chicago")
	cases := []struct {
		name       string
		now        time.Time
		first      time.Weekday
		start, end string // RFC 3339 in UTC
		hours      float64
	}{
		// Clocks go back at 02:00 on Sunday 2026-11-01: the week holding it has 169 hours.
		{"fall back, monday weeks", time.Date(2026, 11, 1, 12, 0, 0, 0, chicago), time.Monday, "2026-10-26T05:00:00Z", "2026-11-02T06:00:00Z", 169},
		{"fall back, sunday weeks", time.Date(2026, 11, 1, 1, 30, 0, 0, chicago), time.Sunday, "2026-11-01T05:00:00Z", "2026-11-08T06:00:00Z", 169},
		{"sunday before the change, sunday weeks", time.Date(2026, 10, 31, 23, 0, 0, 0, chicago), time.Sunday, "2026-10-25T05:00:00Z", "2026-11-01T05:00:00Z", 168},
		// Clocks go forward at 02:00 on Sunday 2026-03-08: 167 hours.
		{"spring forward, monday weeks", time.Date(2026, 3, 8, 3, 30, 0, 0, chicago), time.Monday, "2026-03-02T06:00:00Z", "2026-03-09T05:00:00Z", 167},
		{"monday start itself", time.Date(2026, 11, 2, 0, 0, 0, 0, chicago), time.Monday, "2026-11-02T06:00:00Z", "2026-11-09T06:00:00Z", 168},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start, end := WeekBounds(tc.now, chicago, tc.first)
			if got := start.UTC().Format(time.RFC3339); got != tc.start {
				t.Errorf("start = %s, want %s", got, tc.start)
			}
			if got := end.UTC().Format(time.RFC3339); got != tc.end {
				t.Errorf("end = %s, want %s", got, tc.end)
			}
			if h := end.Sub(start).Hours(); h != tc.hours {
				t.Errorf("week length = %vh, want %vh", h, tc.hours)
			}
		})
	}
}

// done is a completed workout that ended at end.
func done(id string, end time.Time, discipline string, minutes int, joules float64) Workout {
	return Workout{ID: id, Start: end.Add(-time.Duration(minutes) * time.Minute).Unix(), End: end.Unix(), Status: "COMPLETE", Discipline: discipline, Work: joules, HasWork: joules > 0}
}

func TestSummarizeLateSundayWorkoutOnTheDaylightSavingSunday(t *testing.T) {
	chicago := mustLoad(t, "America/Chicago")
	// A class from 23:00 to 23:30 CST on the Sunday the clocks went back starts at 05:00 UTC
	// on Monday: in local terms it still belongs to the week that began on Monday 26 October,
	// whereas 168 hours after that week's start would have put it into the next week.
	late := time.Date(2026, 11, 1, 23, 30, 0, 0, chicago)
	ws := []Workout{done("b", late, "cycling", 30, 300000), done("a", late.AddDate(0, 0, -7), "yoga", 20, 0)}

	s := Summarize(ws, late.Add(10*time.Minute), chicago, time.Monday)
	if want := late.AddDate(0, 0, -7).Add(-20 * time.Minute); !s.WeeklyStreakStart.Equal(want) {
		t.Errorf("streak start = %v, want the first workout's start %v", s.WeeklyStreakStart, want)
	}
	if s.CurrentWeekWorkouts != 1 {
		t.Errorf("current week workouts = %d, want 1", s.CurrentWeekWorkouts)
	}
	if s.WeeklyStreak != 2 {
		t.Errorf("weekly streak = %d, want 2", s.WeeklyStreak)
	}
	// Just after midnight the new week has started and holds nothing yet; the streak stands.
	s = Summarize(ws, time.Date(2026, 11, 2, 0, 5, 0, 0, chicago), chicago, time.Monday)
	if s.CurrentWeekWorkouts != 0 || s.WeeklyStreak != 2 {
		t.Errorf("next Monday: current week = %d, streak = %d; want 0 and 2", s.CurrentWeekWorkouts, s.WeeklyStreak)
	}
	if want := time.Date(2026, 11, 9, 0, 0, 0, 0, chicago); !s.WeekEnd.Equal(want) {
		t.Errorf("week end = %v, want %v", s.WeekEnd, want)
	}
	// A whole empty week later the streak is broken.
	s = Summarize(ws, time.Date(2026, 11, 9, 0, 5, 0, 0, chicago), chicago, time.Monday)
	if s.WeeklyStreak != 0 {
		t.Errorf("after an empty week: streak = %d, want 0", s.WeeklyStreak)
	}
}

func TestSummarizeWeekStartMondayVersusSunday(t *testing.T) {
	utc := time.UTC
	// Workouts on Sunday 2026-11-15 and on Monday 2026-11-16, looked at on Tuesday the 17th.
	sunday := time.Date(2026, 11, 15, 10, 0, 0, 0, utc)
	monday := time.Date(2026, 11, 16, 10, 0, 0, 0, utc)
	ws := []Workout{done("m", monday, "running", 30, 0), done("s", sunday, "running", 30, 0)}
	now := time.Date(2026, 11, 17, 10, 0, 0, 0, utc)

	mon := Summarize(ws, now, utc, time.Monday)
	if mon.CurrentWeekWorkouts != 1 || mon.WeeklyStreak != 2 {
		t.Errorf("monday weeks: current = %d, streak = %d; want 1 (Monday) and 2", mon.CurrentWeekWorkouts, mon.WeeklyStreak)
	}
	sun := Summarize(ws, now, utc, time.Sunday)
	if sun.CurrentWeekWorkouts != 2 || sun.WeeklyStreak != 1 {
		t.Errorf("sunday weeks: current = %d, streak = %d; want 2 (both in the week from Sunday) and 1", sun.CurrentWeekWorkouts, sun.WeeklyStreak)
	}
	if got := sun.WeekEnd.Weekday(); got != time.Sunday {
		t.Errorf("sunday week ends on %v", got)
	}
}

func TestSummarizeDisciplines(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ws := []Workout{
		{ID: "live", Start: now.Add(-10 * time.Minute).Unix(), Status: "IN_PROGRESS", Discipline: "cycling"},
		{ID: "unended", Start: now.Add(-30 * time.Hour).Unix(), Status: "COMPLETE", Discipline: "yoga"},
		{ID: "nameless", Start: now.Add(-40 * time.Hour).Unix(), End: now.Add(-39 * time.Hour).Unix(), Status: "COMPLETE"},
		done("c2", now.Add(-time.Hour), "cycling", 45, 500000),
		done("c1", now.Add(-48*time.Hour), "cycling", 30, 300000.5),
		done("y1", now.Add(-72*time.Hour), "yoga", 20, 0),
	}
	s := Summarize(ws, now, time.UTC, time.Monday)
	c := s.Disciplines["cycling"]
	if c.Count != 2 || !c.InProgress || c.OutputJoules != 800000.5 || c.DurationSeconds != 75*60 || !c.LastEnd.Equal(now.Add(-time.Hour)) {
		t.Errorf("cycling = %+v", c)
	}
	if y := s.Disciplines["yoga"]; y.HasOutput || y.Count != 1 || y.InProgress {
		t.Errorf("yoga = %+v: no output reported, so no output sample; a COMPLETE workout without an end is not in progress", y)
	}
	if _, ok := s.Disciplines[""]; ok {
		t.Error("a workout without a discipline was counted")
	}
}

func TestTimezoneChoice(t *testing.T) {
	ws := []Workout{{ID: "x", Timezone: "Etc/GMT+6"}}
	cases := []struct {
		override, profile, wantZone, wantSource string
	}{
		{"Europe/Berlin", "America/Chicago", "Europe/Berlin", "--streak.timezone"},
		{"", "America/Chicago", "America/Chicago", "profile"},
		{"", "", "Etc/GMT+6", "newest workout"},
		{"", "Not/AZone", "Etc/GMT+6", "newest workout"},
	}
	for _, tc := range cases {
		loc, source, _ := Timezone(tc.override, tc.profile, ws)
		if loc.String() != tc.wantZone || source != tc.wantSource {
			t.Errorf("Timezone(%q, %q) = %s from %s, want %s from %s", tc.override, tc.profile, loc, source, tc.wantZone, tc.wantSource)
		}
	}
	if loc, _, err := Timezone("", "Not/AZone", nil); loc != time.UTC || err == nil {
		t.Errorf("a bad profile zone and no workouts: got %v, %v; want UTC and an error", loc, err)
	}
	if _, _, err := Timezone("Mars/Olympus", "", nil); err == nil {
		t.Error("a bad --streak.timezone was accepted")
	}
}
