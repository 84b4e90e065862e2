package collector

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "peloton"

// descs holds every descriptor the exporter can emit, built once.
type descs struct {
	info                                                          map[*prometheus.Desc]descInfo // each descriptor's name, help and labels
	workouts, prOutput, prTime                                    *prometheus.Desc
	weeklyStreak, weeklyBest, weeklyStart                         *prometheus.Desc
	weeklyDerived                                                 *prometheus.Desc
	dailyStreak, dailyStart                                       *prometheus.Desc
	achievements                                                  *prometheus.Desc
	lastWorkout, weekWorkouts, weekEnd                            *prometheus.Desc
	inProgress, output, duration                                  *prometheus.Desc
	up, sourceUp, sourceLastSuccess, lastSuccess, refreshDuration *prometheus.Desc
	apiRequests, tokenExpiry, credentialsRefused                  *prometheus.Desc

	// Training detail (training.go).
	distance, energy, zoneSeconds, effortPoints, imported, instructors       *prometheus.Desc
	lastOutput, lastDuration, lastAvgOutput, lastAvgCadence                  *prometheus.Desc
	lastAvgHR, lastMaxHR, lastDistance, lastEnergy                           *prometheus.Desc
	lastAvgResistance, lastAvgSpeed, lastEffort, lastInfo, detailPending     *prometheus.Desc
	ftp, estimatedFTP                                                        *prometheus.Desc
	annualProgress, annualTier, annualStart, annualEnd                       *prometheus.Desc
	weekCount, weekDuration, weekOutput, weekDistance, weekEnergy, weekZones *prometheus.Desc
	lifetime, week                                                           totalsDescs
}

// descInfo is what prometheus.Desc does not tell of itself, and a backfill writes out.
type descInfo struct {
	name, help string
	labels     []string
}

