package collector

import (
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peloton-exporter/peloton_exporter/history"
)

// addHistory exports the signals derived from the workout history.
func (d *descs) addHistory(s *metricSet, sum history.Summary) {
	s.add(d.weekWorkouts, prometheus.GaugeValue, float64(sum.CurrentWeekWorkouts))
	s.add(d.weekEnd, prometheus.GaugeValue, float64(sum.WeekEnd.Unix()))
	for _, slug := range sortedKeys(sum.Disciplines) {
		ds := sum.Disciplines[slug]
		if ds.InProgress {
			s.add(d.inProgress, prometheus.GaugeValue, 1, slug)
		}
		if ds.Count == 0 {
			continue
		}
		s.add(d.lastWorkout, prometheus.GaugeValue, float64(ds.LastEnd.Unix()), slug)
		d.addTotals(s, d.lifetime, slug, ds.Totals, ds.Totals)
	}
}

// addDerivedStreak exports the weekly streak counted from the history, marked as derived.
func (d *descs) addDerivedStreak(s *metricSet, sum history.Summary) {
	s.add(d.weeklyStreak, prometheus.GaugeValue, float64(sum.WeeklyStreak))
	if sum.WeeklyStreak > 0 {
		s.add(d.weeklyStart, prometheus.GaugeValue, float64(sum.WeeklyStreakStart.Unix()))
	}
	s.add(d.weeklyDerived, prometheus.GaugeValue, 1)
}

// addHistoryRecords exports the personal records the history's flagged workouts set.
func (d *descs) addHistoryRecords(s *metricSet, sum history.Summary) {
	for _, slug := range sortedKeys(sum.Records) {
		byLength := sum.Records[slug]
		lengths := make([]int, 0, len(byLength))
		for l := range byLength {
			lengths = append(lengths, l)
		}
		sort.Ints(lengths)
		for _, l := range lengths {
			r := byLength[l]
			dur, _ := classLength(strconv.Itoa(l))
			s.add(d.prOutput, prometheus.GaugeValue, r.Joules, slug, dur)
			s.add(d.prTime, prometheus.GaugeValue, float64(r.At.Unix()), slug, dur)
		}
	}
}

// addDerived exports every series the workout history alone gives: what a backfill writes for
// the past. The live exporter prefers the overview's counts, streak and records.
func (d *descs) addDerived(s *metricSet, sum history.Summary, names map[string]string) {
	d.addHistoryCounts(s, sum, names)
	d.addDerivedStreak(s, sum)
	d.addHistoryRecords(s, sum)
	d.addHistory(s, sum)
	d.addTraining(s, sum)
}

// addHistoryCounts exports workout counts from the history, when neither the overview nor the
// profile had them; names come from whichever source last had them.
func (d *descs) addHistoryCounts(s *metricSet, sum history.Summary, names map[string]string) {
	for _, slug := range sortedKeys(sum.Disciplines) {
		if n := sum.Disciplines[slug].Count; n > 0 {
			name := names[slug]
			if name == "" {
				name = slug
			}
			s.add(d.workouts, prometheus.GaugeValue, float64(n), slug, name)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
