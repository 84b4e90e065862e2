package collector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/history"
)

// The sources a refresh reads, as named by peloton_source_up.
const (
	sourceMe       = "me"
	sourceOverview = "overview"
	sourceWorkouts = "workouts"
	// Optional sources: their failure shows in peloton_source_up only, not in peloton_up, as
	// it leaves the rest of the data as fresh as ever.
	sourceChallenges = "challenges"
	sourceDetail     = "workout_detail" // the performance graphs, fetched in the background
)

var sourceNames = []string{sourceMe, sourceOverview, sourceWorkouts, sourceChallenges, sourceDetail}

// lastGood remembers the last good answer of each source, so that a source that fails keeps
// contributing its last good data. Only the refresh goroutine uses it, and refreshes never
// overlap.
type lastGood struct {
	overview   *client.Overview
	me         *client.Me
	names      map[string]string // discipline slug -> display name
	zone       string            // the streak time zone in use, to log when it changes
	units      map[string]bool   // unknown record units already logged
	challenges challengeState
}

// result is what one refresh produced.
type result struct {
	metrics  []prometheus.Metric
	sourceUp map[string]bool
	err      error // what failed; nil when every source was read
	// loginTurn is when a password login that had to wait for its turn may be tried.
	loginTurn time.Time
}

// fetch reads every source, then builds the samples.
func (e *Exporter) fetch(ctx context.Context) result {
	up := map[string]bool{}
	var errs []string
	var global bool
	var turn time.Time
	read := func(source string, f func() error) {
		if global {
			return // the error that stopped an earlier source would stop this one too
		}
		err := f()
		if err != nil {
			if source != sourceChallenges { // optional: it logs its own failures
				errs = append(errs, fmt.Sprintf("%s: %v", source, err))
			}
			var backoff *client.LoginBackoffError
			if errors.As(err, &backoff) && backoff.Turn {
				turn = backoff.Until
			}
			global = isGlobal(err)
			return
		}
		up[source] = true
	}
	read(sourceMe, func() error {
		me, err := e.src.Me(ctx)
		if err == nil {
			e.last.me = me
		}
		return err
	})
	read(sourceOverview, func() error {
		ov, err := e.src.Overview(ctx)
		if err == nil {
			e.last.overview = ov
		}
		return err
	})
	read(sourceWorkouts, func() error {
		id, err := e.src.UserID(ctx)
		if err != nil {
			return err
		}
		_, err = e.history.Sync(ctx, id, e.opts.Now(), e.src.Workouts)
		return err
	})
	read(sourceChallenges, func() error {
		if !up[sourceWorkouts] {
			return errNoHistory // whether a workout was completed since is not known
		}
		return e.readChallenges(ctx, completedKey(e.history.Workouts()))
	})
	if e.filler != nil {
		e.filler.Kick() // new workouts, or details still missing
	}
	res := e.build(up)
	e.keepProfile()
	if len(errs) > 0 {
		res.err = errors.New(strings.Join(errs, "; "))
	}
	res.loginTurn = turn
	return res
}

