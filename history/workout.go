package history

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/peloton-exporter/peloton_exporter/client"
)

const statusActive = "IN_PROGRESS"

var (
	// pelotonFounded bounds a workout's start from below: Peloton was founded in 2012 and no
	// workout of it is older. It is also far from 0, the value of a time Peloton left out.
	pelotonFounded = time.Date(2012, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	// clockSkew is how far in the future a workout's times may be, for a clock that is ahead.
	clockSkew = time.Hour
)

// Workout is one workout as kept on disk: only what the signals need.
type Workout struct {
	ID         string  `json:"id"`
	Start      int64   `json:"start"`
	End        int64   `json:"end,omitempty"` // 0 while in progress
	Status     string  `json:"status"`
	Discipline string  `json:"discipline"`
	Work       float64 `json:"work,omitempty"` // joules
	HasWork    bool    `json:"has_work,omitempty"`
	Timezone   string  `json:"tz,omitempty"`
	// PR is Peloton's flag that the workout set the output record of its class length.
	PR bool `json:"pr,omitempty"`
	// Imported marks an activity imported from another app (is_3p_fit_feed_workout).
	Imported    bool   `json:"imported,omitempty"`
	ClassLength int    `json:"class_s,omitempty"` // the class's length in seconds (ride.duration)
	Title       string `json:"title,omitempty"`   // the class's title
	Instructor  string `json:"instructor,omitempty"`
	// Detail is what the workout's performance graph said; nil until it was fetched.
	Detail *Detail `json:"detail,omitempty"`
}

// Completed says whether the workout is done and has an end time.
func (w Workout) Completed() bool { return w.Status != statusActive && w.End > 0 }

// Going tells whether Peloton said the workout is in progress as the history was read.
func (w Workout) Going() bool { return w.Status == statusActive }

// Output is the workout's total output in joules, if it has one: a class without an output
// (strength, yoga, an app run) reports 0, which is no output rather than a measured 0.
func (w Workout) Output() (float64, bool) { return w.Work, w.HasWork && w.Work > 0 }

// maxLabelText bounds the class titles and instructor names kept, which become label values.
const maxLabelText = 100

// freestyleRideID is the ride id of a workout without a class ("Just Ride", peloton-to-garmin
// fixture cycling_just_ride.json).
const freestyleRideID = "00000000000000000000000000000000"

// convert keeps a workout as Peloton described it. One without an id cannot be kept (nor told
// apart from others). One whose times are not plausible at now (before Peloton existed, in
// the future, an end before the start) is kept without its times, so that the sync knows it
// while Summarize does not count it, like one lacking a discipline or start; implausible
// says so.
func convert(cw client.Workout, now time.Time) (w Workout, ok, implausible bool) {
	w = Workout{
		ID:         string(cw.ID),
		Status:     string(cw.Status),
		Discipline: string(cw.FitnessDiscipline),
		Timezone:   string(cw.Timezone),
		Work:       cw.TotalWork.Value,
		HasWork:    cw.TotalWork.Valid && cw.TotalWork.Value > 0,
		PR:         bool(cw.IsPersonalRecord),
		Imported:   bool(cw.Is3PFitFeed),
	}
	if r := cw.Ride; r != nil {
		if r.Duration.Valid && r.Duration.Value > 0 && r.Duration.Value < 1e6 {
			w.ClassLength = int(r.Duration.Value)
		}
		w.Title = Truncate(strings.TrimSpace(string(r.Title)), maxLabelText)
		// A freestyle workout's pseudo-instructor ("JUST RIDE", "GYM WORKOUT") has no id.
		if in := r.Instructor; in != nil && string(r.ID) != freestyleRideID && (in.ID != "" || r.InstructorID != "") {
			w.Instructor = Truncate(strings.TrimSpace(string(in.Name)), maxLabelText)
		}
	}
	if w.ID == "" {
		return Workout{}, false, false
	}
	if !cw.StartTime.Valid {
		return w, true, false
	}
	latest := float64(now.Add(clockSkew).Unix())
	start := cw.StartTime.Value
	end, ended := cw.EndTime.Value, cw.EndTime.Valid && w.Status != statusActive
	if !plausible(start, float64(pelotonFounded), latest) || (ended && !plausible(end, start, latest)) {
		return w, true, true
	}
	w.Start = int64(start)
	if ended {
		w.End = int64(end)
	}
	return w, true, false
}

// Truncate cuts s to at most n characters, as valid UTF-8: for text that becomes a label
// value.
func Truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// plausible says whether t is in [lo, hi], which also keeps NaN out of the int64 conversions.
func plausible(t, lo, hi float64) bool { return t >= lo && t <= hi }
