package collector

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peloton-exporter/peloton_exporter/client"
)

// FuzzOverview feeds arbitrary overview bodies through decoding and every sample builder: a
// body Peloton sends must never panic the exporter or yield samples the registry refuses.
func FuzzOverview(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "overview_*.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"workout_counts":{"workouts":[{"slug":"a","name":"\xff","count":1},{"slug":"a","count":2}]}}`))
	d := newDescs("cached.")
	f.Fuzz(func(t *testing.T, b []byte) {
		var ov client.Overview
		if json.Unmarshal(b, &ov) != nil {
			return
		}
		var s metricSet
		if ov.WorkoutCounts != nil {
			d.addWorkoutCounts(&s, ov.WorkoutCounts.Workouts)
		}
		d.addRecords(&s, ov.PersonalRecords)
		if ov.Streaks != nil {
			d.addStreaks(&s, ov.Streaks, true)
		}
		if ov.AchievementCounts != nil {
			d.addAchievements(&s, ov.AchievementCounts)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(constCollector{d: d, metrics: s.metrics})
		if _, err := reg.Gather(); err != nil {
			t.Fatalf("the registry refused the samples: %v", err)
		}
	})
}

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
