package collector_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/collector"
	"github.com/peloton-exporter/peloton_exporter/history"
	"github.com/peloton-exporter/peloton_exporter/internal/syncbuf"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// trainingMetrics are the series of the training detail, compared with testdata/training.prom.
var trainingMetrics = []string{
	"peloton_distance_meters", "peloton_energy_burned_joules", "peloton_heart_rate_zone_seconds",
	"peloton_effort_points", "peloton_imported_workouts", "peloton_instructor_workouts",
	"peloton_last_workout_output_joules", "peloton_last_workout_duration_seconds",
	"peloton_last_workout_average_output_watts", "peloton_last_workout_average_cadence_rpm",
	"peloton_last_workout_average_heart_rate_bpm", "peloton_last_workout_max_heart_rate_bpm",
	"peloton_last_workout_distance_meters", "peloton_last_workout_energy_burned_joules",
	"peloton_last_workout_average_resistance_ratio", "peloton_last_workout_average_speed_meters_per_second",
	"peloton_last_workout_effort_points", "peloton_last_workout_info", "peloton_workout_detail_pending",
	"peloton_output_joules", "peloton_cycling_ftp_watts", "peloton_cycling_estimated_ftp_watts",
	"peloton_annual_challenge_progress_seconds", "peloton_annual_challenge_tier_seconds",
	"peloton_annual_challenge_start_timestamp_seconds", "peloton_annual_challenge_end_timestamp_seconds",
	"peloton_current_week_discipline_workouts", "peloton_current_week_workout_duration_seconds",
	"peloton_current_week_output_joules", "peloton_current_week_distance_meters",
	"peloton_current_week_energy_burned_joules", "peloton_current_week_heart_rate_zone_seconds",
}

// trainingSource is a fileSource with the fixtures of testdata/training/.
func trainingSource(t *testing.T) *fileSource {
	t.Helper()
	read := func(name string) []byte { return fixture(t, filepath.Join("training", name)) }
	src := newFileSource(read("me.json"), []byte(`{}`), read("workouts.json"))
	for _, id := range []string{"t1", "t2", "t3", "t4", "t5", "t6"} { // t0 has no graph
		src.set("graph/"+id, read("graph_"+id+".json"), nil)
	}
	src.set("challenges", read("challenges.json"), nil)
	src.set("challenge/fa65351309d6476a8aadcc53902d78ec", read("challenge.json"), nil)
	return src
}

type trainingEnv struct {
	src   collector.Source
	clock *simulator.Clock
	exp   *collector.Exporter
	logs  *syncbuf.Buffer
}

func newTrainingEnv(t *testing.T, src collector.Source, opts collector.Options) *trainingEnv {
	t.Helper()
	clock := simulator.NewClock(time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC))
	logs := &syncbuf.Buffer{}
	opts.TTL, opts.WeekStart, opts.Now, opts.Logger = 5*time.Minute, time.Monday, clock.Now, log.NewLogfmtLogger(logs)
	if opts.DetailInterval == 0 {
		opts.DetailInterval = time.Millisecond
	}
	exp := collector.New(src, opts)
	t.Cleanup(exp.Close)
	return &trainingEnv{src: src, clock: clock, exp: exp, logs: logs}
}

func (e *trainingEnv) refresh(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e.exp.Refresh(ctx)
}

