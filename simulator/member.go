package simulator

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Workout is one entry of /api/user/{id}/workouts, in Peloton's shape.
type Workout struct {
	ID                        string          `json:"id"`
	CreatedAt                 int64           `json:"created_at"`
	StartTime                 int64           `json:"start_time"`
	EndTime                   *int64          `json:"end_time"` // null while IN_PROGRESS
	Status                    string          `json:"status"`   // COMPLETE or IN_PROGRESS
	FitnessDiscipline         string          `json:"fitness_discipline"`
	TotalWork                 float64         `json:"total_work"` // joules; 0 without output
	IsTotalWorkPersonalRecord bool            `json:"is_total_work_personal_record"`
	Timezone                  string          `json:"timezone"`
	DeviceType                string          `json:"device_type"`
	Platform                  string          `json:"platform"`
	WorkoutType               string          `json:"workout_type"` // class or freestyle
	Name                      string          `json:"name"`
	Title                     *string         `json:"title"`
	EffortZones               json.RawMessage `json:"effort_zones"` // nil marshals as null
	UserID                    string          `json:"user_id"`
	// Is3PFitFeedWorkout marks an activity imported from Apple Health and the like; its
	// created_at is the time of the import (homebridge-peloton SPEC.md §4.2).
	Is3PFitFeedWorkout         bool  `json:"is_3p_fit_feed_workout"`
	IsPelotonOriginatedWorkout bool  `json:"is_peloton_originated_workout"`
	Ride                       *Ride `json:"ride,omitempty"` // only with joins=ride
}

// Ride is the class a workout followed (the `ride` join).
type Ride struct {
	ID                string      `json:"id"`
	Title             string      `json:"title"`
	Duration          int         `json:"duration"` // seconds
	InstructorID      *string     `json:"instructor_id"`
	FitnessDiscipline string      `json:"fitness_discipline"`
	Instructor        *instructor `json:"instructor,omitempty"` // only with joins=ride.instructor
}

// discipline describes how the member does one fitness discipline.
type discipline struct {
	slug, name string
	weight     int   // relative frequency in the history; 0 = never done
	minutes    []int // class lengths, repeated to weight them
	watts      float64
	device     string
	platform   string
	freestyle  bool
	classes    []string
}

// disciplines is in the order Peloton lists workout counts. Only cycling and
// caesar (rowing) report output.
var disciplines = []discipline{
	{slug: "cycling", name: "Cycling", weight: 40, minutes: []int{5, 10, 15, 20, 20, 30, 30, 30, 45, 45, 60, 75, 90},
		watts: 205, device: "home_bike_v1", platform: "home_bike",
		classes: []string{"Pop Ride", "Climb Ride", "HIIT Ride", "Power Zone Ride", "Low Impact Ride", "Tabata Ride", "90s Ride", "Rock Ride"}},
	{slug: "bike_bootcamp", name: "Bike Bootcamp", weight: 3, minutes: []int{30, 45, 45, 60},
		device: "home_bike_v1", platform: "home_bike", classes: []string{"Bike Bootcamp", "Bike Bootcamp: Upper Body"}},
	{slug: "caesar", name: "Rowing", weight: 3, minutes: []int{10, 15, 20, 20, 30, 45},
		watts: 150, device: "home_rower", platform: "home_rower", classes: []string{"Endurance Row", "Sprint Row", "Pace Target Row"}},
	{slug: "caesar_bootcamp", name: "Row Bootcamp", minutes: []int{30}, device: "home_rower", platform: "home_rower",
		classes: []string{"Row Bootcamp"}},
	{slug: "running", name: "Running", weight: 5, minutes: []int{10, 20, 20, 30, 30, 45},
		device: "home_tread", platform: "home_tread", classes: []string{"Fun Run", "Intervals Run", "Endurance Run"}},
	{slug: "walking", name: "Walking", weight: 5, minutes: []int{20, 30, 30, 45, 60},
		device: "home_tread", platform: "home_tread", classes: []string{"Power Walk", "Hike", "Walk + Run"}},
	{slug: "circuit", name: "Tread Bootcamp", minutes: []int{30}, device: "home_tread", platform: "home_tread",
		classes: []string{"Tread Bootcamp"}},
	{slug: "strength", name: "Strength", weight: 15, minutes: []int{5, 10, 10, 15, 20, 20, 30},
		device: "iPhone", platform: "iOS_app", classes: []string{"Upper Body Strength", "Lower Body Strength", "Core Strength", "Full Body Strength"}},
	{slug: "stretching", name: "Stretching", weight: 10, minutes: []int{5, 5, 10, 10, 15},
		device: "iPhone", platform: "iOS_app", classes: []string{"Post-Ride Stretch", "Full Body Stretch", "Lower Body Stretch"}},
	{slug: "yoga", name: "Yoga", weight: 6, minutes: []int{10, 15, 20, 30, 45, 60},
		device: "web", platform: "web", classes: []string{"Yoga Flow", "Restorative Yoga", "Power Yoga"}},
	{slug: "meditation", name: "Meditation", weight: 5, minutes: []int{5, 5, 10, 15, 20},
		device: "iPhone", platform: "iOS_app", classes: []string{"Sleep Meditation", "Mindfulness Meditation", "Gratitude Meditation"}},
	{slug: "cardio", name: "Cardio", weight: 4, minutes: []int{10, 15, 20, 30},
		device: "iPhone", platform: "iOS_app", classes: []string{"HIIT Cardio", "Dance Cardio", "Low Impact Cardio"}},
	{slug: "outdoor", name: "Outdoor", weight: 4, minutes: []int{20, 30, 45, 60, 90},
		device: "iPhone", platform: "iOS_app", freestyle: true, classes: []string{"Outdoor Run", "Outdoor Walk"}},
}

