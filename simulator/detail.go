package simulator

// Training detail: the performance graph of each workout, the member's settings and the
// Annual Challenge. The shapes follow the public captures (peloton-to-garmin's raw fixtures
// src/UnitTests/Data/p2g_workouts/cycling_workout.json, tread_run_workout.json,
// meditation_workout.json, running_workout_no_metrics.json and
// peloton_responses/rower_performance_graph.json, 2021-2022), summarised in peloton-api.md §3.
// Where no capture exists (the challenges, the settings, a third-party import's graph) the
// shape is that of the client code that reads it, and says so.

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Endpoint names of the training detail, identical to the exporter's `endpoint` label values.
const (
	EndpointPerformanceGraph = "performance_graph" // GET {api}/api/workout/{id}/performance_graph
	EndpointSettings         = "settings"          // GET {api}/api/user/{id}/settings
	EndpointChallenges       = "challenges"        // GET {api}/api/user/{id}/challenges/current
	EndpointChallenge        = "challenge"         // GET {api}/api/user/{id}/challenge{,s}/{challenge_id}
)

// instructorNames are the simulated instructors, fictional on purpose.
var instructorNames = []string{
	"Alex Moreno", "Bea Lindqvist", "Cal Okafor", "Dana Whitfield", "Eli Brandt", "Fay Nakamura",
	"Gus Ferreira", "Hana Kowalski", "Ivo Marchetti", "Jo Adeyemi", "Kit Halvorsen", "Lou Serrano",
	"Mia Castellano", "Nico Varga", "Ola Bergström", "Pip Donnelly",
}

// instructor is the ride.instructor object of joins=ride.instructor, reduced to a few of its
// ~40 keys (peloton-to-garmin cycling_workout.json).
type instructor struct {
	ID        *string `json:"id"`
	Name      string  `json:"name"`
	FirstName string  `json:"first_name,omitempty"`
	LastName  string  `json:"last_name,omitempty"`
	ImageURL  string  `json:"image_url,omitempty"`
}

// instructorFor is the ride's instructor, or the pseudo-instructor Peloton names for a
// freestyle workout ("JUST RIDE", "JUST WALK", "JUST RUN"), which has no id
// (peloton-to-garmin cycling_just_ride.json, just_walk_outdoor.json).
func (m *member) instructorFor(r *Ride) *instructor {
	if r.InstructorID == nil {
		words := strings.Fields(r.Title)
		if len(words) == 0 {
			return nil
		}
		return &instructor{Name: "JUST " + strings.ToUpper(words[len(words)-1])}
	}
	for i, id := range m.instructors {
		if id == *r.InstructorID {
			first, last, _ := strings.Cut(instructorNames[i%len(instructorNames)], " ")
			return &instructor{ID: &m.instructors[i], Name: first + " " + last, FirstName: first, LastName: last,
				ImageURL: "https://s3.amazonaws.com/peloton-ride-images/instructor-" + id[:8] + ".png"}
		}
	}
	return nil
}

// performanceGraph is /api/workout/{id}/performance_graph.
type performanceGraph struct {
	Duration                  int            `json:"duration"`
	IsClassPlanShown          bool           `json:"is_class_plan_shown"`
	SegmentList               []any          `json:"segment_list"`
	SecondsSincePedalingStart []int          `json:"seconds_since_pedaling_start"`
	AverageSummaries          []graphSummary `json:"average_summaries"`
	Summaries                 []graphSummary `json:"summaries"`
	Metrics                   []graphMetric  `json:"metrics"`
	HasAppleWatchMetrics      bool           `json:"has_apple_watch_metrics"`
	SplitsData                map[string]any `json:"splits_data"`
	MuscleGroupScore          []any          `json:"muscle_group_score"`
	EffortZones               *effortZones   `json:"effort_zones"`
}

type graphSummary struct {
	DisplayName string  `json:"display_name"`
	DisplayUnit *string `json:"display_unit"`
	Value       float64 `json:"value"`
	Slug        string  `json:"slug"`
}

type graphMetric struct {
	DisplayName         string        `json:"display_name"`
	DisplayUnit         string        `json:"display_unit"`
	MaxValue            *float64      `json:"max_value"`
	AverageValue        *float64      `json:"average_value"`
	Values              []*float64    `json:"values"`
	Slug                string        `json:"slug"`
	Zones               []hrZone      `json:"zones,omitempty"`
	MissingDataDuration *int          `json:"missing_data_duration,omitempty"`
	Alternatives        []graphMetric `json:"alternatives,omitempty"`
}