// waitFilled waits until no workout detail is pending, as the exporter reports it.
func (e *trainingEnv) waitFilled(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, ok := sample(t, e.exp, "peloton_workout_detail_pending", nil); ok && v == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the workout detail was not filled within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTrainingDetail(t *testing.T) {
	e := newTrainingEnv(t, trainingSource(t), collector.Options{})
	e.refresh(t)
	e.waitFilled(t)
	compareGolden(t, e.exp, filepath.Join("training", "training.prom"), trainingMetrics...)

	src := e.src.(*fileSource)
	// The graph of each workout once, the yoga class's 404 included; the tiers once.
	if n := src.requests("graph"); n != 7 {
		t.Errorf("%d graph requests for 7 workouts", n)
	}
	e.clock.Advance(6 * time.Minute)
	e.refresh(t)
	waitFor(t, e.exp.DetailIdle)
	if n := src.requests("graph"); n != 7 {
		t.Errorf("%d graph requests after a refresh with nothing new, want still 7", n)
	}
	if c, d := src.requests("challenges"), src.requests("challenge"); c != 1 || d != 1 {
		t.Errorf("challenges read %d times and the tiers %d times with nothing new, want once each", c, d)
	}
	expectSample(t, e.exp, "peloton_source_up", map[string]string{"source": "challenges"}, 1)
	expectSample(t, e.exp, "peloton_source_up", map[string]string{"source": "workout_detail"}, 1)
}

// Values Peloton did not send make no sample: no output for a class without one (not even in
// peloton_output_joules), no heart rate without a strap, nothing for a workout without a
// graph, and no pseudo-instructor of a freestyle ride.
func TestTrainingNoFakeZeros(t *testing.T) {
	e := newTrainingEnv(t, trainingSource(t), collector.Options{})
	e.refresh(t)
	e.waitFilled(t)
	absent := []struct {
		name   string
		labels map[string]string
	}{
		{"peloton_output_joules", map[string]string{"discipline": "strength"}},
		{"peloton_output_joules", map[string]string{"discipline": "yoga"}},
		{"peloton_output_joules", map[string]string{"discipline": "running"}},
		{"peloton_last_workout_output_joules", map[string]string{"discipline": "meditation"}},
		{"peloton_last_workout_average_cadence_rpm", map[string]string{"discipline": "strength"}},
		{"peloton_last_workout_average_heart_rate_bpm", map[string]string{"discipline": "caesar"}},
		{"peloton_heart_rate_zone_seconds", map[string]string{"discipline": "caesar"}},
		{"peloton_distance_meters", map[string]string{"discipline": "yoga"}},
		{"peloton_energy_burned_joules", map[string]string{"discipline": "meditation"}},
		{"peloton_instructor_workouts", map[string]string{"instructor": "JUST RIDE"}},
		{"peloton_imported_workouts", map[string]string{"discipline": "cycling"}},
	}
	for _, a := range absent {
		if v, ok := sample(t, e.exp, a.name, a.labels); ok {
			t.Errorf("%s%v = %v: Peloton sent no such value", a.name, a.labels, v)
		}
	}
}

func TestTrainingUnits(t *testing.T) {
	e := newTrainingEnv(t, trainingSource(t), collector.Options{})
	e.refresh(t)
	e.waitFilled(t)
	cycling := map[string]string{"discipline": "cycling"}
	expectSample(t, e.exp, "peloton_last_workout_distance_meters", cycling, 10.5*1609.344)
	expectSample(t, e.exp, "peloton_last_workout_energy_burned_joules", cycling, 420*4184)
	expectSample(t, e.exp, "peloton_last_workout_average_resistance_ratio", cycling, 0.45)
	expectSample(t, e.exp, "peloton_last_workout_average_speed_meters_per_second", cycling, 21*0.44704)
	mile := 1609.344 // a variable: constant arithmetic would be exact, the exporter's is not
	expectSample(t, e.exp, "peloton_distance_meters", cycling, 10.5*mile+3.1*mile)
	expectSample(t, e.exp, "peloton_distance_meters", map[string]string{"discipline": "caesar"}, 4512.5)
	expectSample(t, e.exp, "peloton_heart_rate_zone_seconds", map[string]string{"discipline": "strength", "zone": "2"}, 500)
	expectSample(t, e.exp, "peloton_annual_challenge_progress_seconds", map[string]string{"year": "2025"}, 7450*60)
	expectSample(t, e.exp, "peloton_annual_challenge_tier_seconds", map[string]string{"year": "2025", "tier": "10K"}, 10000*60)
	if _, ok := sample(t, e.exp, "peloton_annual_challenge_tier_seconds", map[string]string{"year": "2025", "tier": "Joined"}); ok {
		t.Error("a tier without a target (0 minutes) was exported")
	}
	expectSample(t, e.exp, "peloton_cycling_ftp_watts", map[string]string{"source": "workout"}, 215)
}

// A metric member: Peloton's distance in km and speed in kph, and the settings' unit for a
// distance that comes without one.
func TestTrainingMetricUnits(t *testing.T) {
	src := trainingSource(t)
	src.set("graph/t6", []byte(`{"summaries":[{"slug":"distance","display_unit":"km","value":16.9}],
		"average_summaries":[{"slug":"avg_speed","display_unit":"kph","value":33.8}]}`), nil)
	src.set("graph/t3", []byte(`{"summaries":[{"slug":"distance","value":5}]}`), nil)
	src.set("settings", []byte(`{"distance_unit":"metric"}`), nil)
	e := newTrainingEnv(t, src, collector.Options{})
	e.refresh(t)
	e.waitFilled(t)
	cycling := map[string]string{"discipline": "cycling"}
	expectSample(t, e.exp, "peloton_last_workout_distance_meters", cycling, 16900)
	expectSample(t, e.exp, "peloton_last_workout_average_speed_meters_per_second", cycling, 33.8/3.6)
	expectSample(t, e.exp, "peloton_distance_meters", cycling, 16900+5000)
}

// gatedSource holds every graph request until released, and records when each was sent.
type gatedSource struct {
	*fileSource
	release chan struct{}
	mu      sync.Mutex
	sent    []time.Time
}

func (g *gatedSource) PerformanceGraph(ctx context.Context, id string) (*client.PerformanceGraph, error) {
	g.mu.Lock()
	g.sent = append(g.sent, time.Now())
	g.mu.Unlock()
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.fileSource.PerformanceGraph(ctx, id)
}

// The first fill never makes a scrape wait: a refresh ends while the detail requests hang.
func TestDetailNeverDelaysARefresh(t *testing.T) {
	src := &gatedSource{fileSource: trainingSource(t), release: make(chan struct{})}
	e := newTrainingEnv(t, src, collector.Options{})
	done := make(chan struct{})
	go func() { e.refresh(t); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a refresh waited for a workout's detail")
	}
	expectSample(t, e.exp, "peloton_workout_detail_pending", nil, 7)
	expectSample(t, e.exp, "peloton_up", nil, 1)
	close(src.release)
	e.waitFilled(t)
}

// The first fill is throttled: no two detail requests closer than the interval.
func TestDetailThrottle(t *testing.T) {
	src := &gatedSource{fileSource: trainingSource(t), release: make(chan struct{})}
	close(src.release)
	const interval = 40 * time.Millisecond
	e := newTrainingEnv(t, src, collector.Options{DetailInterval: interval})
	e.refresh(t)
	e.waitFilled(t)
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.sent) != 7 {
		t.Fatalf("%d requests, want 7", len(src.sent))
	}
	// The filler spaces its requests by the interval; seen from the source, each arrives a
	// little after it was sent, by a varying delay: a tenth of the interval of slack.
	for i := 1; i < len(src.sent); i++ {
		if gap := src.sent[i].Sub(src.sent[i-1]); gap < interval*9/10 {
			t.Errorf("requests %d and %d only %v apart, want about %v", i, i+1, gap, interval)
		}
	}
}

