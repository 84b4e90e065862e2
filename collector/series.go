package collector

import (
	"time"

	"github.com/peloton-exporter/peloton_exporter/history"
)

// Sample is the value of one series at one moment, with the names a text exposition needs.
type Sample struct {
	Name   string  // the metric name
	Help   string  // its HELP text
	Labels []Label // the series' own labels, in the metric's order
	Value  float64
}

// Label is one label of a Sample.
type Label struct{ Name, Value string }

// HistorySeries computes the series the exporter derives from a workout history, with the
// values it would have exported at any past moment: what a backfill writes. The live exporter
// builds the same series with the same code; it prefers the overview's workout counts, weekly
// streak and records where it has them.
type HistorySeries struct {
	d     *descs
	names map[string]string
	z     *history.Summarizer
}

// NewHistorySeries computes series with the discipline display names names (slug -> name; a
// slug without one takes Peloton's usual name, else the slug) and streak weeks in loc,
// starting on weekStart.
func NewHistorySeries(names map[string]string, loc *time.Location, weekStart time.Weekday) *HistorySeries {
	all := make(map[string]string, len(displayNames)+len(names))
	for slug, name := range displayNames {
		all[slug] = name
	}
	for slug, name := range names {
		all[slug] = name
	}
	return &HistorySeries{d: newDescs("written by peloton_exporter backfill."), names: all, z: history.NewSummarizer(loc, weekStart)}
}

// At returns every series the history gave at t.
func (h *HistorySeries) At(workouts []history.Workout, t time.Time) []Sample {
	var s metricSet
	h.d.addDerived(&s, h.z.At(workouts, t), h.names)
	out := make([]Sample, 0, len(s.samples))
	for _, smp := range s.samples {
		info := h.d.info[smp.desc]
		labels := make([]Label, len(smp.labels))
		for i, v := range smp.labels {
			labels[i] = Label{info.labels[i], v}
		}
		out = append(out, Sample{Name: info.name, Help: info.help, Labels: labels, Value: smp.value})
	}
	return out
}

// displayNames are the display names Peloton gives its disciplines (peloton-api.md §3), for
// a history whose exporter never read them from the overview: the names label of
// peloton_workouts must be the one live scrapes carry, or the past and the present would be
// two series.
var displayNames = map[string]string{
	"cycling": "Cycling", "running": "Running", "walking": "Walking", "strength": "Strength",
	"stretching": "Stretching", "yoga": "Yoga", "meditation": "Meditation", "cardio": "Cardio",
	"caesar": "Rowing", "bike_bootcamp": "Bike Bootcamp", "caesar_bootcamp": "Row Bootcamp",
	"circuit": "Tread Bootcamp", "outdoor": "Outdoor",
}

// Week returns the streak week holding t, as the series count weeks.
func (h *HistorySeries) Week(t time.Time) (start, end time.Time) { return h.z.Week(t) }

// HistoryMetricNames lists the metrics HistorySeries gives, found by asking it for a history
// that has every kind of value: a dashboard that reads them over a backfilled past must look
// back as far as the backfill's step.
func HistoryMetricNames() []string {
	zone := 5.0
	ws := []history.Workout{
		{ID: "a", Start: 1000, End: 4600, Status: "COMPLETE", Discipline: "cycling", Work: 1, HasWork: true, PR: true,
			ClassLength: 3600, Imported: true, Instructor: "x", Title: "y",
			Detail: &history.Detail{DistanceMeters: &zone, EnergyJoules: &zone, AvgOutputWatts: &zone, AvgCadenceRPM: &zone,
				AvgResistanceRatio: &zone, AvgSpeedMetersPerS: &zone, AvgHeartRate: &zone, MaxHeartRate: &zone,
				HeartRateZoneSecs: &[5]float64{1, 2, 3, 4, 5}, EffortPoints: &zone}},
		{ID: "b", Start: 5000, Status: "IN_PROGRESS", Discipline: "cycling"},
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range NewHistorySeries(nil, time.UTC, time.Monday).At(ws, time.Unix(6000, 0)) {
		if !seen[s.Name] {
			seen[s.Name] = true
			out = append(out, s.Name)
		}
	}
	return out
}