type hrZone struct {
	DisplayName string `json:"display_name"`
	Slug        string `json:"slug"`
	Range       string `json:"range"`
	Duration    int    `json:"duration"`
	MaxValue    int    `json:"max_value"`
	MinValue    int    `json:"min_value"`
}

type effortZones struct {
	TotalEffortPoints      float64        `json:"total_effort_points"`
	HeartRateZoneDurations map[string]int `json:"heart_rate_zone_durations"`
}

// striveScoreLaunch: workouts before it have null effort_zones even with a heart-rate strap
// (peloton-to-garmin's April 2021 cycling_workout.json has zones but no effort_zones; the
// May 2021 tread_run_workout.json has both).
var striveScoreLaunch = time.Date(2021, 5, 1, 0, 0, 0, 0, time.UTC).Unix()

// maxHeartRate is the simulated member's; zone bounds are Peloton's defaults from it: zone 1
// below 65%, then 75, 85, 95% (homebridge-peloton SPEC.md §8.3).
const maxHeartRate = 185

var zoneBounds = [4]float64{0.65, 0.75, 0.85, 0.95}

// profile of a discipline's detail: calories per hour (MET × 75 kg), average heart rate, and
// what the equipment measures.
type detailProfile struct {
	kcalPerHour float64
	heartRate   float64
	kind        string // bike, rower, tread, outdoor, none
	mph         float64
}

var detailProfiles = map[string]detailProfile{
	"cycling":         {kcalPerHour: 0, heartRate: 142, kind: "bike"},
	"bike_bootcamp":   {kcalPerHour: 520, heartRate: 145, kind: "none"},
	"caesar":          {kcalPerHour: 0, heartRate: 140, kind: "rower"},
	"caesar_bootcamp": {kcalPerHour: 540, heartRate: 146, kind: "rower"},
	"running":         {kcalPerHour: 730, heartRate: 152, kind: "tread", mph: 6.4},
	"walking":         {kcalPerHour: 300, heartRate: 112, kind: "tread", mph: 3.6},
	"circuit":         {kcalPerHour: 560, heartRate: 148, kind: "tread", mph: 5.5},
	"outdoor":         {kcalPerHour: 450, heartRate: 128, kind: "outdoor", mph: 4.8},
	"strength":        {kcalPerHour: 370, heartRate: 118, kind: "none"},
	"stretching":      {kcalPerHour: 190, heartRate: 92, kind: "none"},
	"yoga":            {kcalPerHour: 220, heartRate: 98, kind: "none"},
	"cardio":          {kcalPerHour: 520, heartRate: 146, kind: "none"},
	"meditation":      {kcalPerHour: 0, heartRate: 0, kind: "meditation"},
}

