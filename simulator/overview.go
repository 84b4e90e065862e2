package simulator

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Overview is /api/user/{id}/overview in Peloton's 2024 shape.
type Overview struct {
	ID                string            `json:"id"`
	WorkoutCounts     WorkoutCounts     `json:"workout_counts"`
	PersonalRecords   []RecordGroup     `json:"personal_records"`
	Streaks           Streaks           `json:"streaks"`
	AchievementCounts AchievementCounts `json:"achievement_counts"`
}

// WorkoutCounts counts completed workouts; the list includes disciplines
// never done (count 0).
type WorkoutCounts struct {
	TotalWorkouts int            `json:"total_workouts"`
	Workouts      []WorkoutCount `json:"workouts"`
}

// WorkoutCount is one discipline's count (also the element of /api/me's
// workout_counts list, which has no workout_name).
type WorkoutCount struct {
	Name        string `json:"name"`
	Slug        string `json:"slug"`
	Count       int    `json:"count"`
	IconURL     string `json:"icon_url"`
	WorkoutName string `json:"workout_name,omitempty"`
}

// RecordGroup holds one discipline's personal records.
type RecordGroup struct {
	Name             string   `json:"name"`
	Slug             string   `json:"slug"`
	FirstWorkoutDate *string  `json:"first_workout_date"`
	ResetDate        *string  `json:"reset_date"`
	Records          []Record `json:"records"`
}

// Record is a personal record. Slug is the class length in seconds as a
// string, Value is rounded kJ and RawValue joules for cycling; WorkoutDate
// is a zone-less UTC ISO time, with or without microseconds.
type Record struct {
	Name        string  `json:"name"`
	Slug        string  `json:"slug"`
	Value       float64 `json:"value"`
	RawValue    float64 `json:"raw_value"`
	Unit        string  `json:"unit"`
	UnitSlug    string  `json:"unit_slug"`
	WorkoutID   string  `json:"workout_id"`
	WorkoutDate string  `json:"workout_date"`
}

// Streaks: start dates are Unix seconds, null when the streak is 0.
type Streaks struct {
	CurrentWeekly            int    `json:"current_weekly"`
	BestWeekly               int    `json:"best_weekly"`
	StartDateOfCurrentWeekly *int64 `json:"start_date_of_current_weekly"`
	CurrentDaily             int    `json:"current_daily"`
	StartDateOfCurrentDaily  *int64 `json:"start_date_of_current_daily"`
}

// AchievementCounts lists the member's achievement templates and how often
// each was earned.
type AchievementCounts struct {
	TotalCount   int                `json:"total_count"`
	Achievements []AchievementCount `json:"achievements"`
}

// AchievementCount is one achievement template with its count.
type AchievementCount struct {
	Count    int                 `json:"count"`
	Template AchievementTemplate `json:"template"`
}

// AchievementTemplate describes an achievement.
type AchievementTemplate struct {
	ID                     string  `json:"id"`
	Name                   string  `json:"name"`
	Slug                   string  `json:"slug"`
	ImageURL               string  `json:"image_url"`
	Description            string  `json:"description"`
	AnimatedImageURL       *string `json:"animated_image_url"`
	KineticTokenBackground *string `json:"kinetic_token_background"`
}

const imageBase = "https://images.peloton.example" // reserved TLD: never fetched

// overview derives the overview from the history as of now, so the two
// always agree. Only COMPLETE workouts count.
func (m *member) overview(now time.Time) Overview {
	var done []*Workout // newest first
	for i := range m.history {
		if m.history[i].Status == "COMPLETE" {
			done = append(done, &m.history[i])
		}
	}
	o := Overview{
		ID:              m.userID,
		WorkoutCounts:   m.workoutCounts(done, true),
		PersonalRecords: personalRecords(done),
		Streaks:         streaks(done, now, m.loc),
	}
	o.AchievementCounts.Achievements = slices.Clone(m.achievements)
	for _, a := range m.achievements {
		o.AchievementCounts.TotalCount += a.Count
	}
	return o
}

// workoutCounts counts per discipline in Peloton's order, then any slug
// added through AddWorkout that the table does not know.
func (m *member) workoutCounts(done []*Workout, withWorkoutName bool) WorkoutCounts {
	counts := map[string]int{}
	for _, w := range done {
		counts[w.FitnessDiscipline]++
	}
	wc := WorkoutCounts{TotalWorkouts: len(done), Workouts: []WorkoutCount{}}
	add := func(slug, name string) {
		c := WorkoutCount{Name: name, Slug: slug, Count: counts[slug],
			IconURL: imageBase + "/workout-count-icons/" + slug + ".png"}
		if withWorkoutName {
			c.WorkoutName = name
		}
		wc.Workouts = append(wc.Workouts, c)
		delete(counts, slug)
	}
	for _, d := range disciplines {
		add(d.slug, d.name)
	}
	for _, slug := range slices.Sorted(maps.Keys(counts)) {
		add(slug, slug)
	}
	return wc
}