// build turns the last good data of every source into samples. A series comes from the
// freshest source that has it, preferring overview, then profile, then history; when none of
// them was read this time, from the same kind of source as before, so that a failed refresh
// serves the same series.
func (e *Exporter) build(up map[string]bool) result {
	var s metricSet
	d, ov, me := e.descs, e.last.overview, e.last.me
	workouts := e.history.Workouts()
	histKnown := up[sourceWorkouts] || len(workouts) > 0
	sum := history.Summarize(workouts, e.opts.Now(), e.zone(workouts), e.opts.WeekStart)

	ovCounts := ov != nil && ov.WorkoutCounts != nil
	meCounts := me != nil && len(me.WorkoutCounts) > 0
	if ovCounts {
		e.rememberNames(ov.WorkoutCounts.Workouts)
	}
	if meCounts {
		e.rememberNames(me.WorkoutCounts)
	}
	switch {
	case ovCounts && up[sourceOverview]:
		d.addWorkoutCounts(&s, ov.WorkoutCounts.Workouts)
	case meCounts && up[sourceMe]:
		d.addWorkoutCounts(&s, me.WorkoutCounts)
	case len(workouts) > 0 && up[sourceWorkouts]:
		d.addHistoryCounts(&s, sum, e.last.names)
	case ovCounts:
		d.addWorkoutCounts(&s, ov.WorkoutCounts.Workouts)
	case meCounts:
		d.addWorkoutCounts(&s, me.WorkoutCounts)
	case len(workouts) > 0:
		d.addHistoryCounts(&s, sum, e.last.names)
	}

	ovWeekly := ov != nil && ov.Streaks != nil && ov.Streaks.CurrentWeekly.Valid
	weeklyFromOverview := ovWeekly && (up[sourceOverview] || !up[sourceWorkouts])
	if ov != nil && ov.Streaks != nil {
		d.addStreaks(&s, ov.Streaks, weeklyFromOverview)
	}
	switch {
	case weeklyFromOverview:
		s.add(d.weeklyDerived, prometheus.GaugeValue, 0)
	case histKnown:
		d.addDerivedStreak(&s, sum)
	}
	if ov != nil {
		e.logUnknownUnits(d.addRecords(&s, ov.PersonalRecords))
		if ov.AchievementCounts != nil {
			d.addAchievements(&s, ov.AchievementCounts)
		}
	}
	if histKnown {
		d.addHistory(&s, sum)
		d.addTraining(&s, sum)
		if e.filler != nil {
			s.add(d.detailPending, prometheus.GaugeValue, float64(history.Pending(workouts))) // the workouts summed above
		}
	}
	if me != nil {
		d.addFTP(&s, me)
	}
	if a := e.last.challenges.annual; a != nil {
		d.addChallenge(&s, a)
	}
	if e.filler != nil {
		up[sourceDetail] = up[sourceWorkouts] && e.detailUp()
	}
	metrics := s.metrics()
	if s.dropped > 0 {
		level.Debug(e.opts.Logger).Log("msg", "dropped samples with repeated or invalid labels", "count", s.dropped)
	}
	return result{metrics: metrics, sourceUp: up}
}

// keepProfile keeps the discipline names and the profile's time zone with the history, for a
// backfill to label the past as the present is labelled.
func (e *Exporter) keepProfile() {
	p := history.Profile{Names: e.last.names}
	if e.last.me != nil {
		p.Timezone = string(e.last.me.Timezone)
	}
	e.history.SetProfile(p)
}

// completedKey changes whenever a workout is completed: the completed workouts' count and
// the newest one's end (a workout deleted and a new one done leave the count as it was).
func completedKey(ws []history.Workout) [2]int64 {
	var k [2]int64
	for _, w := range ws {
		if w.Completed() {
			k[0]++
			k[1] = max(k[1], w.End)
		}
	}
	return k
}

// errNoHistory is why an optional source is down when the history could not be synced.
var errNoHistory = errors.New("the workout history could not be synced")

// detailUp says whether fetching workout detail works: its last request did, or none was
// needed yet.
func (e *Exporter) detailUp() bool {
	up, tried := e.filler.Up()
	return up || !tried
}

func (e *Exporter) rememberNames(counts []client.WorkoutCount) {
	for _, w := range counts {
		if w.Slug != "" && w.Name != "" {
			e.last.names[string(w.Slug)] = string(w.Name)
		}
	}
}

func (e *Exporter) logUnknownUnits(units []string) {
	for _, u := range units {
		if !e.last.units[u] {
			e.last.units[u] = true
			level.Warn(e.opts.Logger).Log("msg", "skipping personal records in a unit the exporter does not know", "unit", u)
		}
	}
}

// zone is the time zone of streak weeks: --streak.timezone, else the member's profile, else
// the newest workout's. A change is logged, as it moves the week's boundaries.
func (e *Exporter) zone(workouts []history.Workout) *time.Location {
	profile := ""
	if e.last.me != nil {
		profile = string(e.last.me.Timezone)
	}
	loc, source, err := history.Timezone(e.opts.Timezone, profile, workouts)
	if loc == nil { // only a bad --streak.timezone, which main refuses at start
		loc, source = time.UTC, "default"
	}
	if loc.String() != e.last.zone {
		if err != nil {
			level.Warn(e.opts.Logger).Log("msg", "a time zone from Peloton is unknown", "err", err)
		}
		level.Info(e.opts.Logger).Log("msg", "streak weeks follow this time zone", "zone", loc.String(), "from", source)
		e.last.zone = loc.String()
	}
	return loc
}

// isGlobal tells errors that every source would hit alike: no usable token, a login that is
// refused or backing off, Peloton's rate limit. The remaining sources are not tried.
func isGlobal(err error) bool {
	var backoff *client.LoginBackoffError
	var limited *client.RateLimitedError
	return errors.Is(err, client.ErrNoCredentials) || errors.Is(err, client.ErrCredentialsRefused) ||
		errors.As(err, &backoff) || errors.As(err, &limited)
}