// graph builds the performance graph of w, sampled every everyN seconds. It is a pure function
// of the workout (its id seeds the noise), so the answer is the same on every request.
func (m *member) graph(w *Workout, everyN int) performanceGraph {
	dur := classSeconds(w)
	if w.EndTime != nil {
		dur = int(*w.EndTime - w.StartTime)
	}
	dur = max(dur, 1)
	p, ok := detailProfiles[w.FitnessDiscipline]
	if !ok {
		p = detailProfiles["strength"]
	}
	g := performanceGraph{
		Duration:         dur,
		IsClassPlanShown: w.WorkoutType == "class",
		SegmentList:      []any{},
		AverageSummaries: []graphSummary{},
		Summaries:        []graphSummary{},
		Metrics:          []graphMetric{},
		SplitsData:       map[string]any{},
		MuscleGroupScore: []any{},
	}
	for t := 1; ; t += everyN {
		if t >= dur {
			g.SecondsSincePedalingStart = append(g.SecondsSincePedalingStart, dur)
			break
		}
		g.SecondsSincePedalingStart = append(g.SecondsSincePedalingStart, t)
	}
	if p.kind == "meditation" {
		return g // every list empty (meditation_workout.json)
	}
	rng := seeded("graph/" + w.ID)
	n := len(g.SecondsSincePedalingStart)
	hours := float64(dur) / 3600
	metric := m.distanceUnit == "metric"
	distUnit, speedUnit, paceUnit := "mi", "mph", "min/mi"
	if metric {
		distUnit, speedUnit, paceUnit = "km", "kph", "min/km"
	}
	perUnit := func(mph float64) float64 { // mph in the member's unit
		if metric {
			return mph * 1.609344
		}
		return mph
	}
	watts := w.TotalWork / float64(dur)
	kcal := p.kcalPerHour * hours
	if watts > 0 {
		kcal = w.TotalWork / 1000 * 1.05 // Peloton's calories follow the output
	}

	if w.TotalWork > 0 {
		g.Summaries = append(g.Summaries, summaryOf("Total Output", "kj", math.Round(w.TotalWork/1000), "total_output"))
	}
	switch p.kind {
	case "bike":
		mph := 1.4 * math.Sqrt(max(watts, 1))
		g.Summaries = append(g.Summaries, summaryOf("Distance", distUnit, round2(perUnit(mph)*hours), "distance"))
		cadence := 78 + rng.Float64()*12
		resistance := 32 + watts/10 + rng.Float64()*6
		g.AverageSummaries = append(g.AverageSummaries,
			summaryOf("Avg Output", "watts", math.Round(watts), "avg_output"),
			summaryOf("Avg Cadence", "rpm", math.Round(cadence), "avg_cadence"),
			summaryOf("Avg Resistance", "%", math.Round(resistance), "avg_resistance"))
		if !metric {
			// A metric member's speed was seen only as a metric in kph (a 2026 capture), never
			// in average_summaries: it is left to the speed metric below.
			g.AverageSummaries = append(g.AverageSummaries, summaryOf("Avg Speed", speedUnit, round1(perUnit(mph)), "avg_speed"))
		}
		g.Metrics = append(g.Metrics,
			sampled(w, dur, n, "Output", "watts", "output", watts, 0.25),
			sampled(w, dur, n, "Cadence", "rpm", "cadence", cadence, 0.12),
			sampled(w, dur, n, "Resistance", "%", "resistance", resistance, 0.15),
			sampled(w, dur, n, "Speed", speedUnit, "speed", perUnit(mph), 0.1))
	case "rower":
		split := 2.6 - min(watts, 250)/250 // min/500m
		meters := float64(dur) / 60 / split * 500
		g.Summaries = append(g.Summaries, summaryOf("Distance", "m", round2(meters), "distance"))
		if watts > 0 {
			g.AverageSummaries = append(g.AverageSummaries, summaryOf("Avg Stroke Output", "watts", math.Round(watts), "avg_output"))
			g.Metrics = append(g.Metrics, sampled(w, dur, n, "Stroke Output", "watts", "output", watts, 0.2))
		}
		g.AverageSummaries = append(g.AverageSummaries,
			summaryOf("Avg Stroke Rate", "spm", 22, "avg_stroke_rate"),
			summaryOf("Avg Split Pace", "min/500m", round2(split), "avg_split_pace"))
		g.Metrics = append(g.Metrics, sampled(w, dur, n, "Stroke Rate", "spm", "stroke_rate", 22, 0.1))
	case "tread", "outdoor":
		mph := p.mph * (0.9 + 0.2*rng.Float64())
		g.Summaries = append(g.Summaries, summaryOf("Distance", distUnit, round2(perUnit(mph)*hours), "distance"))
		pace := 60 / perUnit(mph)
		g.AverageSummaries = append(g.AverageSummaries,
			summaryOf("Avg Pace", paceUnit, round2(pace), "avg_pace"),
			summaryOf("Avg Speed", speedUnit, round1(perUnit(mph)), "avg_speed"))
		// The Tread's speed is an alternative of its pace, not a metric of its own.
		pm := sampled(w, dur, n, "Pace", paceUnit, "pace", pace, 0.08)
		pm.Alternatives = []graphMetric{sampled(w, dur, n, "Speed", speedUnit, "speed", perUnit(mph), 0.08)}
		g.Metrics = append(g.Metrics, pm)
		if p.kind == "tread" {
			g.AverageSummaries = append(g.AverageSummaries, summaryOf("Avg Incline", "%", 2, "avg_incline"))
			g.Metrics = append(g.Metrics, sampled(w, dur, n, "Incline", "%", "incline", 2, 0.5))
			g.Summaries = append(g.Summaries, summaryOf("Elevation", "ft", math.Round(hours*mph*105), "elevation"))
		}
	}
	g.Summaries = append(g.Summaries, summaryOf("Calories", "kcal", math.Round(kcal), "calories"))

	if m.hasHeartRate(w) {
		hr := m.heartRate(seeded("heart_rate/"+w.ID), p.heartRate, dur)
		g.Metrics = append(g.Metrics, hr.metric(n))
		if w.StartTime >= striveScoreLaunch {
			g.EffortZones = hr.effort()
		}
	}
	return g
}

