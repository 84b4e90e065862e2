package history_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/history"
)

// FuzzDetailFromGraph reads arbitrary performance graphs: whatever Peloton sends, a detail
// holds only finite values in their ranges (no negative distance, a resistance ratio within
// 0..1, a heart rate a heart can have), and every zone of five or none.
func FuzzDetailFromGraph(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "collector", "testdata", "training", "graph_*.json"))
	for _, path := range seeds {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(b, "imperial")
		}
	}
	f.Add([]byte(`{"summaries":[{"slug":"distance","value":5}],"average_summaries":[{"slug":"avg_speed","value":"12"}]}`), "metric")
	f.Add([]byte(`{"effort_zones":{"total_effort_points":3,"heart_rate_z1_duration":1,"heart_rate_z2_duration":2,"heart_rate_z3_duration":3,"heart_rate_z4_duration":4,"heart_rate_z5_duration":5}}`), "")
	f.Fuzz(func(t *testing.T, body []byte, unit string) {
		var g client.PerformanceGraph
		if json.Unmarshal(body, &g) != nil {
			return
		}
		asked := 0
		d := history.DetailFromGraph(&g, func() string { asked++; return unit })
		if asked > 2 {
			t.Errorf("the member's unit was asked for %d times for one graph", asked)
		}
		check := func(name string, v *float64, max float64) {
			if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0 || *v > max) {
				t.Errorf("%s = %v, outside 0..%v", name, *v, max)
			}
		}
		check("distance", d.DistanceMeters, math.MaxFloat64)
		check("energy", d.EnergyJoules, math.MaxFloat64)
		check("average output", d.AvgOutputWatts, math.MaxFloat64)
		check("average cadence", d.AvgCadenceRPM, math.MaxFloat64)
		check("average resistance", d.AvgResistanceRatio, 1)
		check("average speed", d.AvgSpeedMetersPerS, math.MaxFloat64)
		check("average heart rate", d.AvgHeartRate, 260)
		check("max heart rate", d.MaxHeartRate, 260)
		check("effort points", d.EffortPoints, math.MaxFloat64)
		if z := d.HeartRateZoneSecs; z != nil {
			for i := range z {
				check("zone", &z[i], math.MaxFloat64)
			}
		}
		if d.Unavailable {
			t.Error("a graph that was read is marked unavailable")
		}
	})
}
