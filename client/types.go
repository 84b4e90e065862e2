package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Peloton's JSON drifts: numbers arrive as ints, floats or numeric strings, fields go missing
// or turn null. These types decode all of that leniently, remember whether a value was there
// at all (so the exporter can emit no sample rather than a fake 0), and still fail loudly on a
// value of a truly wrong type, so a broken response is reported instead of half-read.

// Number is a JSON number that may also arrive as a numeric string; null or absent is !Valid.
type Number struct {
	Value float64
	Valid bool
}

func (n *Number) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*n = Number{}
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*n = Number{}
			return nil
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) { // "NaN" and "Infinity" parse, but are no counts
		return typeError(b, float64(0))
	}
	*n = Number{Value: v, Valid: true}
	return nil
}

// Text is a JSON string that may also arrive as a number (some slugs look numeric); null is "".
type Text string

func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*t = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = Text(s)
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*t = Text(b)
	default:
		return typeError(b, "")
	}
	return nil
}

// typeError is encoding/json's own error type, so that the decoder adds the field's path
// ("overview.streaks.current_weekly") to the message.
func typeError(b []byte, want any) error {
	var kind string
	switch b[0] {
	case '{':
		kind = "object"
	case '[':
		kind = "array"
	case '"':
		kind = "string"
	case 't', 'f':
		kind = "bool"
	default:
		kind = "number"
	}
	return &json.UnmarshalTypeError{Value: kind, Type: reflect.TypeOf(want)}
}

// Overview is GET /api/user/{id}/overview. Every section may be missing or null.
type Overview struct {
	WorkoutCounts     *WorkoutCounts     `json:"workout_counts"`
	PersonalRecords   []RecordGroup      `json:"personal_records"`
	Streaks           *Streaks           `json:"streaks"`
	AchievementCounts *AchievementCounts `json:"achievement_counts"`
}

type WorkoutCounts struct {
	TotalWorkouts Number         `json:"total_workouts"`
	Workouts      []WorkoutCount `json:"workouts"`
}

// WorkoutCount is one discipline's count; the overview and /api/me both use this shape.
type WorkoutCount struct {
	Name  Text   `json:"name"`
	Slug  Text   `json:"slug"`
	Count Number `json:"count"`
}

type RecordGroup struct {
	Name    Text     `json:"name"`
	Slug    Text     `json:"slug"`
	Records []Record `json:"records"`
}

// Record is a personal record for one class length. Slug holds the length in seconds as a
// string; Value is rounded kJ while RawValue is joules; WorkoutDate is zone-less ISO (UTC).
type Record struct {
	Name        Text   `json:"name"`
	Slug        Text   `json:"slug"`
	Value       Number `json:"value"`
	RawValue    Number `json:"raw_value"`
	Unit        Text   `json:"unit"`
	UnitSlug    Text   `json:"unit_slug"`
	WorkoutDate Text   `json:"workout_date"`
}

type Streaks struct {
	CurrentWeekly            Number `json:"current_weekly"`
	BestWeekly               Number `json:"best_weekly"`
	StartDateOfCurrentWeekly Number `json:"start_date_of_current_weekly"`
	CurrentDaily             Number `json:"current_daily"`
	StartDateOfCurrentDaily  Number `json:"start_date_of_current_daily"`
}

type AchievementCounts struct {
	TotalCount   Number             `json:"total_count"`
	Achievements []AchievementCount `json:"achievements"`
}

type AchievementCount struct {
	Count    Number              `json:"count"`
	Template AchievementTemplate `json:"template"`
}

type AchievementTemplate struct {
	Name Text `json:"name"`
	Slug Text `json:"slug"`
}

// Me is GET /api/me, reduced to what the exporter uses. Its workout_counts is a list, unlike
// the overview's object.
type Me struct {
	ID            Text           `json:"id"`
	Timezone      Text           `json:"timezone"`
	TotalWorkouts Number         `json:"total_workouts"`
	WorkoutCounts []WorkoutCount `json:"workout_counts"`
	// FTP in watts, 0 when unknown; the source is ftp_workout_source, ftp_manual_source or
	// ftp_estimated_source (peloton-to-garmin's FtpSource enum), or null.
	CyclingFTP          Number `json:"cycling_ftp"`
	EstimatedCyclingFTP Number `json:"estimated_cycling_ftp"`
	CyclingFTPSource    Text   `json:"cycling_ftp_source"`
}

// WorkoutPage is one page of GET /api/user/{id}/workouts, newest first.
type WorkoutPage struct {
	Data      []Workout `json:"data"`
	Page      Number    `json:"page"`
	PageCount Number    `json:"page_count"`
	Total     Number    `json:"total"`
	ShowNext  *bool     `json:"show_next"`
}

// Workout is one workout of the history, reduced to what the exporter uses.
type Workout struct {
	ID                Text   `json:"id"`
	StartTime         Number `json:"start_time"` // Unix seconds
	EndTime           Number `json:"end_time"`   // Unix seconds; null while in progress
	Status            Text   `json:"status"`     // COMPLETE or IN_PROGRESS
	FitnessDiscipline Text   `json:"fitness_discipline"`
	TotalWork         Number `json:"total_work"` // joules; 0 for a class without output
	Timezone          Text   `json:"timezone"`
	IsPersonalRecord  Bool   `json:"is_total_work_personal_record"`
	// Is3PFitFeed marks an activity imported from Apple Health, Strava or Fitbit, whose
	// created_at is the time of the import (homebridge-peloton SPEC.md §4.2).
	Is3PFitFeed Bool  `json:"is_3p_fit_feed_workout"`
	Ride        *Ride `json:"ride"` // with joins=ride,ride.instructor
}

// ParseRecordDate reads a record's workout_date: ISO 8601 without a zone (meaning UTC), with or
// without fractional seconds; a zoned form is accepted too in case Peloton starts sending one.
func ParseRecordDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	// time.Parse accepts a fractional second after the seconds field even when the layout has
	// none, which covers both "…T09:48:37" and "…T09:57:46.552438".
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("unrecognised record date %q", s)
	}
	return t, nil
}
