package client

import (
	"bytes"
	"context"
	"net/url"
	"strconv"
)

// The training detail endpoints. Their shapes are those of the public captures collected in
// peloton-api.md §3 (peloton-to-garmin's raw fixtures under src/UnitTests/Data/p2g_workouts/
// and peloton_responses/, 2021-2022, and later client code); every part may be missing.

// Bool is a JSON boolean that tolerates null (false) and the strings "true"/"false" and
// numbers 0/1 that loosely typed APIs send; anything else is an error.
type Bool bool

func (v *Bool) UnmarshalJSON(b []byte) error {
	switch string(bytes.TrimSpace(b)) {
	case "true", `"true"`, "1":
		*v = true
	case "false", `"false"`, "0", "null":
		*v = false
	default:
		return typeError(b, false)
	}
	return nil
}

// Ride is the class a workout followed, from the workout list with joins=ride,ride.instructor.
// A freestyle workout has the all-zero id and a pseudo-instructor ("JUST RIDE") without an id.
type Ride struct {
	ID           Text        `json:"id"`
	Title        Text        `json:"title"`
	Duration     Number      `json:"duration"` // class length in seconds; null for a distance class
	InstructorID Text        `json:"instructor_id"`
	Instructor   *Instructor `json:"instructor"`
}

type Instructor struct {
	ID   Text `json:"id"`
	Name Text `json:"name"`
}

// PerformanceGraph is GET /api/workout/{id}/performance_graph, reduced to the workout's
// totals and averages: the sampled values[] arrays are not read.
type PerformanceGraph struct {
	Duration         Number         `json:"duration"`
	Summaries        []GraphSummary `json:"summaries"`         // total_output (kJ), distance, calories (kcal), …
	AverageSummaries []GraphSummary `json:"average_summaries"` // avg_output (watts), avg_cadence, avg_resistance (%), avg_speed, …
	Metrics          []GraphMetric  `json:"metrics"`           // output, cadence, resistance, speed, heart_rate, pace, …
	EffortZones      *EffortZones   `json:"effort_zones"`      // null without a heart-rate strap
}

// GraphSummary is one entry of summaries or average_summaries.
type GraphSummary struct {
	Slug        Text   `json:"slug"`
	DisplayUnit Text   `json:"display_unit"`
	Value       Number `json:"value"`
}

// GraphMetric is one sampled metric; only its average, maximum and zones are read. The Tread's
// speed is an alternative of its pace metric rather than a metric of its own.
type GraphMetric struct {
	Slug         Text            `json:"slug"`
	DisplayUnit  Text            `json:"display_unit"`
	AverageValue Number          `json:"average_value"`
	MaxValue     Number          `json:"max_value"`
	Zones        []HeartRateZone `json:"zones"`
	Alternatives []GraphMetric   `json:"alternatives"`
}

// HeartRateZone is one zone of the heart_rate metric ("zone1" … "zone5"), duration in seconds.
type HeartRateZone struct {
	Slug     Text   `json:"slug"`
	Duration Number `json:"duration"`
}

// EffortZones is the Strive Score and the time in each heart-rate zone, in seconds. Captures
// nest the durations; an older OpenAPI description puts them beside the points, so both are
// read.
type EffortZones struct {
	TotalEffortPoints Number         `json:"total_effort_points"`
	Durations         *ZoneDurations `json:"heart_rate_zone_durations"`
	Z1                Number         `json:"heart_rate_z1_duration"`
	Z2                Number         `json:"heart_rate_z2_duration"`
	Z3                Number         `json:"heart_rate_z3_duration"`
	Z4                Number         `json:"heart_rate_z4_duration"`
	Z5                Number         `json:"heart_rate_z5_duration"`
}

// Zones returns the time in zones 1 to 5, nested or flat, and whether all five were there.
func (e *EffortZones) Zones() ([5]float64, bool) {
	d := ZoneDurations{e.Z1, e.Z2, e.Z3, e.Z4, e.Z5}
	if e.Durations != nil {
		d = *e.Durations
	}
	var out [5]float64
	for i, n := range []Number{d.Z1, d.Z2, d.Z3, d.Z4, d.Z5} {
		if !n.Valid || n.Value < 0 {
			return [5]float64{}, false
		}
		out[i] = n.Value
	}
	return out, true
}

