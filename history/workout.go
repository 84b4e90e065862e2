package history

import (
	"time"

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
}

// Completed says whether the workout is done and has an end time.
func (w Workout) Completed() bool { return w.Status != statusActive && w.End > 0 }

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
		HasWork:    cw.TotalWork.Valid,
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

// plausible says whether t is in [lo, hi], which also keeps NaN out of the int64 conversions.
func plausible(t, lo, hi float64) bool { return t >= lo && t <= hi }
