package collector

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/history"
)

// maxInstructors bounds peloton_instructor_workouts: Peloton has had about 60 instructors, and
// a member takes classes with a fraction of them; a list of more keeps the most frequent.
const maxInstructors = 100

// addTraining exports what each workout's class and detail add: imports, the newest workout
// of each discipline, the current week's totals, the instructors.
func (d *descs) addTraining(s *metricSet, sum history.Summary) {
	for _, slug := range sortedKeys(sum.Disciplines) {
		ds := sum.Disciplines[slug]
		if ds.Count == 0 {
			continue
		}
		if ds.Imported > 0 {
			s.add(d.imported, prometheus.GaugeValue, float64(ds.Imported), slug)
		}
		d.addLastWorkout(s, slug, ds.Last)
		// 0 is a known value this week (the member did none) for what the discipline ever
		// reported.
		d.addTotals(s, d.week, slug, ds.Week, ds.Totals)
	}
	for _, in := range topInstructors(sum.Instructors, maxInstructors) {
		s.add(d.instructors, prometheus.GaugeValue, float64(sum.Instructors[in]), in)
	}
}

// totalsDescs are the metrics of one kind of Totals (all time, the current week); a nil one
// is not exported.
type totalsDescs struct {
	count, duration, output, distance, energy, effort, zones *prometheus.Desc
}

// addTotals exports t for a discipline, each value that known reported.
func (d *descs) addTotals(s *metricSet, td totalsDescs, slug string, t, known history.Totals) {
	add := func(desc *prometheus.Desc, has bool, v float64) {
		if desc != nil && has {
			s.add(desc, prometheus.GaugeValue, v, slug)
		}
	}
	add(td.count, true, float64(t.Count))
	add(td.duration, true, t.DurationSeconds)
	add(td.output, known.HasOutput, t.OutputJoules)
	add(td.distance, known.HasDistance, t.DistanceMeters)
	add(td.energy, known.HasEnergy, t.EnergyJoules)
	add(td.effort, known.HasEffort, t.EffortPoints)
	if td.zones != nil && known.HasZones {
		for i, secs := range t.HeartRateZoneSeconds {
			s.add(td.zones, prometheus.GaugeValue, secs, slug, strconv.Itoa(i+1))
		}
	}
}

// addLastWorkout exports the newest completed workout of a discipline.
func (d *descs) addLastWorkout(s *metricSet, slug string, w history.Workout) {
	if out, ok := w.Output(); ok {
		s.add(d.lastOutput, prometheus.GaugeValue, out, slug)
	}
	if w.End > w.Start {
		s.add(d.lastDuration, prometheus.GaugeValue, float64(w.End-w.Start), slug)
	}
	if w.Title != "" || w.Instructor != "" {
		s.add(d.lastInfo, prometheus.GaugeValue, 1, slug, w.Title, w.Instructor)
	}
	dt := w.Detail
	if dt == nil {
		return
	}
	for _, v := range []struct {
		desc  *prometheus.Desc
		value *float64
	}{
		{d.lastAvgOutput, dt.AvgOutputWatts},
		{d.lastAvgCadence, dt.AvgCadenceRPM},
		{d.lastAvgHR, dt.AvgHeartRate},
		{d.lastMaxHR, dt.MaxHeartRate},
		{d.lastDistance, dt.DistanceMeters},
		{d.lastEnergy, dt.EnergyJoules},
		{d.lastAvgResistance, dt.AvgResistanceRatio},
		{d.lastAvgSpeed, dt.AvgSpeedMetersPerS},
		{d.lastEffort, dt.EffortPoints},
	} {
		if v.value != nil {
			s.add(v.desc, prometheus.GaugeValue, *v.value, slug)
		}
	}
}

// topInstructors returns at most n instructors, the most frequent first, ties by name.
func topInstructors(counts map[string]int, n int) []string {
	names := sortedKeys(counts)
	sort.SliceStable(names, func(i, j int) bool { return counts[names[i]] > counts[names[j]] })
	return names[:min(n, len(names))]
}

// addFTP exports the profile's FTP; 0 means Peloton does not know it.
func (d *descs) addFTP(s *metricSet, me *client.Me) {
	if me.CyclingFTP.Valid && me.CyclingFTP.Value > 0 {
		s.add(d.ftp, prometheus.GaugeValue, me.CyclingFTP.Value, ftpSource(string(me.CyclingFTPSource)))
	}
	if me.EstimatedCyclingFTP.Valid && me.EstimatedCyclingFTP.Value > 0 {
		s.add(d.estimatedFTP, prometheus.GaugeValue, me.EstimatedCyclingFTP.Value)
	}
}

// ftpSource turns Peloton's ftp_workout_source, ftp_manual_source and ftp_estimated_source
// into workout, manual and estimated; a value never seen is kept as it is, cut short.
func ftpSource(v string) string {
	if v == "" {
		return "unknown"
	}
	return history.Truncate(strings.TrimSuffix(strings.TrimPrefix(v, "ftp_"), "_source"), 40)
}

// annualChallenge is this year's Annual Challenge as last read.
type annualChallenge struct {
	id, year     string
	progressMins float64
	start, end   time.Time
	tiers        map[string]float64 // title -> minutes
}

// The Annual Challenge is the one titled "The Annual 2026" (peloton-to-garmin has matched
// titles starting "The Annual" since 2024; its issue #406 also saw "Peloton Annual 2023").
// Its id changes every January, so the title is what identifies it.
var (
	annualTitleRE = regexp.MustCompile(`(?i)^\s*(the|peloton)\s+annual\b`)
	yearRE        = regexp.MustCompile(`\b(19|20)\d\d\b`)
)