// hasHeartRate tells whether the member wore a heart-rate strap for w.
func (m *member) hasHeartRate(w *Workout) bool {
	return m.heartRateSince != 0 && w.StartTime >= m.heartRateSince && !w.Is3PFitFeedWorkout
}

// heartRateTrace is a workout's heart rate, one sample every five seconds.
type heartRateTrace struct {
	bpm   []float64
	zones [5]int // seconds
}

func (m *member) heartRate(rng *rand.Rand, avg float64, dur int) heartRateTrace {
	var tr heartRateTrace
	level := avg - 25
	for t := 0; t < dur; t += 5 {
		// Warm up for three minutes, then wander around the class's average.
		target := avg + 8*math.Sin(float64(t)/300)
		if t < 180 {
			target = avg - 25 + float64(t)/180*25
		}
		level += (target-level)*0.2 + rng.NormFloat64()*2
		bpm := math.Round(min(max(level, 55), maxHeartRate))
		tr.bpm = append(tr.bpm, bpm)
		zone := 0
		for zone < 4 && bpm >= zoneBounds[zone]*maxHeartRate {
			zone++
		}
		tr.zones[zone] += min(5, dur-t)
	}
	return tr
}

func (tr heartRateTrace) metric(n int) graphMetric {
	var sum, peak float64
	for _, v := range tr.bpm {
		sum += v
		peak = max(peak, v)
	}
	avg := math.Round(sum / float64(len(tr.bpm)))
	missing := 0
	hm := graphMetric{DisplayName: "Heart Rate", DisplayUnit: "bpm", Slug: "heart_rate",
		AverageValue: &avg, MaxValue: &peak, MissingDataDuration: &missing}
	for i := range n {
		v := tr.bpm[min(i*len(tr.bpm)/max(n, 1), len(tr.bpm)-1)]
		hm.Values = append(hm.Values, &v)
	}
	bounds := []int{0}
	for _, b := range zoneBounds {
		bounds = append(bounds, int(math.Round(b*maxHeartRate)))
	}
	bounds = append(bounds, maxHeartRate)
	for z := range 5 {
		rng := fmt.Sprintf("%d-%d bpm", bounds[z], bounds[z+1]-1)
		switch z {
		case 0:
			rng = fmt.Sprintf("<%d bpm", bounds[1])
		case 4:
			rng = fmt.Sprintf(">=%d bpm", bounds[4])
		}
		hm.Zones = append(hm.Zones, hrZone{DisplayName: fmt.Sprintf("Zone %d", z+1), Slug: fmt.Sprintf("zone%d", z+1),
			Range: rng, Duration: tr.zones[z], MinValue: bounds[z], MaxValue: max(bounds[z+1]-1, bounds[z])})
	}
	return hm
}

// effort is the Strive Score: points per minute grow with the zone.
func (tr heartRateTrace) effort() *effortZones {
	perMinute := [5]float64{0.1, 0.25, 0.5, 0.9, 1.4}
	e := &effortZones{HeartRateZoneDurations: map[string]int{}}
	for z, secs := range tr.zones {
		e.TotalEffortPoints += perMinute[z] * float64(secs) / 60
		e.HeartRateZoneDurations[fmt.Sprintf("heart_rate_z%d_duration", z+1)] = secs
	}
	e.TotalEffortPoints = round1(e.TotalEffortPoints)
	return e
}

func summaryOf(name, unit string, v float64, slug string) graphSummary {
	return graphSummary{DisplayName: name, DisplayUnit: &unit, Value: v, Slug: slug}
}

