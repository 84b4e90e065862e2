package collector

import (
	"sort"

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
		s.add(d.duration, prometheus.GaugeValue, ds.DurationSeconds, slug)
		if ds.HasOutput {
			s.add(d.output, prometheus.GaugeValue, ds.OutputJoules, slug)
		}
	}
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