// challengesDue tells whether the challenges must be read again: never read, a workout
// completed since (progress moves with workouts), an hour after a read that a new workout
// caused (Peloton may credit the minutes a little later), once a day whatever happens, when
// the year or the challenge ended, or when a failure's back-off is over. A refresh with
// nothing new sends no request for them.
func (e *Exporter) challengesDue(now time.Time, completed [2]int64) bool {
	c := &e.last.challenges
	switch {
	case c.failures > 0:
		return !now.Before(c.retryAt)
	case !c.read, completed != c.readAt, now.Year() != c.readTime.Year():
		return true
	case !c.recheckAt.IsZero() && !now.Before(c.recheckAt), now.Sub(c.readTime) >= 24*time.Hour:
		return true
	}
	return c.annual != nil && !now.Before(c.annual.end)
}

// challengeState is what the exporter remembers of the challenges between refreshes.
type challengeState struct {
	read      bool
	annual    *annualChallenge
	readAt    [2]int64 // completedKey when read
	readTime  time.Time
	recheckAt time.Time // the read an hour after one a new workout caused; zero: none due
	failures  int
	retryAt   time.Time
	lastErr   string
}

// readChallenges reads the member's current challenges and, once per challenge, the tiers of
// this year's Annual Challenge. A failure keeps the last good values and is tried again after
// a back-off (one TTL, doubling up to a day), so that an endpoint that is gone for good does
// not add a request to every refresh.
func (e *Exporter) readChallenges(ctx context.Context, completed [2]int64) error {
	c := &e.last.challenges
	now := e.opts.Now()
	if !e.challengesDue(now, completed) {
		if c.failures > 0 {
			return fmt.Errorf("%s (retrying at %s)", c.lastErr, c.retryAt.UTC().Format(time.RFC3339))
		}
		return nil
	}
	annual, err := e.fetchAnnual(ctx, now)
	if err != nil {
		c.failures++
		c.retryAt = now.Add(min(e.opts.TTL<<min(c.failures-1, 10), 24*time.Hour))
		if msg := err.Error(); msg != c.lastErr {
			level.Warn(e.opts.Logger).Log("msg", "cannot read the Annual Challenge; its last values are kept", "err", msg)
			c.lastErr = msg
		}
		return err
	}
	if c.failures > 0 {
		level.Info(e.opts.Logger).Log("msg", "reading the Annual Challenge works again")
	}
	c.failures, c.lastErr = 0, ""
	switch {
	case c.read && completed != c.readAt:
		c.recheckAt = now.Add(time.Hour) // a new workout: read again once it surely counts
	case !c.recheckAt.IsZero() && !now.Before(c.recheckAt):
		c.recheckAt = time.Time{}
	}
	c.read, c.annual, c.readAt, c.readTime = true, annual, completed, now
	return nil
}

func (e *Exporter) fetchAnnual(ctx context.Context, now time.Time) (*annualChallenge, error) {
	list, err := e.src.Challenges(ctx)
	if err != nil {
		return nil, err
	}
	var found *client.Challenge
	for i, ch := range list.Challenges {
		sum := ch.Summary
		if !annualTitleRE.MatchString(string(sum.Title)) || !sum.StartTime.Valid || !sum.EndTime.Valid {
			continue
		}
		if start, end := time.Unix(int64(sum.StartTime.Value), 0), time.Unix(int64(sum.EndTime.Value), 0); !now.Before(start) && now.Before(end) {
			found = &list.Challenges[i]
		}
	}
	if found == nil {
		return nil, nil // the member has not joined this year's Annual Challenge
	}
	sum := found.Summary
	a := &annualChallenge{
		id:    string(sum.ID),
		start: time.Unix(int64(sum.StartTime.Value), 0),
		end:   time.Unix(int64(sum.EndTime.Value), 0),
	}
	a.year = annualYear(string(sum.Title), a.start)
	if p := found.Progress.MetricValue; p.Valid && p.Value >= 0 {
		a.progressMins = p.Value
	} else {
		return nil, fmt.Errorf("challenges: the Annual Challenge %s has no progress", a.year)
	}
	// The tiers do not change during the year: read once per challenge.
	if prev := e.last.challenges.annual; prev != nil && prev.id == a.id {
		a.tiers = prev.tiers
		return a, nil
	}
	detail, err := e.src.Challenge(ctx, a.id)
	if err != nil {
		return nil, err
	}
	a.tiers = map[string]float64{}
	if detail.Detail != nil {
		for _, t := range detail.Detail.Tiers {
			// peloton-to-garmin drops tiers without a target above 0 too.
			if t.MetricValue.Valid && t.MetricValue.Value > 0 {
				title := strings.TrimSpace(string(t.Title))
				if title == "" {
					title = strconv.FormatFloat(t.MetricValue.Value, 'f', -1, 64)
				}
				a.tiers[history.Truncate(title, 64)] = t.MetricValue.Value
			}
		}
	}
	return a, nil
}

// annualYear is the challenge's year: from its title, else its start.
func annualYear(title string, start time.Time) string {
	if y := yearRE.FindString(title); y != "" {
		return y
	}
	return strconv.Itoa(start.UTC().Add(14 * time.Hour).Year()) // a start on Dec 31 in the Americas is the next year's
}

// addChallenge exports this year's Annual Challenge.
func (d *descs) addChallenge(s *metricSet, a *annualChallenge) {
	s.add(d.annualProgress, prometheus.GaugeValue, a.progressMins*60, a.year)
	s.add(d.annualStart, prometheus.GaugeValue, float64(a.start.Unix()), a.year)
	s.add(d.annualEnd, prometheus.GaugeValue, float64(a.end.Unix()), a.year)
	for _, title := range sortedKeys(a.tiers) {
		s.add(d.annualTier, prometheus.GaugeValue, a.tiers[title]*60, a.year, title)
	}
}
