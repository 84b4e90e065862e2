package collector

import (
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peloton-exporter/peloton_exporter/client"
)

// Every add* function makes no sample for a value Peloton did not send.

func gauge(s *metricSet, desc *prometheus.Desc, n client.Number, labels ...string) {
	if n.Valid {
		s.add(desc, prometheus.GaugeValue, n.Value, labels...)
	}
}

// addWorkoutCounts exports counts by discipline, from the overview or /api/me (same shape).
// The slug identifies a discipline; the name is only its display text. A slug listed twice
// keeps its first entry, or sums by slug would count it twice.
func (d *descs) addWorkoutCounts(s *metricSet, counts []client.WorkoutCount) {
	seen := map[client.Text]bool{}
	for _, w := range counts {
		if w.Slug != "" && !seen[w.Slug] {
			seen[w.Slug] = true
			gauge(s, d.workouts, w.Count, string(w.Slug), string(w.Name))
		}
	}
}

// addRecords exports personal records. It returns the record units it does not know, which
// are skipped rather than exported with a wrong unit.
func (d *descs) addRecords(s *metricSet, groups []client.RecordGroup) (unknownUnits []string) {
	for _, g := range groups {
		for _, r := range g.Records {
			joules, ok := recordJoules(r)
			if !ok {
				if r.UnitSlug != "" {
					unknownUnits = append(unknownUnits, string(r.UnitSlug))
				}
				continue
			}
			dur, ok := classLength(string(r.Slug))
			if g.Slug == "" || !ok {
				continue
			}
			s.add(d.prOutput, prometheus.GaugeValue, joules, string(g.Slug), dur)
			if t, err := client.ParseRecordDate(string(r.WorkoutDate)); err == nil {
				s.add(d.prTime, prometheus.GaugeValue, unixSeconds(t), string(g.Slug), dur)
			}
		}
	}
	return unknownUnits
}

// addStreaks exports the overview's streaks; the weekly ones only when withWeekly (otherwise
// they come from the history).
func (d *descs) addStreaks(s *metricSet, st *client.Streaks, withWeekly bool) {
	if withWeekly {
		gauge(s, d.weeklyStreak, st.CurrentWeekly)
		gauge(s, d.weeklyStart, st.StartDateOfCurrentWeekly)
	}
	gauge(s, d.weeklyBest, st.BestWeekly)
	gauge(s, d.dailyStreak, st.CurrentDaily)
	gauge(s, d.dailyStart, st.StartDateOfCurrentDaily)
}

func (d *descs) addAchievements(s *metricSet, ac *client.AchievementCounts) {
	seen := map[client.Text]bool{}
	for _, a := range ac.Achievements {
		if slug := a.Template.Slug; slug != "" && !seen[slug] {
			seen[slug] = true
			gauge(s, d.achievements, a.Count, string(slug), string(a.Template.Name))
		}
	}
}

// recordJoules reads a record's output in joules. Only kJ records are known: raw_value is in
// joules, value in rounded kJ (used only when raw_value is absent).
func recordJoules(r client.Record) (float64, bool) {
	if r.UnitSlug != "kj" {
		return 0, false
	}
	switch {
	case r.RawValue.Valid:
		return r.RawValue.Value, true
	case r.Value.Valid && math.Abs(r.Value.Value) < math.MaxFloat64/1000:
		return r.Value.Value * 1000, true
	}
	return 0, false
}

// classLength turns a record slug (class length in seconds, "2700") into a label ("45m").
func classLength(slug string) (string, bool) {
	secs, err := strconv.Atoi(slug)
	if err != nil || secs <= 0 {
		return "", false
	}
	if secs%60 == 0 {
		return strconv.Itoa(secs/60) + "m", true
	}
	return strconv.Itoa(secs) + "s", true
}