// The fill goes on after a restart where it stopped, newest first, and a restart with every
// detail kept sends no detail request.
func TestDetailFillResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	src := &gatedSource{fileSource: trainingSource(t), release: make(chan struct{})}
	store := history.Open(path, log.NewNopLogger())
	e := newTrainingEnv(t, src, collector.Options{History: store})
	e.refresh(t)
	for range 3 { // let three requests through, then stop the exporter
		src.release <- struct{}{}
	}
	waitFor(t, func() bool { return store.PendingDetails() == 4 })
	e.exp.Close()

	store = history.Open(path, log.NewNopLogger())
	if n := store.PendingDetails(); n != 4 {
		t.Fatalf("%d details pending after a restart, want the 4 not fetched", n)
	}
	src2 := trainingSource(t)
	e = newTrainingEnv(t, src2, collector.Options{History: store})
	e.refresh(t)
	e.waitFilled(t)
	if n := src2.requests("graph"); n != 4 {
		t.Errorf("%d graph requests after the restart, want the 4 missing", n)
	}
	ws := store.Workouts()
	for _, w := range ws {
		if w.Detail == nil {
			t.Errorf("workout %s has no detail after the fill", w.ID)
		}
	}
	e.exp.Close()

	src3 := trainingSource(t)
	e = newTrainingEnv(t, src3, collector.Options{History: history.Open(path, log.NewNopLogger())})
	e.refresh(t)
	waitFor(t, e.exp.DetailIdle)
	if n := src3.requests("graph"); n != 0 {
		t.Errorf("%d graph requests after a restart with every detail kept, want 0", n)
	}
}