func disciplineBySlug(slug string) (discipline, bool) {
	for _, d := range disciplines {
		if d.slug == slug {
			return d, true
		}
	}
	return discipline{}, false
}

// cyclingPRMinutes are the class lengths Peloton keeps cycling records for.
var cyclingPRMinutes = []int{5, 10, 15, 20, 30, 45, 60, 75, 90}

const (
	historyWeeks = 313 // about six years
	slotsPerDay  = 9   // classes start at 5:00, 7:00, ... 21:00 local
	slotsPerWeek = 7 * slotsPerDay
)

// member is the simulated account. Guarded by Simulator.mu.
type member struct {
	login                         string // what it signs in with, an e-mail address or a username
	password                      string
	userID, username, name, email string
	timezone                      string
	loc                           *time.Location
	createdAt                     int64
	rng                           *rand.Rand
	instructors                   []string
	history                       []Workout // newest first by created_at
	achievements                  []AchievementCount
	distanceUnit                  string // "imperial" or "metric"
	heartRateSince                int64  // Unix seconds; 0: never wore a heart-rate strap
	manualFTP                     int    // 0: the FTP comes from an FTP test
	annualJoined                  bool
}

func newMember(p Member, loc *time.Location, now time.Time) *member {
	// ChaCha8 over a hash of the seed: neighbouring seeds (0, 1, 2) still
	// give unrelated members.
	rng := rand.New(rand.NewChaCha8(sha256.Sum256([]byte(fmt.Sprint("peloton-simulator/", p.Seed)))))
	m := &member{
		login:    p.Username,
		password: p.Password,
		username: "DemoRider",
		name:     "Demo Rider",
		email:    DemoUsername,
		timezone: p.Timezone,
		loc:      loc,
		rng:      rng,
		userID:   hexID(rng),
	}
	if local, _, ok := strings.Cut(p.Username, "@"); ok {
		m.email = p.Username
		if p.Username != DemoUsername { // the household's other profiles go by their own names
			m.username = strings.ToUpper(local[:1]) + local[1:]
			m.name = m.username
		}
	}
	for range 16 {
		m.instructors = append(m.instructors, hexID(rng))
	}
	m.history = m.buildHistory(planWorkoutTimes(rng, now, loc, p.Workouts))
	m.distanceUnit, m.manualFTP, m.annualJoined = p.DistanceUnit, p.ManualFTP, !p.NoAnnualChallenge
	if !p.NoHeartRate {
		m.heartRateSince = now.AddDate(-3, 0, 0).Unix() // the strap came three years ago
	}
	// Imports draw from a generator of their own, so that asking for them leaves the rest of
	// the member as it was.
	m.addImports(rand.New(rand.NewChaCha8(sha256.Sum256([]byte(fmt.Sprint("peloton-simulator/imports/", p.Seed))))), p.Imports, now)
	if p.InProgress {
		m.history = slices.Insert(m.history, 0, m.inProgressWorkout(now))
	}
	m.createdAt = now.AddDate(-6, 0, -30).Unix()
	if n := len(m.history); n > 0 {
		m.createdAt = min(m.createdAt, m.history[n-1].CreatedAt-21*86400)
	}
	m.achievements = buildAchievements(rng, now)
	return m
}