// sampled is a metric around avg: a trace of one value every five seconds, its own noise
// seeded by the workout and the metric, summarised over the whole trace and sampled n times.
// That the average and maximum do not depend on the sampling asked for is an assumption (no
// public capture shows one workout at two samplings); the client asks for every 5 seconds.
func sampled(w *Workout, dur, n int, name, unit, slug string, avg, spread float64) graphMetric {
	rng := seeded(w.ID + "/" + slug)
	trace := make([]float64, 0, dur/5+1)
	var sum, peak float64
	for t := 0; t < dur; t += 5 {
		v := round1(max(avg*(1+spread*rng.NormFloat64()), 0))
		trace = append(trace, v)
		sum += v
		peak = max(peak, v)
	}
	mean := round1(sum / float64(len(trace)))
	m := graphMetric{DisplayName: name, DisplayUnit: unit, Slug: slug, AverageValue: &mean, MaxValue: &peak}
	for i := range n {
		v := trace[min(i*len(trace)/n, len(trace)-1)]
		m.Values = append(m.Values, &v)
	}
	return m
}

// seeded is a generator that depends on key only.
func seeded(key string) *rand.Rand {
	seed := sha256.Sum256([]byte(key))
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:16])))
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round2(v float64) float64 { return math.Round(v*100) / 100 }