// personalRecords is the best cycling output per record class length, plus
// a rowing distance record in a unit ("m") the exporter does not know, as
// Peloton may add such groups at any time.
func personalRecords(done []*Workout) []RecordGroup {
	groups := []RecordGroup{}
	var cycling []Record
	var firstCycling *Workout
	for _, mins := range cyclingPRMinutes {
		var best *Workout
		for _, w := range done {
			if w.FitnessDiscipline != "cycling" {
				continue
			}
			firstCycling = w // done is newest first: ends at the oldest
			if classSeconds(w) == mins*60 && w.TotalWork > 0 && (best == nil || w.TotalWork > best.TotalWork) {
				best = w
			}
		}
		if best == nil {
			continue
		}
		cycling = append(cycling, Record{
			Name:      fmt.Sprintf("%d min", mins),
			Slug:      fmt.Sprint(mins * 60),
			Value:     math.Round(best.TotalWork / 1000),
			RawValue:  best.TotalWork,
			Unit:      "kj",
			UnitSlug:  "kj",
			WorkoutID: best.ID,
			// Alternate the two date forms Peloton is known to send.
			WorkoutDate: isoDate(best, len(cycling)%2 == 0),
		})
	}
	if len(cycling) > 0 {
		first := isoDate(firstCycling, false)
		groups = append(groups, RecordGroup{Name: "Cycling", Slug: "cycling", FirstWorkoutDate: &first, Records: cycling})
	}

	var longest, firstRow *Workout
	for _, w := range done {
		if w.FitnessDiscipline == "caesar" {
			firstRow = w
			if longest == nil || classSeconds(w) > classSeconds(longest) {
				longest = w
			}
		}
	}
	if longest != nil {
		meters := math.Round(float64(classSeconds(longest))*3.9*100) / 100
		first := isoDate(firstRow, true)
		groups = append(groups, RecordGroup{Name: "Rowing", Slug: "caesar", FirstWorkoutDate: &first, Records: []Record{{
			Name: "Longest Distance", Slug: "distance", Value: math.Round(meters), RawValue: meters,
			Unit: "m", UnitSlug: "m", WorkoutID: longest.ID, WorkoutDate: isoDate(longest, false),
		}}})
	}
	return groups
}

// isoDate is the zone-less UTC form of the overview's record dates. The
// microseconds are derived from the id so they are stable.
func isoDate(w *Workout, micro bool) string {
	s := time.Unix(w.StartTime, 0).UTC().Format("2006-01-02T15:04:05")
	if micro {
		v, _ := strconv.ParseInt(w.ID[:5], 16, 64) // ids are hex; 0 would do as well
		s += fmt.Sprintf(".%06d", v%999999+1)
	}
	return s
}

// streaks counts consecutive Monday-start weeks (and days) with a workout in
// the member's zone. A streak is alive while the current or the previous
// period has a workout. best_weekly is the longest streak that has ended:
// Peloton's real data shows a live streak above "best" too.
func streaks(done []*Workout, now time.Time, loc *time.Location) Streaks {
	weeks := map[int]int64{} // week -> earliest start in it
	days := map[int]int64{}
	for _, w := range done {
		d := localDay(time.Unix(w.StartTime, 0), loc)
		wk := floorDiv(d+3, 7) // 1970-01-01 was a Thursday
		weeks[wk] = earliest(weeks, wk, w.StartTime)
		days[d] = earliest(days, d, w.StartTime)
	}
	today := localDay(now, loc)
	var st Streaks
	st.CurrentWeekly, st.StartDateOfCurrentWeekly, st.BestWeekly = run(weeks, floorDiv(today+3, 7))
	st.CurrentDaily, st.StartDateOfCurrentDaily, _ = run(days, today)
	return st
}

func earliest(m map[int]int64, k int, t int64) int64 {
	if v, ok := m[k]; ok && v < t {
		return v
	}
	return t
}

// run finds the live run of consecutive periods ending at now or now-1, and
// the longest run that ended before it.
func run(first map[int]int64, now int) (current int, start *int64, best int) {
	end := now
	if _, ok := first[end]; !ok {
		end--
	}
	for k := end; ; k-- {
		if _, ok := first[k]; !ok {
			break
		}
		current++
	}
	if current > 0 {
		s := first[end-current+1]
		start = &s
	}
	length, prev := 0, 0
	for _, k := range slices.Sorted(maps.Keys(first)) {
		if length > 0 && k == prev+1 {
			length++
		} else {
			length = 1
		}
		prev = k
		if k < end-current+1 || current == 0 {
			best = max(best, length)
		}
	}
	return current, start, best
}

