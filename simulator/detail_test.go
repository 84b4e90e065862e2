package simulator

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// newestOf returns the newest completed workout of each discipline.
func newestOf(sim *Simulator) map[string]Workout {
	sim.mu.Lock()
	defer sim.mu.Unlock()
	out := map[string]Workout{}
	for _, w := range sim.primary().history {
		if _, ok := out[w.FitnessDiscipline]; !ok && w.Status == "COMPLETE" && !w.Is3PFitFeedWorkout {
			out[w.FitnessDiscipline] = w
		}
	}
	return out
}

func getGraph(t *testing.T, sim *Simulator, token, id string, everyN int) performanceGraph {
	t.Helper()
	status, body := apiGet(t, sim, token, fmt.Sprintf("/api/workout/%s/performance_graph?every_n=%d", id, everyN), true)
	var g performanceGraph
	if err := json.Unmarshal(body, &g); status != 200 || err != nil {
		t.Fatalf("graph %s: %d %v %s", id, status, err, body)
	}
	return g
}

func summaryIn(list []graphSummary, slug string) (graphSummary, bool) {
	for _, s := range list {
		if s.Slug == slug {
			return s, true
		}
	}
	return graphSummary{}, false
}

func metricIn(list []graphMetric, slug string) (graphMetric, bool) {
	for _, m := range list {
		if m.Slug == slug {
			return m, true
		}
	}
	return graphMetric{}, false
}

func unit(s graphSummary) string {
	if s.DisplayUnit == nil {
		return ""
	}
	return *s.DisplayUnit
}

func TestPerformanceGraphShapes(t *testing.T) {
	sim, _ := startSim(t, Config{})
	access, _ := sim.IssueTokens()
	newest := newestOf(sim)
	for _, slug := range []string{"cycling", "caesar", "running", "strength", "meditation"} {
		w, ok := newest[slug]
		if !ok {
			t.Fatalf("the member has no %s workout", slug)
		}
		g := getGraph(t, sim, access, w.ID, 5)
		dur := int(*w.EndTime - w.StartTime)
		if g.Duration != dur {
			t.Errorf("%s: duration %d, want %d", slug, g.Duration, dur)
		}
		offsets := g.SecondsSincePedalingStart
		if len(offsets) == 0 || offsets[0] != 1 || offsets[len(offsets)-1] != dur {
			t.Errorf("%s: offsets %v… must run from 1 to the duration", slug, offsets[:min(3, len(offsets))])
		}
		for _, m := range g.Metrics {
			if len(m.Values) != len(offsets) {
				t.Errorf("%s: metric %s has %d values for %d offsets", slug, m.Slug, len(m.Values), len(offsets))
			}
		}
		if slug == "meditation" {
			if len(g.Summaries)+len(g.AverageSummaries)+len(g.Metrics) != 0 || g.EffortZones != nil {
				t.Errorf("meditation: want every list empty (meditation_workout.json), got %+v", g)
			}
			continue
		}
		if _, ok := summaryIn(g.Summaries, "calories"); !ok {
			t.Errorf("%s: no calories summary", slug)
		}
		hr, ok := metricIn(g.Metrics, "heart_rate")
		if !ok || g.EffortZones == nil || len(hr.Zones) != 5 {
			t.Fatalf("%s: a member with a strap must have heart rate, zones and effort zones: %+v", slug, g)
		}
		total := 0
		for i, z := range hr.Zones {
			total += z.Duration
			if z.Slug != fmt.Sprintf("zone%d", i+1) || g.EffortZones.HeartRateZoneDurations[fmt.Sprintf("heart_rate_z%d_duration", i+1)] != z.Duration {
				t.Errorf("%s: zone %d %+v disagrees with effort_zones %v", slug, i+1, z, g.EffortZones.HeartRateZoneDurations)
			}
		}
		if total != dur {
			t.Errorf("%s: zones add up to %ds of a %ds workout", slug, total, dur)
		}
		if *hr.AverageValue > *hr.MaxValue || *hr.MaxValue > maxHeartRate {
			t.Errorf("%s: heart rate avg %v max %v", slug, *hr.AverageValue, *hr.MaxValue)
		}
		switch slug {
		case "cycling":
			out, _ := summaryIn(g.Summaries, "total_output")
			if unit(out) != "kj" || out.Value != math.Round(w.TotalWork/1000) {
				t.Errorf("cycling: total_output %+v for total_work %v J", out, w.TotalWork)
			}
			for s, u := range map[string]string{"avg_output": "watts", "avg_cadence": "rpm", "avg_resistance": "%", "avg_speed": "mph"} {
				if got, ok := summaryIn(g.AverageSummaries, s); !ok || unit(got) != u {
					t.Errorf("cycling: %s = %+v, want unit %s", s, got, u)
				}
			}
			if d, _ := summaryIn(g.Summaries, "distance"); unit(d) != "mi" || d.Value <= 0 {
				t.Errorf("cycling: distance %+v", d)
			}
		case "caesar":
			if d, _ := summaryIn(g.Summaries, "distance"); unit(d) != "m" {
				t.Errorf("rowing distance must be in meters whatever the member's unit: %+v", d)
			}
		case "running":
			if _, ok := metricIn(g.Metrics, "speed"); ok {
				t.Error("running: the Tread's speed must be an alternative of pace, not a metric")
			}
			pace, _ := metricIn(g.Metrics, "pace")
			if _, ok := metricIn(pace.Alternatives, "speed"); !ok {
				t.Errorf("running: pace has no speed alternative: %+v", pace)
			}
		case "strength":
			if _, ok := summaryIn(g.Summaries, "total_output"); ok || len(g.AverageSummaries) != 0 {
				t.Errorf("strength: no output and no averages, got %+v", g)
			}
		}
	}
	// The same graph every time, whatever the sampling.
	w := newest["cycling"]
	a, b := getGraph(t, sim, access, w.ID, 5), getGraph(t, sim, access, w.ID, 50)
	if !slices.Equal(sumValues(a.Summaries), sumValues(b.Summaries)) || a.EffortZones.TotalEffortPoints != b.EffortZones.TotalEffortPoints {
		t.Errorf("the graph changes with every_n: %v vs %v", a.Summaries, b.Summaries)
	}
	if status, _ := apiGet(t, sim, access, "/api/workout/"+strings.Repeat("0", 32)+"/performance_graph", true); status != 404 {
		t.Errorf("unknown workout: %d, want 404", status)
	}
	if status, _ := apiGet(t, sim, access, "/api/workout/"+w.ID+"/performance_graph?every_n=0", true); status != 400 {
		t.Errorf("every_n=0: %d, want 400", status)
	}
}

