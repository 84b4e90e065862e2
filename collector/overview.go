package collector

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peloton-exporter/peloton_exporter/client"
)

// addOverview turns the overview into samples. A section or value Peloton did not send makes
// no sample. It returns the record units it does not know, which are skipped rather than
// exported with a wrong unit.
func (d *descs) addOverview(s *metricSet, ov *client.Overview) (unknownUnits []string) {
	gauge := func(desc *prometheus.Desc, n client.Number, labels ...string) {
		if n.Valid {
			s.add(desc, prometheus.GaugeValue, n.Value, labels...)
		}
	}
	// The slug identifies a discipline or achievement; the name is only its display text. A
	// slug listed twice keeps its first entry, or sums by slug would count it twice.
	slugs := map[string]bool{}
	firstOf := func(kind string, slug client.Text) bool {
		key := kind + "\xff" + string(slug)
		if slug == "" || slugs[key] {
			return false
		}
		slugs[key] = true
		return true
	}
	if wc := ov.WorkoutCounts; wc != nil {
		for _, w := range wc.Workouts {
			if firstOf("workout", w.Slug) {
				gauge(d.workouts, w.Count, string(w.Slug), string(w.Name))
			}
		}
	}
	for _, g := range ov.PersonalRecords {
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
				s.add(d.prTime, prometheus.GaugeValue, float64(t.UnixMilli())/1000, string(g.Slug), dur)
			}
		}
	}
	if st := ov.Streaks; st != nil {
		gauge(d.weeklyStreak, st.CurrentWeekly)
		gauge(d.weeklyBest, st.BestWeekly)
		gauge(d.weeklyStart, st.StartDateOfCurrentWeekly)
		gauge(d.dailyStreak, st.CurrentDaily)
		gauge(d.dailyStart, st.StartDateOfCurrentDaily)
	}
	if ac := ov.AchievementCounts; ac != nil {
		for _, a := range ac.Achievements {
			if firstOf("achievement", a.Template.Slug) {
				gauge(d.achievements, a.Count, string(a.Template.Slug), string(a.Template.Name))
			}
		}
	}
	return unknownUnits
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
	case r.Value.Valid:
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