func (s *Simulator) handlePerformanceGraph(w http.ResponseWriter, r *http.Request, user string) {
	everyN, err := intParam(r.URL.Query().Get("every_n"), 1)
	if err != nil || everyN < 1 {
		writeAPIError(w, http.StatusBadRequest, "Request was invalid", "every_n must be a positive integer")
		return
	}
	s.mu.Lock()
	m := s.memberByID(user)
	wk := m.workout(r.PathValue("id")) // another member's workout is not found
	// An activity imported from another app gets no graph here: whether Peloton has one for
	// it is not publicly known, and the client must cope with a workout without one.
	ok := wk != nil && wk.UserID == user && !wk.Is3PFitFeedWorkout
	var g performanceGraph
	if ok {
		g = m.graph(wk, everyN)
	}
	s.mu.Unlock()
	if !ok {
		writeAPIError(w, http.StatusNotFound, "Workout not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// workout finds a workout by id.
func (m *member) workout(id string) *Workout {
	for i := range m.history {
		if m.history[i].ID == id {
			return &m.history[i]
		}
	}
	return nil
}

// settings is /api/user/{id}/settings, reduced to the unit fields of the OpenAPI description
// pelo-tech/peloton-api-spec (UserSettings); no capture of it is public.
type settings struct {
	DistanceUnit  string `json:"distance_unit"`
	WeightUnit    string `json:"weight_unit"`
	HeightUnit    string `json:"height_unit"`
	BlockExplicit bool   `json:"block_explicit"`
}

func (s *Simulator) handleSettings(w http.ResponseWriter, r *http.Request, user string) {
	if r.PathValue("id") != user {
		writeAPIError(w, http.StatusForbidden, "Forbidden", "not your user id")
		return
	}
	s.mu.Lock()
	u := s.memberByID(user).distanceUnit
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, settings{DistanceUnit: u, WeightUnit: u, HeightUnit: u})
}

// The challenges' shapes are those peloton-to-garmin reads (src/Peloton/AnnualChallenge/,
// PelotonChallenges.cs); no response has been published.
type challengeList struct {
	Challenges []challengeEntry `json:"challenges"`
}

type challengeEntry struct {
	Summary      challengeSummary  `json:"challenge_summary"`
	Participants map[string]int    `json:"participants"`
	Progress     challengeProgress `json:"progress"`
	Detail       *challengeDetail  `json:"challenge_detail,omitempty"`
}

type challengeSummary struct {
	ID             string `json:"id"`
	Title          string `json:"title"`
	SymbolImageURL string `json:"symbol_image_url"`
	StartTime      int64  `json:"start_time"`
	EndTime        int64  `json:"end_time"`
}

type challengeProgress struct {
	MetricValue       float64 `json:"metric_value"`
	MetricDisplayUnit string  `json:"metric_display_unit"`
}

type challengeDetail struct {
	DetailedDescription string          `json:"detailed_description"`
	Tiers               []challengeTier `json:"tiers"`
}

type challengeTier struct {
	ID                    string  `json:"id"`
	Title                 string  `json:"title"`
	DetailedBadgeImageURL string  `json:"detailed_badge_image_url"`
	MetricValue           float64 `json:"metric_value"`
	MetricDisplayUnit     string  `json:"metric_display_unit"`
}

// annualTierMinutes are the Annual Challenge's tiers as fan sites report them for 2022 (every
// 1,000 minutes to 10,000, then 15,000, 18,000, 20,000); the API's tier titles were never
// published, so these are made up. A first tier of 0 minutes is included because
// peloton-to-garmin drops tiers whose metric_value is not above 0.
var annualTierMinutes = []float64{0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 15000, 18000, 20000}

// challenges are the member's joined current challenges: this year's Annual Challenge (its
// progress the minutes of this year's completed workouts) and a monthly one.
func (m *member) challenges(now time.Time) []challengeEntry {
	now = now.In(m.loc)
	yearStart := time.Date(now.Year(), 1, 1, 0, 0, 0, 0, m.loc)
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, m.loc)
	minutes := func(from time.Time) float64 {
		secs := 0.0
		for i := range m.history {
			w := &m.history[i]
			if w.Status == "COMPLETE" && w.EndTime != nil && w.StartTime >= from.Unix() {
				secs += float64(*w.EndTime - w.StartTime)
			}
		}
		return math.Floor(secs / 60)
	}
	annual := challengeEntry{
		Summary: challengeSummary{ID: m.annualID(now.Year()), Title: fmt.Sprintf("The Annual %d", now.Year()),
			SymbolImageURL: "https://s3.amazonaws.com/challenges-and-tiers-image-prod/annual.png",
			StartTime:      yearStart.Unix(), EndTime: yearStart.AddDate(1, 0, 0).Unix() - 1},
		Participants: map[string]int{"total_count": 412345},
		Progress:     challengeProgress{MetricValue: minutes(yearStart), MetricDisplayUnit: "min"},
	}
	monthly := challengeEntry{
		Summary: challengeSummary{ID: m.annualID(now.Year()*100 + int(now.Month())),
			Title:     fmt.Sprintf("%s %d Cycling Challenge", now.Month(), now.Year()),
			StartTime: monthStart.Unix(), EndTime: monthStart.AddDate(0, 1, 0).Unix() - 1},
		Participants: map[string]int{"total_count": 80210},
		Progress:     challengeProgress{MetricValue: minutes(monthStart), MetricDisplayUnit: "min"},
	}
	return []challengeEntry{monthly, annual}
}

func (m *member) annualID(n int) string {
	sum := sha256.Sum256([]byte(m.userID + "/challenge/" + strconv.Itoa(n)))
	return fmt.Sprintf("%x", sum[:16])
}

func (s *Simulator) handleChallenges(w http.ResponseWriter, r *http.Request, user string) {
	if r.PathValue("id") != user {
		writeAPIError(w, http.StatusForbidden, "Forbidden", "not your user id")
		return
	}
	list := challengeList{Challenges: []challengeEntry{}}
	if r.URL.Query().Get("has_joined") == "true" {
		s.mu.Lock()
		if m := s.memberByID(user); m.annualJoined {
			list.Challenges = m.challenges(s.cfg.Now())
		}
		s.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, list)
}

// handleChallenge serves one challenge with its tiers, under the singular path that
// peloton-to-garmin uses and the plural one of pylotoncycle and the OpenAPI description.
func (s *Simulator) handleChallenge(w http.ResponseWriter, r *http.Request, user string) {
	if r.PathValue("id") != user {
		writeAPIError(w, http.StatusForbidden, "Forbidden", "not your user id")
		return
	}
	s.mu.Lock()
	var found *challengeEntry
	if m := s.memberByID(user); m.annualJoined {
		for _, c := range m.challenges(s.cfg.Now()) {
			if c.Summary.ID == r.PathValue("challenge") {
				found = &c
			}
		}
	}
	s.mu.Unlock()
	if found == nil {
		writeAPIError(w, http.StatusNotFound, "Challenge not found", nil)
		return
	}
	found.Detail = &challengeDetail{DetailedDescription: "Earn badges for the minutes you work out this year.", Tiers: []challengeTier{}}
	if strings.HasPrefix(found.Summary.Title, "The Annual") {
		for i, mins := range annualTierMinutes {
			title := "Joined"
			if mins > 0 {
				title = fmt.Sprintf("%gK", mins/1000)
			}
			found.Detail.Tiers = append(found.Detail.Tiers, challengeTier{ID: fmt.Sprintf("%s%02d", found.Summary.ID[:30], i),
				Title: title, MetricValue: mins, MetricDisplayUnit: "min"})
		}
	}
	writeJSON(w, http.StatusOK, found)
}