func newDescs(cached string) *descs {
	info := map[*prometheus.Desc]descInfo{}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		fq := prometheus.BuildFQName(namespace, "", name)
		desc := prometheus.NewDesc(fq, help, labels, nil)
		info[desc] = descInfo{fq, help, labels}
		return desc
	}
	ov := "From the Peloton overview (derived from the workout history or profile when the overview lacks it); " + cached
	hist := "From the workout history; " + cached
	detail := "From each workout's performance graph, fetched once per workout; " + cached
	ds := &descs{
		info:         info,
		workouts:     d("workouts", "Workouts completed, by discipline. "+ov, "discipline", "name"),
		prOutput:     d("personal_record_output_joules", "Personal record total output for a class length, in joules. "+ov, "discipline", "duration"),
		prTime:       d("personal_record_timestamp_seconds", "When the personal record for a class length was set, in Unix seconds. "+ov, "discipline", "duration"),
		weeklyStreak: d("weekly_streak", "Current weekly streak, in weeks. "+ov),
		weeklyBest:   d("weekly_streak_best", "Best weekly streak, in weeks (Peloton may report it below the current one). "+ov),
		weeklyStart:  d("weekly_streak_start_timestamp_seconds", "Start of the current weekly streak, in Unix seconds. "+ov),
		weeklyDerived: d("weekly_streak_derived", "1 when peloton_weekly_streak is derived from the workout history because the overview lacked it, "+
			"0 when it is Peloton's own value (alerts compare a streak only with values of the same kind); "+cached),
		dailyStreak:  d("daily_streak", "Current daily streak, in days. "+ov),
		dailyStart:   d("daily_streak_start_timestamp_seconds", "Start of the current daily streak, in Unix seconds. "+ov),
		achievements: d("achievements", "Times each achievement was earned. "+ov, "achievement", "name"),

		lastWorkout:  d("last_workout_timestamp_seconds", "End of the newest completed workout of each discipline, in Unix seconds. "+hist, "discipline"),
		weekWorkouts: d("current_week_workouts", "Workouts completed since the start of the current streak week (in the member's time zone). "+hist),
		weekEnd:      d("current_week_end_timestamp_seconds", "When the current streak week ends (its last instant + 1s), in Unix seconds. "+hist),
		inProgress:   d("workout_in_progress", "1 while a workout of the discipline is in progress. "+hist, "discipline"),
		output:       d("output_joules", "Total output of all completed workouts of each discipline, in joules. "+hist, "discipline"),
		duration:     d("workout_duration_seconds", "Total time of all completed workouts of each discipline. "+hist, "discipline"),

		up:                d("up", "1 if the most recent refresh read every source from Peloton, else 0 (the last good data is still served)."),
		sourceUp:          d("source_up", "1 if the most recent refresh could read this source (overview, me, workouts), else 0.", "source"),
		sourceLastSuccess: d("source_last_success_timestamp_seconds", "When this source (overview, me, workouts) was last read from Peloton successfully, in Unix seconds.", "source"),
		lastSuccess:       d("last_refresh_success_timestamp_seconds", "When data was last fetched from Peloton successfully, in Unix seconds."),
		refreshDuration:   d("refresh_duration_seconds", "How long the most recent refresh from Peloton took."),
		apiRequests:       d("api_requests_total", "Requests sent to Peloton, by endpoint and answer code (HTTP status, or error when none came).", "endpoint", "code"),
		tokenExpiry:       d("auth_token_expiry_timestamp_seconds", "Expiry of the Peloton access token in use, in Unix seconds."),
		credentialsRefused: d("auth_credentials_refused", "1 while password logins are stopped because Peloton refused the configured "+
			"credentials, blocked the account, asks for a verification step or rejected the login requests, else 0 (the log says which); "+
			"sign in with peloton_exporter login, or fix the password and restart."),

		distance:     d("distance_meters", "Total distance of the completed workouts of each discipline, in meters. "+detail, "discipline"),
		energy:       d("energy_burned_joules", "Total energy burned in the completed workouts of each discipline (Peloton's calories, kcal × 4184), in joules. "+detail, "discipline"),
		zoneSeconds:  d("heart_rate_zone_seconds", "Total time in each heart-rate zone (1 to 5) in the completed workouts of each discipline. "+detail, "discipline", "zone"),
		effortPoints: d("effort_points", "Total Strive Score (effort points) of the completed workouts of each discipline. "+detail, "discipline"),
		imported:     d("imported_workouts", "Completed workouts of each discipline imported from other apps (Apple Health, Strava, Fitbit); they are counted in the other totals too. "+hist, "discipline"),
		instructors:  d("instructor_workouts", "Completed workouts by the instructor of their class (at most "+strconv.Itoa(maxInstructors)+" instructors, the most frequent). "+hist, "instructor"),

		lastOutput:        d("last_workout_output_joules", "Total output of the newest completed workout of each discipline, in joules. "+hist, "discipline"),
		lastDuration:      d("last_workout_duration_seconds", "Length of the newest completed workout of each discipline. "+hist, "discipline"),
		lastAvgOutput:     d("last_workout_average_output_watts", "Average output of the newest completed workout of each discipline, in watts. "+detail, "discipline"),
		lastAvgCadence:    d("last_workout_average_cadence_rpm", "Average cadence of the newest completed workout of each discipline, in revolutions per minute. "+detail, "discipline"),
		lastAvgHR:         d("last_workout_average_heart_rate_bpm", "Average heart rate in the newest completed workout of each discipline, in beats per minute. "+detail, "discipline"),
		lastMaxHR:         d("last_workout_max_heart_rate_bpm", "Highest heart rate in the newest completed workout of each discipline, in beats per minute. "+detail, "discipline"),
		lastDistance:      d("last_workout_distance_meters", "Distance of the newest completed workout of each discipline, in meters. "+detail, "discipline"),
		lastEnergy:        d("last_workout_energy_burned_joules", "Energy burned in the newest completed workout of each discipline (kcal × 4184), in joules. "+detail, "discipline"),
		lastAvgResistance: d("last_workout_average_resistance_ratio", "Average resistance of the newest completed workout of each discipline, as a ratio (0.45 is 45%). "+detail, "discipline"),
		lastAvgSpeed:      d("last_workout_average_speed_meters_per_second", "Average speed of the newest completed workout of each discipline, in meters per second. "+detail, "discipline"),
		lastEffort:        d("last_workout_effort_points", "Strive Score (effort points) of the newest completed workout of each discipline. "+detail, "discipline"),
		lastInfo:          d("last_workout_info", "1 for the class of the newest completed workout of each discipline, with its title and instructor. "+hist, "discipline", "title", "instructor"),
		detailPending:     d("workout_detail_pending", "Completed workouts whose detail (performance graph) is not fetched yet; the first fill fetches one a --peloton.detail-interval."),

		weekCount:    d("current_week_discipline_workouts", "Workouts of each discipline completed since the start of the current streak week (in the member's time zone). "+hist, "discipline"),
		weekDuration: d("current_week_workout_duration_seconds", "Time of the workouts of each discipline completed since the start of the current streak week. "+hist, "discipline"),
		weekOutput:   d("current_week_output_joules", "Output of the workouts of each discipline completed since the start of the current streak week, in joules. "+hist, "discipline"),
		weekDistance: d("current_week_distance_meters", "Distance of the workouts of each discipline completed since the start of the current streak week, in meters. "+detail, "discipline"),
		weekEnergy:   d("current_week_energy_burned_joules", "Energy burned in the workouts of each discipline completed since the start of the current streak week, in joules. "+detail, "discipline"),
		weekZones:    d("current_week_heart_rate_zone_seconds", "Time in each heart-rate zone in the workouts of each discipline completed since the start of the current streak week. "+detail, "discipline", "zone"),

		ftp:          d("cycling_ftp_watts", "Peloton's current cycling FTP (functional threshold power), in watts, by where it came from (workout: an FTP test; manual; estimated). From /api/me; "+cached, "source"),
		estimatedFTP: d("cycling_estimated_ftp_watts", "Peloton's estimated cycling FTP, in watts. From /api/me; "+cached),

		annualProgress: d("annual_challenge_progress_seconds", "Workout minutes earned in the year's Annual Challenge, in seconds. From Peloton's challenges; "+cached, "year"),
		annualTier:     d("annual_challenge_tier_seconds", "The minutes each tier of the year's Annual Challenge asks for, in seconds. From Peloton's challenges; "+cached, "year", "tier"),
		annualStart:    d("annual_challenge_start_timestamp_seconds", "Start of the year's Annual Challenge, in Unix seconds. From Peloton's challenges; "+cached, "year"),
		annualEnd:      d("annual_challenge_end_timestamp_seconds", "End of the year's Annual Challenge, in Unix seconds. From Peloton's challenges; "+cached, "year"),
	}
	ds.lifetime = totalsDescs{duration: ds.duration, output: ds.output, distance: ds.distance,
		energy: ds.energy, effort: ds.effortPoints, zones: ds.zoneSeconds}
	ds.week = totalsDescs{count: ds.weekCount, duration: ds.weekDuration, output: ds.weekOutput,
		distance: ds.weekDistance, energy: ds.weekEnergy, zones: ds.weekZones}
	return ds
}

