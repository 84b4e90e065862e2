package collector

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peloton-exporter/peloton_exporter/client"
)

// FuzzOverview feeds arbitrary overview bodies through decoding and every sample builder: a
// body Peloton sends must never panic the exporter or yield samples the registry refuses, and
// the samples must say what the body said: one per discipline and achievement (the first entry
// of a slug, when it has a count), a streak exactly when Peloton sent it, and a record's
// timestamp only beside its output. Seeds: testdata/overview_*.json and testdata/fuzz.
func FuzzOverview(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "overview_*.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	d := newDescs("cached.")
	f.Fuzz(func(t *testing.T, b []byte) {
		var ov client.Overview
		if json.Unmarshal(b, &ov) != nil {
			return
		}
		var s metricSet
		want := map[string]map[string]float64{} // metric name → labels → value
		expect := func(name string, n client.Number, labels ...string) {
			if want[name] == nil {
				want[name] = map[string]float64{}
			}
			if n.Valid {
				want[name][strings.Join(labels, "\xff")] = n.Value
			}
		}
		if ov.WorkoutCounts != nil {
			d.addWorkoutCounts(&s, ov.WorkoutCounts.Workouts)
			seen := map[client.Text]bool{}
			for _, w := range ov.WorkoutCounts.Workouts {
				if w.Slug != "" && !seen[w.Slug] {
					seen[w.Slug] = true
					expect("peloton_workouts", w.Count, string(w.Slug), string(w.Name))
				}
			}
		}
		d.addRecords(&s, ov.PersonalRecords)
		if ov.Streaks != nil {
			d.addStreaks(&s, ov.Streaks, true)
			expect("peloton_weekly_streak", ov.Streaks.CurrentWeekly)
			expect("peloton_weekly_streak_best", ov.Streaks.BestWeekly)
			expect("peloton_weekly_streak_start_timestamp_seconds", ov.Streaks.StartDateOfCurrentWeekly)
			expect("peloton_daily_streak", ov.Streaks.CurrentDaily)
			expect("peloton_daily_streak_start_timestamp_seconds", ov.Streaks.StartDateOfCurrentDaily)
		}
		if ov.AchievementCounts != nil {
			d.addAchievements(&s, ov.AchievementCounts)
			seen := map[client.Text]bool{}
			for _, a := range ov.AchievementCounts.Achievements {
				if slug := a.Template.Slug; slug != "" && !seen[slug] {
					seen[slug] = true
					expect("peloton_achievements", a.Count, string(slug), string(a.Template.Name))
				}
			}
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(constCollector{d: d, metrics: s.metrics()})
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("the registry refused the samples: %v", err)
		}
		got := map[string]map[string]float64{}
		for _, mf := range mfs {
			got[mf.GetName()] = map[string]float64{}
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetValue())
				}
				v := m.GetGauge().GetValue()
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%s{%s} = %v: a sample from Peloton's data is not a finite number", mf.GetName(), strings.Join(labels, ","), v)
				}
				got[mf.GetName()][strings.Join(labels, "\xff")] = v
			}
		}
		for name, samples := range want {
			if len(got[name]) != len(samples) {
				t.Fatalf("%s: %d samples, want %d: %v vs %v", name, len(got[name]), len(samples), got[name], samples)
			}
			for labels, v := range samples {
				g, ok := got[name][labels]
				if !ok || g != v {
					t.Fatalf("%s{%s} = %v (present %v), want %v", name, labels, g, ok, v)
				}
			}
		}
		for labels := range got["peloton_personal_record_timestamp_seconds"] {
			if _, ok := got["peloton_personal_record_output_joules"][labels]; !ok {
				t.Fatalf("a record timestamp {%s} without its output", labels)
			}
		}
		for labels := range got["peloton_personal_record_output_joules"] {
			discipline, duration, _ := strings.Cut(labels, "\xff")
			if discipline == "" || !recordDuration.MatchString(duration) {
				t.Fatalf("a record output with labels {%s}", labels)
			}
		}
	})
}

var recordDuration = regexp.MustCompile(`^[1-9][0-9]*[ms]$`)

type constCollector struct {
	d       *descs
	metrics []prometheus.Metric
}

func (c constCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d.all() {
		ch <- d
	}
}

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.metrics {
		ch <- m
	}
}