// waitFor polls cond until it holds, for at most 10s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A new workout costs one detail request and one challenge request; its detail shows without
// waiting for the next refresh.
func TestNewWorkoutDetail(t *testing.T) {
	src := trainingSource(t)
	e := newTrainingEnv(t, src, collector.Options{})
	e.refresh(t)
	e.waitFilled(t)
	page := strings.Replace(string(fixture(t, filepath.Join("training", "workouts.json"))), `"data": [`,
		`"data": [{"id": "t7", "status": "COMPLETE", "start_time": 1764010000, "end_time": 1764011200,
		"fitness_discipline": "cycling", "total_work": 250000, "timezone": "America/Chicago"},`, 1)
	src.set("workouts", []byte(page), nil)
	src.set("graph/t7", []byte(`{"summaries":[{"slug":"calories","display_unit":"kcal","value":260}]}`), nil)
	e.clock.Advance(6 * time.Minute)
	e.refresh(t)
	waitFor(t, func() bool {
		v, ok := sample(t, e.exp, "peloton_last_workout_energy_burned_joules", map[string]string{"discipline": "cycling"})
		return ok && v == 260*4184
	})
	if n := src.requests("graph"); n != 8 {
		t.Errorf("%d graph requests, want 7 + 1 for the new workout", n)
	}
	if c, d := src.requests("challenges"), src.requests("challenge"); c != 2 || d != 1 {
		t.Errorf("challenges read %d times and tiers %d times, want 2 and 1", c, d)
	}
}

// Cardinality: instructors are capped, the most frequent kept.
func TestInstructorsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"data": [`)
	n := 0
	for i := range 150 {
		for j := 0; j <= i/100; j++ { // the last 50 instructors have two workouts each
			if n > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id": "w%d", "status": "COMPLETE", "start_time": %d, "end_time": %d, "fitness_discipline": "yoga",
				"ride": {"id": "r%d", "instructor_id": "i%d", "instructor": {"id": "i%d", "name": "Instructor %03d"}}}`,
				n, 1764000000-n*4000, 1764000000-n*4000+1200, n, i, i, i)
			n++
		}
	}
	b.WriteString(`], "show_next": false}`)
	src := newFileSource(fixture(t, filepath.Join("training", "me.json")), []byte(`{}`), []byte(b.String()))
	e := newTrainingEnv(t, src, collector.Options{NoDetail: true})
	e.refresh(t)
	if got := testutil.CollectAndCount(gauge(t, e.exp, "peloton_instructor_workouts")); got != 100 {
		t.Errorf("%d instructor series, want the cap of 100", got)
	}
	expectSample(t, e.exp, "peloton_instructor_workouts", map[string]string{"instructor": "Instructor 149"}, 2)
}

// A history file from before the training detail (no details, total_work 0 kept as a
// known output) loads, and the details are fetched for it.
func TestOldHistoryFileGetsDetails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	old := `{"version":1,"user_id":"fixture-member","workouts":[
		{"id":"t6","start":1764000060,"end":1764001860,"status":"COMPLETE","discipline":"cycling","work":400123.5,"has_work":true},
		{"id":"t4","start":1763900060,"end":1763901260,"status":"COMPLETE","discipline":"strength","work":0,"has_work":true}]}`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	src := trainingSource(t)
	src.set("workouts", []byte(`{"data":[],"total":2,"show_next":false}`), nil)
	store := history.Open(path, log.NewNopLogger())
	e := newTrainingEnv(t, src, collector.Options{History: store})
	e.refresh(t)
	e.waitFilled(t)
	if _, ok := sample(t, e.exp, "peloton_output_joules", map[string]string{"discipline": "strength"}); ok {
		t.Error("a kept total_work of 0 is exported as an output")
	}
	expectSample(t, e.exp, "peloton_energy_burned_joules", map[string]string{"discipline": "strength"}, 123*4184)
}