func (d *descs) all() []*prometheus.Desc {
	return []*prometheus.Desc{
		d.workouts, d.prOutput, d.prTime, d.weeklyStreak, d.weeklyBest, d.weeklyStart, d.weeklyDerived,
		d.dailyStreak, d.dailyStart, d.achievements,
		d.lastWorkout, d.weekWorkouts, d.weekEnd, d.inProgress, d.output, d.duration,
		d.up, d.sourceUp, d.sourceLastSuccess, d.lastSuccess, d.refreshDuration, d.apiRequests, d.tokenExpiry, d.credentialsRefused,
		d.distance, d.energy, d.zoneSeconds, d.effortPoints, d.imported, d.instructors,
		d.lastOutput, d.lastDuration, d.lastAvgOutput, d.lastAvgCadence, d.lastAvgHR, d.lastMaxHR,
		d.lastDistance, d.lastEnergy, d.lastAvgResistance, d.lastAvgSpeed, d.lastEffort, d.lastInfo, d.detailPending,
		d.ftp, d.estimatedFTP, d.annualProgress, d.annualTier, d.annualStart, d.annualEnd,
		d.weekCount, d.weekDuration, d.weekOutput, d.weekDistance, d.weekEnergy, d.weekZones,
	}
}

// metricSet collects the samples built from Peloton's data, skipping what cannot be a valid
// sample: a repeated label set (two entries with one slug) would make the whole scrape fail,
// and a label value that is not UTF-8 is refused by the client library.
type metricSet struct {
	samples []sample
	seen    map[sampleKey]bool
	dropped int
}

type sample struct {
	desc   *prometheus.Desc
	vt     prometheus.ValueType
	value  float64
	labels []string
}

type sampleKey struct {
	desc   *prometheus.Desc
	labels string
}

func (s *metricSet) add(desc *prometheus.Desc, vt prometheus.ValueType, v float64, labels ...string) {
	k := sampleKey{desc, strings.Join(labels, "\xff")}
	if s.seen == nil {
		s.seen = map[sampleKey]bool{}
	}
	if s.seen[k] {
		s.dropped++
		return
	}
	for _, l := range labels {
		if !utf8.ValidString(l) {
			s.dropped++
			return
		}
	}
	s.seen[k] = true
	s.samples = append(s.samples, sample{desc, vt, v, labels})
}

// metrics builds the const metrics of the samples.
func (s *metricSet) metrics() []prometheus.Metric {
	out := make([]prometheus.Metric, 0, len(s.samples))
	for _, smp := range s.samples {
		m, err := prometheus.NewConstMetric(smp.desc, smp.vt, smp.value, smp.labels...)
		if err != nil { // a label count that does not match: a bug, which the tests catch
			s.dropped++
			continue
		}
		out = append(out, m)
	}
	return out
}
