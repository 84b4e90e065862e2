package main

// The first fill of the workout detail: one performance-graph request per completed workout,
// throttled. Measured at a short interval, so that the run takes seconds rather than the
// half hour of the default second: the throttle's share is then interval × workouts, the rest
// is the exporter's own cost per workout.

import (
	"context"
	"fmt"
	"math"
	"time"
)

// fillWorkouts is the size of the member of the fill phase: the simulated member's workouts
// plus its six imports.
const fillWorkouts = 2000

type fillResult struct {
	Workouts        int            `json:"workouts"`
	Interval        time.Duration  `json:"interval_ns"`
	Elapsed         time.Duration  `json:"elapsed_ns"` // from the first refresh's end to no detail pending
	ThrottleFloor   time.Duration  `json:"throttle_floor_ns"`
	AtDefault       time.Duration  `json:"at_default_interval_ns"` // the same fill at the default 1s
	Requests        map[string]int `json:"requests_by_endpoint"`
	RefreshRequests map[string]int `json:"later_refresh_requests_by_endpoint"` // one refresh after the fill
}

// measureFill starts an exporter on a member of fillWorkouts workouts and waits until every
// workout's detail is fetched.
func measureFill(ctx context.Context, tmp, bin string) (fillResult, error) {
	const interval = 5 * time.Millisecond
	r := fillResult{Workouts: fillWorkouts, Interval: interval}
	ex, up, err := startExporter(ctx, tmp, bin, "D", fmt.Sprintf("--demo.workouts=%d", fillWorkouts-6),
		"--peloton.detail-interval="+interval.String(), "--peloton.cache-ttl=1s")
	if err != nil {
		return r, err
	}
	defer ex.stop()
	start := up.at
	deadline := start.Add(5 * time.Minute)
	var st exporterState
	for {
		if st, err = readExporter(ctx, ex.url); err != nil {
			return r, err
		}
		if st.pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("exporter D: %v workouts still without detail after 5 minutes", st.pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Elapsed = st.at.Sub(start)
	r.ThrottleFloor = time.Duration(fillWorkouts) * interval
	r.AtDefault = time.Duration(fillWorkouts) * time.Second
	r.Requests = map[string]int{}
	for ep, v := range st.requests {
		r.Requests[ep] = int(math.Round(v))
	}
	// A refresh after the fill, with nothing new: the three sources, nothing else.
	time.Sleep(1100 * time.Millisecond) // the 1s TTL
	after, err := readExporter(ctx, ex.url)
	if err != nil {
		return r, err
	}
	r.RefreshRequests = map[string]int{}
	for ep, v := range after.requests {
		if d := int(math.Round(v - st.requests[ep])); d != 0 {
			r.RefreshRequests[ep] = d
		}
	}
	return r, nil
}