func sumValues(list []graphSummary) []float64 {
	var out []float64
	for _, s := range list {
		out = append(out, s.Value)
	}
	return out
}

func TestMemberVariants(t *testing.T) {
	sim, _ := startSim(t, Config{DistanceUnit: "metric", NoHeartRate: true, ManualFTP: 231, Imports: 3, NoAnnualChallenge: true})
	access, _ := sim.IssueTokens()
	newest := newestOf(sim)
	g := getGraph(t, sim, access, newest["cycling"].ID, 5)
	if d, _ := summaryIn(g.Summaries, "distance"); unit(d) != "km" {
		t.Errorf("a metric member's distance: %+v", d)
	}
	if m, _ := metricIn(g.Metrics, "speed"); m.DisplayUnit != "kph" {
		t.Errorf("a metric member's speed metric: %+v", m)
	}
	if _, ok := metricIn(g.Metrics, "heart_rate"); ok || g.EffortZones != nil {
		t.Error("a member without a strap has no heart rate and null effort_zones")
	}
	_, body := apiGet(t, sim, access, "/api/user/"+sim.UserID()+"/settings", true)
	var st settings
	if json.Unmarshal(body, &st) != nil || st.DistanceUnit != "metric" {
		t.Errorf("settings: %s", body)
	}
	_, body = apiGet(t, sim, access, "/api/me", true)
	var me profile
	if json.Unmarshal(body, &me) != nil || me.CyclingFTP != 231 || me.CyclingFTPSource == nil || *me.CyclingFTPSource != "ftp_manual_source" {
		t.Errorf("manual FTP: %s", body)
	}
	_, body = apiGet(t, sim, access, "/api/user/"+sim.UserID()+"/challenges/current?has_joined=true", true)
	if strings.Contains(string(body), "Annual") {
		t.Errorf("a member who did not join sees no challenge: %s", body)
	}

	imports := 0
	for _, p := range allWorkoutsJoined(t, sim, access) {
		for _, w := range p.Data {
			if !w.Is3PFitFeedWorkout {
				continue
			}
			imports++
			if w.DeviceType != "apple_health" || w.CreatedAt <= *w.EndTime || w.TotalWork != 0 || w.Ride == nil || w.Ride.Instructor != nil {
				t.Errorf("an import: %+v", w)
			}
		}
	}
	if imports != 3 {
		t.Errorf("%d imports, want 3", imports)
	}
}