// planWorkoutTimes picks n start times over about six years: one in each of
// the last 40-60 calendar weeks (the live weekly streak), then older runs of
// active weeks, each shorter than the live one and separated by empty weeks.
// The newest starts 2 to 16 hours before now, so a demo looks alive.
func planWorkoutTimes(rng *rand.Rand, now time.Time, loc *time.Location, n int) []time.Time {
	newest := now.Add(-2*time.Hour - time.Duration(rng.Int64N(int64(14*time.Hour)))).In(loc)
	week0 := mondayOf(newest, loc)
	streak := min(40+rng.IntN(21), n)
	var active []int // week offsets back from week0, newest first
	for w := range streak {
		active = append(active, w)
	}
	for w := streak; w < historyWeeks; {
		w += 1 + rng.IntN(3) // the gap that ended the previous run
		for run := 1 + rng.IntN(max(1, streak/2)); run > 0 && w < historyWeeks; run-- {
			active = append(active, w)
			w++
		}
	}
	if len(active) > n {
		active = active[:n]
	}

	// Each week has fixed two-hour slots so that workouts (90 min at most)
	// never overlap.
	used := map[int]*[slotsPerWeek]bool{}
	for _, w := range active {
		used[w] = new([slotsPerWeek]bool)
	}
	y, mo, d := week0.Date()
	slotStart := func(w, k int) time.Time {
		return time.Date(y, mo, d-7*w+k/slotsPerDay, 5+2*(k%slotsPerDay), 0, 0, 0, loc)
	}
	usable := func(w, k int) bool {
		// In the newest week, slots must be over before the newest workout.
		return !used[w][k] && (w > 0 || !slotStart(w, k).Add(150*time.Minute).After(newest))
	}
	times := []time.Time{newest}
	take := func(w int) bool {
		k := rng.IntN(slotsPerWeek)
		for tries := 0; !usable(w, k); tries++ {
			if tries == slotsPerWeek {
				return false
			}
			k = (k + 1) % slotsPerWeek
		}
		used[w][k] = true
		offset := time.Duration(rng.IntN(30))*time.Minute + time.Duration(rng.IntN(60))*time.Second
		times = append(times, slotStart(w, k).Add(offset))
		return true
	}
	for _, w := range active[1:] {
		take(w)
	}
	// The rest go to random active weeks; bounded in case the weeks are full.
	for tries := 0; len(times) < n && tries < 50*n; tries++ {
		take(active[rng.IntN(len(active))])
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	return times
}

// buildHistory makes a workout at each time (oldest first) and returns the
// history newest first. A few positions are forced so that even a small
// history has every cycling record length and a rowing record.
func (m *member) buildHistory(times []time.Time) []Workout {
	type pick struct {
		slug    string
		minutes int
	}
	forced := map[int]pick{}
	if n := len(times); n >= 10 {
		for j, mins := range cyclingPRMinutes {
			forced[j*n/10] = pick{"cycling", mins}
		}
		forced[9*n/10] = pick{"caesar", 20}
	}
	totalWeight := 0
	for _, d := range disciplines {
		totalWeight += d.weight
	}
	best := map[string]float64{}
	history := make([]Workout, 0, len(times))
	for i, start := range times {
		var d discipline
		var mins int
		if p, ok := forced[i]; ok {
			d, _ = disciplineBySlug(p.slug)
			mins = p.minutes
		} else {
			d = pickDiscipline(m.rng, totalWeight)
			mins = d.minutes[m.rng.IntN(len(d.minutes))]
		}
		progress := float64(i) / float64(max(1, len(times)-1))
		w := m.newWorkout(d, mins, start, progress)
		// Old workouts were sometimes recorded with a fixed-offset zone.
		if progress < 0.25 && m.rng.IntN(10) == 0 {
			w.Timezone = "Etc/GMT+6"
		}
		if key := fmt.Sprint(d.slug, mins); w.TotalWork > best[key] {
			best[key] = w.TotalWork
			w.IsTotalWorkPersonalRecord = true
		}
		history = append(history, w)
	}
	slices.Reverse(history)
	return history
}

func pickDiscipline(rng *rand.Rand, totalWeight int) discipline {
	r := rng.IntN(totalWeight)
	for _, d := range disciplines {
		if r < d.weight {
			return d
		}
		r -= d.weight
	}
	return disciplines[0]
}

// intensity is how much harder than a 30-minute class a class of this length
// is ridden (short classes are ridden harder).
func intensity(minutes int) float64 {
	switch {
	case minutes <= 5:
		return 1.35
	case minutes <= 10:
		return 1.25
	case minutes <= 15:
		return 1.15
	case minutes <= 20:
		return 1.1
	case minutes <= 30:
		return 1.0
	case minutes <= 45:
		return 0.95
	case minutes <= 60:
		return 0.9
	default:
		return 0.86
	}
}

// newWorkout makes a completed workout; progress (0 oldest .. 1 newest)
// makes the member slowly fitter.
func (m *member) newWorkout(d discipline, mins int, start time.Time, progress float64) Workout {
	secs := int64(mins * 60)
	end := start.Unix() + secs
	ride := m.newRide(d, mins)
	w := Workout{
		ID:                hexID(m.rng),
		CreatedAt:         start.Unix() - 30 - m.rng.Int64N(90),
		StartTime:         start.Unix(),
		EndTime:           &end,
		Status:            "COMPLETE",
		FitnessDiscipline: d.slug,
		Timezone:          m.timezone,
		DeviceType:        d.device,
		Platform:          d.platform,
		WorkoutType:       "class",
		Name:              d.name + " Workout",
		UserID:            m.userID,
		Ride:              &ride,

		IsPelotonOriginatedWorkout: true,
	}
	if d.freestyle {
		w.WorkoutType = "freestyle"
	}
	if d.watts > 0 {
		watts := d.watts * (0.75 + 0.25*progress) * intensity(mins) * (0.9 + 0.2*m.rng.Float64())
		w.TotalWork = math.Round(watts*float64(secs)*100) / 100
	}
	return w
}

func (m *member) newRide(d discipline, mins int) Ride {
	r := Ride{
		ID:                hexID(m.rng),
		Title:             fmt.Sprintf("%d min %s", mins, d.classes[m.rng.IntN(len(d.classes))]),
		Duration:          mins * 60,
		FitnessDiscipline: d.slug,
	}
	if d.freestyle {
		r.ID = strings.Repeat("0", 32) // Peloton's id for "no class"
	} else {
		r.InstructorID = &m.instructors[m.rng.IntN(len(m.instructors))]
	}
	return r
}

// addImports adds n outdoor runs imported from Apple Health over the last year: no class, no
// output, created_at the time of the import, some hours after the run (homebridge-peloton
// SPEC.md §4.2 and fixtures/api/workout-3p-fit-feed-running.json; device codes from its live
// Pi probe).
func (m *member) addImports(rng *rand.Rand, n int, now time.Time) {
	for i := range n {
		start := now.AddDate(0, 0, -(i+1)*365/(n+1)).Add(-time.Duration(rng.IntN(12*3600)) * time.Second).Truncate(time.Minute)
		secs := int64(20+rng.IntN(40)) * 60
		end := start.Unix() + secs
		title := "Outdoor Run"
		w := Workout{
			ID: hexID(rng), CreatedAt: end + 600 + rng.Int64N(6*3600), StartTime: start.Unix(), EndTime: &end,
			Status: "COMPLETE", FitnessDiscipline: "running", Timezone: m.timezone,
			DeviceType: "apple_health", Platform: "iOS_app", WorkoutType: "freestyle", Name: "Running Workout",
			Title: &title, UserID: m.userID, Is3PFitFeedWorkout: true,
			Ride: &Ride{ID: hexID(rng), Title: title, Duration: int(secs), FitnessDiscipline: "running"},
		}
		i := 0
		for i < len(m.history) && m.history[i].CreatedAt > w.CreatedAt {
			i++
		}
		m.history = slices.Insert(m.history, i, w)
	}
}

// inProgressWorkout is a ride started a few minutes ago: no end, no output yet.
func (m *member) inProgressWorkout(now time.Time) Workout {
	d, _ := disciplineBySlug("cycling")
	w := m.newWorkout(d, 30, now.Add(-9*time.Minute), 1)
	w.CreatedAt = now.Add(-10 * time.Minute).Unix()
	w.EndTime = nil
	w.Status = "IN_PROGRESS"
	w.TotalWork = 0
	return w
}

// add inserts w in created_at order (normally at the top), filling in what
// the caller left empty. The caller's pointers are copied so that later
// changes on their side cannot race with the handlers.
func (m *member) add(w Workout, now time.Time) {
	d, ok := disciplineBySlug(w.FitnessDiscipline)
	if !ok {
		d = disciplines[0]
		if w.FitnessDiscipline == "" {
			w.FitnessDiscipline = d.slug
		}
	}
	if w.ID == "" {
		w.ID = hexID(m.rng)
	}
	if w.Status == "" {
		w.Status = "COMPLETE"
	}
	complete := w.Status == "COMPLETE"
	dur := 30 * 60
	if w.Ride != nil {
		r := *w.Ride
		if r.InstructorID != nil {
			id := *r.InstructorID
			r.InstructorID = &id
		}
		w.Ride = &r
		if r.Duration > 0 {
			dur = r.Duration
		}
	} else {
		r := m.newRide(d, dur/60)
		w.Ride = &r
	}
	if w.StartTime == 0 {
		w.StartTime = now.Unix() - 60
		if complete {
			w.StartTime = now.Unix() - int64(dur)
		}
	}
	if w.CreatedAt == 0 {
		w.CreatedAt = w.StartTime - 60
	}
	if w.EndTime != nil {
		e := *w.EndTime
		w.EndTime = &e
	} else if complete {
		e := w.StartTime + int64(dur)
		w.EndTime = &e
	}
	if w.Title != nil {
		t := *w.Title
		w.Title = &t
	}
	w.EffortZones = slices.Clone(w.EffortZones)
	w.UserID = m.userID
	if w.Timezone == "" {
		w.Timezone = m.timezone
	}
	if w.DeviceType == "" {
		w.DeviceType = d.device
	}
	if w.Platform == "" {
		w.Platform = d.platform
	}
	if w.WorkoutType == "" {
		w.WorkoutType = "class"
	}
	if w.Name == "" {
		w.Name = d.name + " Workout"
	}
	if complete && w.TotalWork > 0 && w.TotalWork > m.bestWork(w.FitnessDiscipline, dur) {
		w.IsTotalWorkPersonalRecord = true
	}
	i := 0
	for i < len(m.history) && m.history[i].CreatedAt > w.CreatedAt {
		i++
	}
	m.history = slices.Insert(m.history, i, w)
}

// bestWork is the highest output of completed workouts of that discipline
// and class length.
func (m *member) bestWork(slug string, seconds int) float64 {
	best := 0.0
	for i := range m.history {
		w := &m.history[i]
		if w.Status == "COMPLETE" && w.FitnessDiscipline == slug && classSeconds(w) == seconds {
			best = max(best, w.TotalWork)
		}
	}
	return best
}

// classSeconds is the class length of a workout: the ride's duration, or the
// time it took if it has no ride.
func classSeconds(w *Workout) int {
	if w.Ride != nil && w.Ride.Duration > 0 {
		return w.Ride.Duration
	}
	if w.EndTime != nil {
		return int(*w.EndTime - w.StartTime)
	}
	return 0
}

// hexID is a Peloton-style id: 32 lowercase hex characters.
func hexID(rng *rand.Rand) string {
	return fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
}

// mondayOf is local midnight of the Monday starting t's week in loc.
func mondayOf(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	y, m, d := t.Date()
	back := (int(t.Weekday()) + 6) % 7 // days since Monday
	return time.Date(y, m, d-back, 0, 0, 0, 0, loc)
}
