package history

import (
	"time"
)

// Summary is what the history says, at one moment, in one time zone.
type Summary struct {
	Disciplines map[string]*DisciplineSummary
	// WeekStart and WeekEnd bound the current streak week: WeekEnd is the first instant of
	// the next week.
	WeekStart, WeekEnd time.Time
	// CurrentWeekWorkouts counts the completed workouts started since WeekStart.
	CurrentWeekWorkouts int
	// WeeklyStreak counts consecutive streak weeks with a completed workout, up to the current
	// week, or to the previous one while the current week has none yet (it can still be saved).
	WeeklyStreak int
	// WeeklyStreakStart is the start of the streak's first workout (zero without a streak).
	WeeklyStreakStart time.Time
	// Instructors counts the completed workouts of each instructor's classes.
	Instructors map[string]int
	// Records are the output records Peloton flagged (is_total_work_personal_record), by
	// discipline and class length in seconds: the latest flagged workout of each.
	Records map[string]map[int]Record
}

// Record is a personal record as the history shows it.
type Record struct {
	Joules float64
	At     time.Time // the start of the workout that set it
}

// DisciplineSummary covers the completed workouts of one discipline.
type DisciplineSummary struct {
	Totals            // all of them
	Week       Totals // those started in the current streak week
	Imported   int    // of them, imported from other apps
	LastEnd    time.Time
	Last       Workout // the newest completed workout
	InProgress bool
}

// Totals add up completed workouts. A total is known (Has…) once a workout reported that
// value: a class without an output meter adds no output, a workout without a heart-rate strap
// no time in zones.
type Totals struct {
	Count                                                    int
	DurationSeconds                                          float64
	OutputJoules, DistanceMeters, EnergyJoules, EffortPoints float64
	HeartRateZoneSeconds                                     [5]float64
	HasOutput, HasDistance, HasEnergy, HasEffort, HasZones   bool
}

// add counts a completed workout.
func (t *Totals) add(w Workout) {
	t.Count++
	if w.End > w.Start {
		t.DurationSeconds += float64(w.End - w.Start)
	}
	if out, ok := w.Output(); ok {
		t.OutputJoules, t.HasOutput = t.OutputJoules+out, true
	}
	dt := w.Detail
	if dt == nil {
		return
	}
	sum := func(total *float64, known *bool, v *float64) {
		if v != nil {
			*total, *known = *total+*v, true
		}
	}
	sum(&t.DistanceMeters, &t.HasDistance, dt.DistanceMeters)
	sum(&t.EnergyJoules, &t.HasEnergy, dt.EnergyJoules)
	sum(&t.EffortPoints, &t.HasEffort, dt.EffortPoints)
	if z := dt.HeartRateZoneSecs; z != nil {
		for i, secs := range z {
			t.HeartRateZoneSeconds[i] += secs
		}
		t.HasZones = true
	}
}

// WeekBounds returns the streak week holding t: calendar weeks starting at midnight of
// firstDay in loc. Days are counted on the calendar rather than as 24-hour blocks, so a week
// across a daylight-saving change is 167 or 169 hours long, as it is on the member's clock.
func WeekBounds(t time.Time, loc *time.Location, firstDay time.Weekday) (start, end time.Time) {
	t = t.In(loc)
	back := (int(t.Weekday()) - int(firstDay) + 7) % 7
	y, m, d := t.Date()
	return time.Date(y, m, d-back, 0, 0, 0, 0, loc), time.Date(y, m, d-back+7, 0, 0, 0, 0, loc)
}

// Summarize computes the summary of workouts at now. A completed workout belongs to the week
// in which it was started, as Peloton's own streaks appear to count it (a class begun late on
// Sunday counts for that week).
func Summarize(workouts []Workout, now time.Time, loc *time.Location, firstDay time.Weekday) Summary {
	return NewSummarizer(loc, firstDay).summarize(workouts, now, false)
}

// Summarizer computes summaries in one time zone and week start, remembering the week of each
// workout: a backfill asks for thousands of moments of one history.
type Summarizer struct {
	loc      *time.Location
	firstDay time.Weekday
	weekOf   map[int64]int64 // a workout's start -> the start of its week (Unix seconds)
}

func NewSummarizer(loc *time.Location, firstDay time.Weekday) *Summarizer {
	return &Summarizer{loc: loc, firstDay: firstDay, weekOf: map[int64]int64{}}
}

