package history

import (
	"math"
	"strings"

	"github.com/peloton-exporter/peloton_exporter/client"
)

// Detail is what a workout's performance graph says, in base units. A nil field is a value
// Peloton did not send (a strength class has no output, a member without a heart-rate strap
// no heart rate), which the exporter never reports as 0.
type Detail struct {
	DistanceMeters     *float64    `json:"distance_m,omitempty"`
	EnergyJoules       *float64    `json:"energy_j,omitempty"`
	AvgOutputWatts     *float64    `json:"avg_output_w,omitempty"`
	AvgCadenceRPM      *float64    `json:"avg_cadence_rpm,omitempty"`
	AvgResistanceRatio *float64    `json:"avg_resistance,omitempty"` // 0..1
	AvgSpeedMetersPerS *float64    `json:"avg_speed_mps,omitempty"`
	AvgHeartRate       *float64    `json:"avg_hr_bpm,omitempty"`
	MaxHeartRate       *float64    `json:"max_hr_bpm,omitempty"`
	HeartRateZoneSecs  *[5]float64 `json:"hr_zones_s,omitempty"`
	EffortPoints       *float64    `json:"effort_points,omitempty"`
	Unavailable        bool        `json:"unavailable,omitempty"` // Peloton has no graph for it (it is not asked again)
}

const (
	joulesPerKcal  = 4184
	metersPerMile  = 1609.344
	metersPerKm    = 1000
	mpsPerMph      = 0.44704
	mpsPerKph      = 1 / 3.6
	maxPlausibleHR = 260
)

// DetailFromGraph reads a performance graph. distanceUnit returns the member's setting
// ("imperial" or "metric"); it is called only when a distance or speed comes without a unit.
func DetailFromGraph(g *client.PerformanceGraph, distanceUnit func() string) Detail {
	var d Detail
	summary := func(list []client.GraphSummary, slugs ...string) (client.GraphSummary, bool) {
		for _, slug := range slugs {
			for _, s := range list {
				if string(s.Slug) == slug && s.Value.Valid {
					return s, true
				}
			}
		}
		return client.GraphSummary{}, false
	}
	metric := findMetric(g.Metrics)

	if s, ok := summary(g.Summaries, "distance"); ok {
		if f, ok := lengthFactor(string(s.DisplayUnit), distanceUnit); ok {
			d.DistanceMeters = nonNegative(s.Value.Value * f)
		}
	}
	// Apple Watch imports have sent total_calories instead (peloton-to-garmin issue #414).
	if s, ok := summary(g.Summaries, "calories", "total_calories"); ok {
		d.EnergyJoules = nonNegative(s.Value.Value * joulesPerKcal)
	}
	if s, ok := summary(g.AverageSummaries, "avg_output"); ok {
		d.AvgOutputWatts = positive(s.Value.Value)
	} else if m, ok := metric("output"); ok {
		d.AvgOutputWatts = positive(m.AverageValue.Value)
	}
	if s, ok := summary(g.AverageSummaries, "avg_cadence"); ok {
		d.AvgCadenceRPM = positive(s.Value.Value)
	} else if m, ok := metric("cadence"); ok {
		d.AvgCadenceRPM = positive(m.AverageValue.Value)
	}
	if s, ok := summary(g.AverageSummaries, "avg_resistance"); ok && s.Value.Value <= 100 {
		d.AvgResistanceRatio = nonNegative(s.Value.Value / 100)
	}
	if s, ok := summary(g.AverageSummaries, "avg_speed"); ok {
		d.AvgSpeedMetersPerS = speed(s.Value.Value, string(s.DisplayUnit), distanceUnit)
	} else if m, ok := metric("speed"); ok {
		d.AvgSpeedMetersPerS = speed(m.AverageValue.Value, string(m.DisplayUnit), distanceUnit)
	}
	if m, ok := metric("heart_rate"); ok {
		if m.AverageValue.Value <= maxPlausibleHR {
			d.AvgHeartRate = positive(m.AverageValue.Value)
		}
		if m.MaxValue.Value <= maxPlausibleHR {
			d.MaxHeartRate = positive(m.MaxValue.Value)
		}
		d.HeartRateZoneSecs = metricZones(m.Zones)
	}
	if ez := g.EffortZones; ez != nil {
		if ez.TotalEffortPoints.Valid {
			d.EffortPoints = nonNegative(ez.TotalEffortPoints.Value)
		}
		if z, ok := ez.Zones(); ok {
			d.HeartRateZoneSecs = &z
		}
	}
	return d
}

// findMetric returns a lookup of the graph's metrics by slug that also searches their
// alternatives: the Tread's speed is an alternative of its pace (peloton-to-garmin fixture
// tread_run_workout.json). A metric counts only if it has an average.
func findMetric(metrics []client.GraphMetric) func(slug string) (client.GraphMetric, bool) {
	return func(slug string) (client.GraphMetric, bool) {
		for _, m := range metrics {
			if string(m.Slug) == slug && m.AverageValue.Valid {
				return m, true
			}
		}
		for _, m := range metrics {
			for _, a := range m.Alternatives {
				if string(a.Slug) == slug && a.AverageValue.Valid {
					return a, true
				}
			}
		}
		return client.GraphMetric{}, false
	}
}

// metricZones reads the heart_rate metric's zones ("zone1" … "zone5"), if all five are there.
func metricZones(zones []client.HeartRateZone) *[5]float64 {
	var out [5]float64
	seen := 0
	for _, z := range zones {
		slug := string(z.Slug)
		if len(slug) != 5 || !strings.HasPrefix(slug, "zone") || slug[4] < '1' || slug[4] > '5' ||
			!z.Duration.Valid || z.Duration.Value < 0 {
			continue
		}
		i := int(slug[4] - '1')
		if seen&(1<<i) == 0 {
			seen |= 1 << i
			out[i] = z.Duration.Value
		}
	}
	if seen != 0b11111 {
		return nil
	}
	return &out
}

// lengthFactor converts a distance in unit to meters. Without a unit the member's setting
// decides; an unknown unit is no distance at all rather than a wrong one.
func lengthFactor(unit string, distanceUnit func() string) (float64, bool) {
	switch strings.ToLower(strings.TrimSpace(unit)) {
	case "mi":
		return metersPerMile, true
	case "km":
		return metersPerKm, true
	case "m":
		return 1, true
	case "":
		switch distanceUnit() {
		case "imperial":
			return metersPerMile, true
		case "metric":
			return metersPerKm, true
		}
	}
	return 0, false
}

func speed(v float64, unit string, distanceUnit func() string) *float64 {
	switch strings.ToLower(strings.TrimSpace(unit)) {
	case "mph":
		return positive(v * mpsPerMph)
	case "kph", "km/h":
		return positive(v * mpsPerKph)
	case "":
		switch distanceUnit() {
		case "imperial":
			return positive(v * mpsPerMph)
		case "metric":
			return positive(v * mpsPerKph)
		}
	}
	return nil
}

// positive keeps a value that can only be above zero when it was measured (an average output
// of 0 means the class had none); nonNegative keeps a measured 0 (no calories burned).
func positive(v float64) *float64 {
	if v > 0 && !math.IsInf(v, 0) {
		return &v
	}
	return nil
}

func nonNegative(v float64) *float64 {
	if v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
		return &v
	}
	return nil
}