type ZoneDurations struct {
	Z1 Number `json:"heart_rate_z1_duration"`
	Z2 Number `json:"heart_rate_z2_duration"`
	Z3 Number `json:"heart_rate_z3_duration"`
	Z4 Number `json:"heart_rate_z4_duration"`
	Z5 Number `json:"heart_rate_z5_duration"`
}

// Settings is GET /api/user/{id}/settings; distance_unit is "imperial" or "metric".
type Settings struct {
	DistanceUnit Text `json:"distance_unit"`
}

// Challenges is GET /api/user/{id}/challenges/current?has_joined=true.
type Challenges struct {
	Challenges []Challenge `json:"challenges"`
}

// Challenge is one challenge of the list, or GET /api/user/{id}/challenge/{challenge_id}, which
// adds the tiers (peloton-to-garmin src/Peloton/AnnualChallenge/).
type Challenge struct {
	Summary  ChallengeSummary  `json:"challenge_summary"`
	Progress ChallengeProgress `json:"progress"`
	Detail   *ChallengeDetail  `json:"challenge_detail"`
}

type ChallengeSummary struct {
	ID        Text   `json:"id"`
	Title     Text   `json:"title"`
	StartTime Number `json:"start_time"` // Unix seconds
	EndTime   Number `json:"end_time"`
}

// ChallengeProgress is in minutes for the Annual Challenge.
type ChallengeProgress struct {
	MetricValue       Number `json:"metric_value"`
	MetricDisplayUnit Text   `json:"metric_display_unit"`
}

type ChallengeDetail struct {
	Tiers []ChallengeTier `json:"tiers"`
}

type ChallengeTier struct {
	Title             Text   `json:"title"`
	MetricValue       Number `json:"metric_value"`
	MetricDisplayUnit Text   `json:"metric_display_unit"`
}

// graphEveryN is the sampling of the performance graph that is asked for. Only its totals,
// averages and maximums are read; whether Peloton computes a maximum over the samples it
// returns is not known, so the sampling most clients use (homebridge-peloton, Peloton-LED,
// pelotonR, peloton-api.md: every 5 seconds) is asked for rather than a coarser one, which
// could understate a peak heart rate.
const graphEveryN = 5

// PerformanceGraph fetches the totals and averages of one workout.
func (c *Client) PerformanceGraph(ctx context.Context, workoutID string) (*PerformanceGraph, error) {
	var g PerformanceGraph
	q := url.Values{"every_n": {strconv.Itoa(graphEveryN)}}
	if err := c.getJSON(ctx, "performance_graph", "/api/workout/"+url.PathEscape(workoutID)+"/performance_graph", q, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// Settings fetches the member's settings (the distance unit).
func (c *Client) Settings(ctx context.Context) (*Settings, error) {
	var s Settings
	if err := c.userJSON(ctx, "settings", "/settings", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Challenges fetches the current challenges the member has joined.
func (c *Client) Challenges(ctx context.Context) (*Challenges, error) {
	var ch Challenges
	if err := c.userJSON(ctx, "challenges", "/challenges/current", url.Values{"has_joined": {"true"}}, &ch); err != nil {
		return nil, err
	}
	return &ch, nil
}

// Challenge fetches one challenge with its tiers. The path is peloton-to-garmin's singular
// /challenge/{id}, which its Annual Challenge page has used since 2023.
func (c *Client) Challenge(ctx context.Context, challengeID string) (*Challenge, error) {
	var ch Challenge
	if err := c.userJSON(ctx, "challenge", "/challenge/"+url.PathEscape(challengeID), nil, &ch); err != nil {
		return nil, err
	}
	return &ch, nil
}

// userJSON fetches a path under /api/user/{id}.
func (c *Client) userJSON(ctx context.Context, endpoint, path string, query url.Values, out any) error {
	id, err := c.UserID(ctx)
	if err != nil {
		return err
	}
	return c.getJSON(ctx, endpoint, "/api/user/"+url.PathEscape(id)+path, query, out)
}