// At is the summary the history gave at a past moment t: workouts started after t did not
// exist yet, and those that ended after it were in progress.
func (z *Summarizer) At(workouts []Workout, t time.Time) Summary {
	return z.summarize(workouts, t, true)
}

// Week returns the streak week holding t.
func (z *Summarizer) Week(t time.Time) (start, end time.Time) {
	return WeekBounds(t, z.loc, z.firstDay)
}

func (z *Summarizer) week(start int64) int64 {
	ws, ok := z.weekOf[start]
	if !ok {
		b, _ := WeekBounds(time.Unix(start, 0), z.loc, z.firstDay)
		ws = b.Unix()
		z.weekOf[start] = ws
	}
	return ws
}

func (z *Summarizer) summarize(workouts []Workout, now time.Time, past bool) Summary {
	s := Summary{Disciplines: map[string]*DisciplineSummary{}, Instructors: map[string]int{}, Records: map[string]map[int]Record{}}
	s.WeekStart, s.WeekEnd = WeekBounds(now, z.loc, z.firstDay)
	weeks := map[int64]int64{} // week start -> its earliest completed workout's start (Unix s)
	for _, w := range workouts {
		if w.Discipline == "" || w.Start == 0 {
			continue // kept for the sync's sake, but Peloton said too little to count it
		}
		if past && w.Start > now.Unix() {
			continue // not started yet
		}
		d := s.Disciplines[w.Discipline]
		if d == nil {
			d = &DisciplineSummary{}
			s.Disciplines[w.Discipline] = d
		}
		completed := w.Completed() && (!past || w.End <= now.Unix())
		// In the past, a workout that has ended since was still going; one that never got an
		// end and is not going now (abandoned, failed) was never in progress for the history.
		if w.Going() || (past && w.Completed() && !completed) {
			d.InProgress = true
		}
		if !completed {
			continue
		}
		d.add(w) // to the discipline's Totals
		if w.Imported {
			d.Imported++
		}
		if end := time.Unix(w.End, 0); end.After(d.LastEnd) {
			d.LastEnd, d.Last = end, w
		}
		if out, ok := w.Output(); ok && w.PR && w.ClassLength > 0 {
			s.addRecord(w, out)
		}
		if w.Instructor != "" {
			s.Instructors[w.Instructor]++
		}
		if w.Start >= s.WeekStart.Unix() && w.Start < s.WeekEnd.Unix() {
			s.CurrentWeekWorkouts++
			d.Week.add(w)
		}
		ws := z.week(w.Start)
		if first, ok := weeks[ws]; !ok || w.Start < first {
			weeks[ws] = w.Start
		}
	}

	week := s.WeekStart
	if _, ok := weeks[week.Unix()]; !ok {
		week, _ = WeekBounds(week.Add(-time.Second), z.loc, z.firstDay) // this week may still be saved
	}
	for {
		first, ok := weeks[week.Unix()]
		if !ok {
			break
		}
		s.WeeklyStreak++
		s.WeeklyStreakStart = time.Unix(first, 0)
		week, _ = WeekBounds(week.Add(-time.Second), z.loc, z.firstDay)
	}
	return s
}

// addRecord lets a flagged workout set the record of its discipline and class length, unless
// a later one already did.
func (s *Summary) addRecord(w Workout, joules float64) {
	byLength := s.Records[w.Discipline]
	if byLength == nil {
		byLength = map[int]Record{}
		s.Records[w.Discipline] = byLength
	}
	if r, ok := byLength[w.ClassLength]; !ok || w.Start >= r.At.Unix() {
		byLength[w.ClassLength] = Record{Joules: joules, At: time.Unix(w.Start, 0)}
	}
}

// Timezone picks the member's zone: the override if given, else the profile's, else that of
// the newest workout that names one, else UTC. It says which it chose and why.
func Timezone(override, profile string, workouts []Workout) (*time.Location, string, error) {
	candidates := []struct{ name, source string }{{override, "--streak.timezone"}, {profile, "profile"}}
	for _, w := range workouts {
		if w.Timezone != "" {
			candidates = append(candidates, struct{ name, source string }{w.Timezone, "newest workout"})
			break
		}
	}
	var firstErr error
	for _, c := range candidates {
		if c.name == "" {
			continue
		}
		loc, err := time.LoadLocation(c.name)
		if err == nil {
			return loc, c.source, nil
		}
		if c.source == "--streak.timezone" {
			return nil, "", err // the user's own setting must not be silently ignored
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return time.UTC, "default", firstErr
}