func allWorkoutsJoined(t *testing.T, sim *Simulator, token string) []struct{ Data []Workout } {
	t.Helper()
	var pages []struct{ Data []Workout }
	for n := 0; n < 100; n++ {
		status, body := apiGet(t, sim, token,
			fmt.Sprintf("/api/user/%s/workouts?sort_by=-created&joins=ride,ride.instructor&limit=100&page=%d", sim.UserID(), n), true)
		var p struct {
			Data     []Workout
			ShowNext bool `json:"show_next"`
		}
		if err := json.Unmarshal(body, &p); status != 200 || err != nil {
			t.Fatalf("page %d: %d %v", n, status, err)
		}
		pages = append(pages, struct{ Data []Workout }{p.Data})
		if !p.ShowNext {
			break
		}
	}
	return pages
}

func TestInstructorsJoin(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 300})
	access, _ := sim.IssueTokens()
	names := map[string]int{}
	for _, p := range allWorkoutsJoined(t, sim, access) {
		for _, w := range p.Data {
			r := w.Ride
			switch {
			case r == nil || r.Instructor == nil:
				t.Errorf("workout %s: no ride.instructor with joins=ride.instructor", w.ID)
			case r.InstructorID == nil:
				if r.Instructor.ID != nil || !strings.HasPrefix(r.Instructor.Name, "JUST ") {
					t.Errorf("a freestyle workout's pseudo-instructor: %+v", r.Instructor)
				}
			case r.Instructor.ID == nil || *r.Instructor.ID != *r.InstructorID || !slices.Contains(instructorNames, r.Instructor.Name):
				t.Errorf("instructor %+v for instructor_id %s", r.Instructor, *r.InstructorID)
			default:
				names[r.Instructor.Name]++
			}
		}
	}
	if len(names) < 10 {
		t.Errorf("only %d instructors over 300 workouts", len(names))
	}
	// joins=ride alone carries no instructor object.
	_, body := apiGet(t, sim, access, "/api/user/"+sim.UserID()+"/workouts?joins=ride&limit=5", true)
	if strings.Contains(string(body), `"instructor":`) {
		t.Error("joins=ride must not add the instructor")
	}
}

func TestAnnualChallenge(t *testing.T) {
	sim, clk := startSim(t, Config{})
	access, _ := sim.IssueTokens()
	_, body := apiGet(t, sim, access, "/api/user/"+sim.UserID()+"/challenges/current?has_joined=true", true)
	var list challengeList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	var annual *challengeEntry
	for i, c := range list.Challenges {
		if c.Summary.Title == "The Annual 2026" {
			annual = &list.Challenges[i]
		}
	}
	if annual == nil || len(list.Challenges) < 2 {
		t.Fatalf("want this year's Annual among several challenges: %s", body)
	}
	yearStart := time.Date(clk.Now().In(sim.primary().loc).Year(), 1, 1, 0, 0, 0, 0, sim.primary().loc)
	want := 0.0
	for _, w := range sim.primary().history {
		if w.Status == "COMPLETE" && w.StartTime >= yearStart.Unix() {
			want += float64(*w.EndTime - w.StartTime)
		}
	}
	if annual.Progress.MetricValue != math.Floor(want/60) || annual.Progress.MetricValue == 0 {
		t.Errorf("progress %v minutes, want %v", annual.Progress.MetricValue, math.Floor(want/60))
	}
	for _, path := range []string{"/challenge/", "/challenges/"} {
		status, body := apiGet(t, sim, access, "/api/user/"+sim.UserID()+path+annual.Summary.ID, true)
		var c challengeEntry
		if err := json.Unmarshal(body, &c); status != 200 || err != nil || c.Detail == nil || len(c.Detail.Tiers) != len(annualTierMinutes) {
			t.Errorf("%s: %d %v %s", path, status, err, body)
		}
	}
	if status, _ := apiGet(t, sim, access, "/api/user/"+sim.UserID()+"/challenge/"+strings.Repeat("a", 32), true); status != 404 {
		t.Errorf("unknown challenge: %d", status)
	}
}