// localDay numbers t's calendar day in loc (days since 1970-01-01).
func localDay(t time.Time, loc *time.Location) int {
	y, m, d := t.In(loc).Date()
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// classicAchievements are recurring awards; their counts are large.
var classicAchievements = []struct{ name, slug, description string }{
	{"Dynamic Duo", "two_to_tango", "Awarded for working out with a friend."},
	{"Best Buddies", "best_buddies", "Awarded for working out with friends 25 times."},
	{"Early Bird", "early_bird", "Awarded for finishing a workout before 6 AM."},
	{"Night Owl", "night_owl", "Awarded for finishing a workout after 10 PM."},
	{"Hot Streak", "hot_streak", "Awarded for working out three days in a row."},
	{"Explorer", "explorer", "Awarded for trying a new class type."},
	{"Summit Seeker", "summit_seeker", "Awarded for finishing a climb class."},
	{"Power Zone Pusher", "power_zone_pusher", "Awarded for finishing a Power Zone class."},
	{"Leaderboard Climber", "leaderboard_climber", "Awarded for passing 100 riders in a class."},
	{"Top 10%", "top_ten_percent", "Awarded for finishing in the top 10% of a leaderboard."},
	{"Top 25%", "top_twenty_five_percent", "Awarded for finishing in the top 25% of a leaderboard."},
	{"Live!", "live_class", "Awarded for taking a live class."},
	{"Encore", "encore", "Awarded for taking an encore class."},
	{"Weekend Warrior", "weekend_warrior", "Awarded for working out on both weekend days."},
	{"Double Up", "double_up", "Awarded for finishing two classes in a day."},
	{"Triple Threat", "triple_threat", "Awarded for finishing three classes in a day."},
	{"Stack Attack", "stack_attack", "Awarded for finishing a class stack."},
	{"Personal Best", "personal_best", "Awarded for beating your best output."},
	{"Cooldown Champ", "cooldown_champ", "Awarded for finishing a cool down after a ride."},
	{"Stretch It Out", "stretch_it_out", "Awarded for stretching after a workout."},
	{"Zen Master", "zen_master", "Awarded for finishing a meditation."},
	{"Core Crusher", "core_crusher", "Awarded for finishing a core class."},
	{"Arm Day", "arm_day", "Awarded for finishing an arms class."},
	{"Leg Day", "leg_day", "Awarded for finishing a lower body class."},
	{"Rower's High", "rowers_high", "Awarded for finishing a row."},
	{"Road Runner", "road_runner", "Awarded for finishing a run."},
	{"Step It Up", "step_it_up", "Awarded for finishing a walk."},
	{"Outdoor Explorer", "outdoor_explorer", "Awarded for finishing an outdoor workout."},
	{"Program Graduate", "program_graduate", "Awarded for finishing a program."},
	{"Challenge Accepted", "challenge_accepted", "Awarded for joining a challenge."},
	{"Milestone Maker", "milestone_maker", "Awarded for reaching a workout milestone."},
	{"High Five", "high_five", "Awarded for giving a high five."},
	{"Team Player", "team_player", "Awarded for working out with a tag."},
	{"Century Club", "century_club", "Awarded for finishing 100 workouts."},
	{"Marathoner", "marathoner", "Awarded for running 26.2 miles in a month."},
	{"Holiday Spirit", "holiday_spirit", "Awarded for working out on a holiday."},
}

// buildAchievements makes 200+ templates: the classics, a monthly challenge
// for each of the last six years' months, annual challenges, discipline
// milestones and weekly-streak badges.
func buildAchievements(rng *rand.Rand, now time.Time) []AchievementCount {
	var out []AchievementCount
	add := func(name, slug, description string, count int) {
		out = append(out, AchievementCount{Count: count, Template: AchievementTemplate{
			ID:          hexID(rng),
			Name:        name,
			Slug:        slug,
			ImageURL:    imageBase + "/achievements/" + slug + ".png",
			Description: description,
		}})
	}
	for i, a := range classicAchievements {
		count := 1 + rng.IntN(120)
		if i == 0 {
			count = 250 + rng.IntN(100) // the member rides with friends a lot
		}
		add(a.name, a.slug, a.description, count)
	}
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for i := 72; i >= 1; i-- {
		month := first.AddDate(0, -i, 0)
		add(month.Format("January 2006")+" Challenge",
			strings.ToLower(month.Format("January_2006"))+"_challenge",
			"Awarded for finishing the "+month.Format("January 2006")+" challenge.", 1)
	}
	for y := now.Year() - 6; y < now.Year(); y++ {
		add(fmt.Sprintf("%d Annual Challenge", y), fmt.Sprintf("annual_challenge_%d", y),
			fmt.Sprintf("Awarded for reaching your goal in the %d annual challenge.", y), 1)
	}
	for _, d := range disciplines {
		if d.weight == 0 {
			continue
		}
		for _, n := range []int{10, 25, 50, 100, 250, 500, 750, 1000} {
			add(fmt.Sprintf("%d %s Workouts", n, d.name), fmt.Sprintf("%s_%d_workouts", d.slug, n),
				fmt.Sprintf("Awarded for finishing %d %s workouts.", n, strings.ToLower(d.name)), 1)
		}
	}
	for _, n := range []int{5, 10, 15, 20, 25, 30, 40, 50, 75, 100} {
		add(fmt.Sprintf("Weekly Streak: %d Weeks", n), fmt.Sprintf("weekly_streak_%d", n),
			fmt.Sprintf("Awarded for working out %d weeks in a row.", n), 1+rng.IntN(4))
	}
	return out
}
