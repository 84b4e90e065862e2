package collector_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/collector"
	"github.com/peloton-exporter/peloton_exporter/internal/syncbuf"
	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// overviewMetrics are the series compared with the golden files; the health series that carry
// wall-clock times are checked separately.
var overviewMetrics = []string{
	"peloton_up", "peloton_workouts", "peloton_personal_record_output_joules",
	"peloton_personal_record_timestamp_seconds", "peloton_weekly_streak", "peloton_weekly_streak_best",
	"peloton_weekly_streak_start_timestamp_seconds", "peloton_weekly_streak_derived", "peloton_daily_streak",
	"peloton_daily_streak_start_timestamp_seconds", "peloton_achievements",
}

type env struct {
	sim   *simulator.Simulator
	clock *simulator.Clock
	exp   *collector.Exporter
	logs  *syncbuf.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := simulator.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	sim, err := simulator.Start(simulator.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	logs := &syncbuf.Buffer{}
	logger := log.NewLogfmtLogger(logs)
	c, err := client.New(client.Config{
		APIURL: sim.APIURL(), AuthURL: sim.AuthURL(), Transport: sim.Transport(),
		Username: simulator.DemoUsername, Password: simulator.DemoPassword,
		Timeout: 5 * time.Second, Logger: logger, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	exp := collector.New(c, collector.Options{TTL: 5 * time.Minute, WeekStart: time.Monday, Logger: logger, Now: clock.Now})
	t.Cleanup(exp.Close)
	return &env{sim: sim, clock: clock, exp: exp, logs: logs}
}

func (e *env) refresh(t *testing.T) { t.Helper(); refresh(t, e.exp) }

// refresh refreshes exp, waiting for at most 20 seconds.
func refresh(t *testing.T, exp *collector.Exporter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	exp.Refresh(ctx)
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compareGolden compares the series named (default: overviewMetrics) with a golden file;
// UPDATE_GOLDEN=1 writes it instead.
func compareGolden(t *testing.T, exp prometheus.Collector, golden string, names ...string) {
	t.Helper()
	if len(names) == 0 {
		names = overviewMetrics
	}
	path := filepath.Join("testdata", golden)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		got, err := testutil.CollectAndFormat(exp, expfmt.TypeTextPlain, names...)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.CollectAndCompare(exp, f, names...); err != nil {
		t.Error(err)
	}
}

// fixtureEnv is an exporter reading a fileSource fed from testdata/: the golden tests run
// in memory, without the simulated Peloton and its login.
type fixtureEnv struct {
	src   *fileSource
	clock *simulator.Clock
	exp   *collector.Exporter
	logs  *syncbuf.Buffer
}

func newFixtureEnv(t *testing.T, overview string) *fixtureEnv {
	t.Helper()
	clock := simulator.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	src := newFileSource(fixture(t, "me.json"), fixture(t, overview), fixture(t, "workouts.json"))
	logs := &syncbuf.Buffer{}
	exp := collector.New(src, collector.Options{TTL: 5 * time.Minute, WeekStart: time.Monday, Logger: log.NewLogfmtLogger(logs), Now: clock.Now})
	t.Cleanup(exp.Close)
	return &fixtureEnv{src: src, clock: clock, exp: exp, logs: logs}
}

func (e *fixtureEnv) refresh(t *testing.T) { t.Helper(); refresh(t, e.exp) }

func TestFullOverview(t *testing.T) {
	e := newFixtureEnv(t, "overview_full.json")
	e.refresh(t)
	compareGolden(t, e.exp, "full.prom")
	if !strings.Contains(e.logs.String(), "sec_per_500m") {
		t.Error("records in an unknown unit were not logged")
	}
}

func TestPartialOverview(t *testing.T) {
	e := newFixtureEnv(t, "overview_partial.json")
	e.refresh(t)
	compareGolden(t, e.exp, "partial.prom")
}

func TestFailedRefreshKeepsLastGoodData(t *testing.T) {
	e := newFixtureEnv(t, "overview_full.json")
	e.refresh(t)
	outage := &client.HTTPError{Endpoint: "overview", Status: 502, Message: "Bad Gateway"}
	for _, ep := range []string{"me", "overview", "workouts"} {
		e.src.set(ep, nil, outage)
	}
	for i := 0; i < 4; i++ {
		e.clock.Advance(6 * time.Minute)
		e.refresh(t)
	}
	compareGolden(t, e.exp, "failed.prom")
	e.clock.Advance(5 * time.Minute) // retries have backed off to the TTL by now
	if n := strings.Count(e.logs.String(), "refresh from Peloton failed"); n != 1 {
		t.Errorf("the same failure was logged %d times, want once", n)
	}

	// A new cause is logged again; recovery is logged and brings peloton_up back.
	for _, ep := range []string{"me", "workouts"} {
		e.src.set(ep, nil, nil)
	}
	e.src.set("overview", []byte(`{"streaks": 5}`), nil)
	e.refresh(t)
	if n := strings.Count(e.logs.String(), "refresh from Peloton failed"); n != 2 {
		t.Errorf("failure log lines = %d, want 2 after the cause changed", n)
	}
	e.src.set("overview", fixture(t, "overview_full.json"), nil)
	e.clock.Advance(5 * time.Minute)
	e.refresh(t)
	if v := testutil.ToFloat64(gauge(t, e.exp, "peloton_up")); v != 1 {
		t.Errorf("peloton_up = %v after recovery, want 1", v)
	}
	if !strings.Contains(e.logs.String(), "recovered") {
		t.Error("recovery was not logged")
	}
}

// A failed refresh is retried after a minute, then after 2, 4, … minutes up to the TTL: quick
// recovery, but a source gone for good is not polled more often than a healthy one.
func TestFailedRefreshesBackOffToTheTTL(t *testing.T) {
	e := newEnv(t)
	e.refresh(t)
	e.sim.InjectFault(simulator.EndpointOverview, simulator.Fault{Status: 503, Body: `{"message":"Service Unavailable"}`})
	e.clock.Advance(5 * time.Minute)
	e.refresh(t) // the first failure
	before := e.sim.Requests(simulator.EndpointOverview)
	var at []time.Duration
	for step := 1; step <= 34; step++ { // 17 minutes of scrapes every 30 s
		e.clock.Advance(30 * time.Second)
		e.refresh(t)
		if n := e.sim.Requests(simulator.EndpointOverview); n != before {
			at = append(at, time.Duration(step)*30*time.Second)
			before = n
		}
	}
	want := []time.Duration{time.Minute, 3 * time.Minute, 7 * time.Minute, 12 * time.Minute, 17 * time.Minute}
	if !slices.Equal(at, want) {
		t.Errorf("retries after the first failure at %v, want %v", at, want)
	}
}

func TestNoDataBeforeFirstRefresh(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(simulator.EndpointAuthorize, simulator.Fault{Status: 503, Body: "down"})
	e.refresh(t)
	if err := testutil.CollectAndCompare(e.exp, strings.NewReader("# HELP peloton_up 1 if the most recent refresh read every source from Peloton, else 0 (the last good data is still served).\n# TYPE peloton_up gauge\npeloton_up 0\n"), overviewMetrics...); err != nil {
		t.Error(err)
	}
}

func TestHealthMetrics(t *testing.T) {
	e := newEnv(t)
	e.refresh(t)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e.exp)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"peloton_up", "peloton_last_refresh_success_timestamp_seconds", "peloton_refresh_duration_seconds", "peloton_api_requests_total", "peloton_auth_token_expiry_timestamp_seconds"} {
		if !got[name] {
			t.Errorf("%s missing", name)
		}
	}
	want := float64(e.clock.Now().Add(48 * time.Hour).Unix())
	if v := testutil.ToFloat64(gauge(t, e.exp, "peloton_auth_token_expiry_timestamp_seconds")); v != want {
		t.Errorf("token expiry = %v, want %v", v, want)
	}
	problems, err := testutil.CollectAndLint(e.exp)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// gauge isolates one metric of the exporter for testutil.ToFloat64.
func gauge(t *testing.T, exp prometheus.Collector, name string) prometheus.Collector {
	t.Helper()
	return filtered{exp, name}
}

type filtered struct {
	prometheus.Collector
	name string
}

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { f.Collector.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `fqName: "`+f.name+`"`) {
			ch <- m
		}
	}
}

func TestConcurrentScrapesShareOneRefresh(t *testing.T) {
	e := newEnv(t)
	e.refresh(t) // log in first, so only overview requests remain to count
	e.clock.Advance(6 * time.Minute)
	endpoints := []string{simulator.EndpointMe, simulator.EndpointOverview, simulator.EndpointWorkouts}
	before := map[string]int{}
	for _, ep := range endpoints {
		before[ep] = e.sim.Requests(ep)
	}
	e.sim.InjectFault(simulator.EndpointOverview, simulator.Fault{Delay: 300 * time.Millisecond})

	reg := prometheus.NewRegistry()
	reg.MustRegister(e.exp)
	srv := httptest.NewServer(e.exp.Handler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	defer srv.Close()

	const scrapers = 100
	var wg sync.WaitGroup
	errs := make(chan error, scrapers)
	for i := 0; i < scrapers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
			resp, err := srv.Client().Do(req)
			if err != nil {
				errs <- err
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "\npeloton_up 1\n") {
				errs <- io.ErrUnexpectedEOF
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("scrape: %v", err)
	}
	for _, ep := range endpoints {
		if n := e.sim.Requests(ep) - before[ep]; n != 1 {
			t.Errorf("100 concurrent scrapes caused %d %s requests, want 1", n, ep)
		}
	}
}

func TestScrapeDeadlineServesOldData(t *testing.T) {
	e := newEnv(t)
	e.refresh(t)
	e.clock.Advance(6 * time.Minute)
	e.sim.InjectFault(simulator.EndpointOverview, simulator.Fault{Delay: 10 * time.Second, Times: 1})
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.exp)
	srv := httptest.NewServer(e.exp.Handler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "1")
	start := time.Now()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("the scrape waited %v for a slow refresh despite a 1s scrape timeout", waited)
	}
	if !strings.Contains(string(body), "peloton_weekly_streak ") {
		t.Error("the scrape that timed out did not get the previous data")
	}
}

func TestREADMEDocumentsEveryMetric(t *testing.T) {
	documented := testkit.READMEMetrics(t, "../README.md", "Metrics") // the household's own are under Households
	delete(documented, "peloton_exporter_build_info")                 // from client_golang's version collector
	testkit.CompareMetricNames(t, "Metrics", documented, testkit.DescribedMetrics(newEnv(t).exp))
}

// sample returns the value of the one sample of name whose labels contain all of want.
func sample(t *testing.T, exp prometheus.Collector, name string, want map[string]string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(exp)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func expectSample(t *testing.T, exp prometheus.Collector, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := sample(t, exp, name, labels)
	if !ok {
		t.Errorf("%s%v: no sample, want %v", name, labels, want)
	} else if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// expectDerived checks that workout counts and the weekly streak match the simulated member.
// Display names are known only when the profile or an overview gave them.
func expectDerived(t *testing.T, e *env, withNames bool) {
	t.Helper()
	want := e.sim.Overview()
	for _, w := range want.WorkoutCounts.Workouts {
		if w.Count > 0 {
			labels := map[string]string{"discipline": w.Slug, "name": w.Slug}
			if withNames {
				labels["name"] = w.Name
			}
			expectSample(t, e.exp, "peloton_workouts", labels, float64(w.Count))
		}
	}
	expectSample(t, e.exp, "peloton_weekly_streak", nil, float64(want.Streaks.CurrentWeekly))
}

func TestOverviewFailureDerivesFromProfileAndHistory(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(simulator.EndpointOverview, simulator.Fault{Status: 404, Body: `{"status":404,"message":"Not Found"}`})
	e.refresh(t)
	expectDerived(t, e, true)
	expectSample(t, e.exp, "peloton_up", nil, 0)
	expectSample(t, e.exp, "peloton_source_up", map[string]string{"source": "overview"}, 0)
	expectSample(t, e.exp, "peloton_source_up", map[string]string{"source": "me"}, 1)
	expectSample(t, e.exp, "peloton_source_up", map[string]string{"source": "workouts"}, 1)
}

func TestOverviewWithoutCountsOrStreaksUsesDerivedValues(t *testing.T) {
	e := newEnv(t)
	e.sim.SetOverviewJSON([]byte(`{"id":"x","personal_records":[],"achievement_counts":{"achievements":[]}}`))
	e.refresh(t)
	expectDerived(t, e, true)
	expectSample(t, e.exp, "peloton_up", nil, 1)
	expectSample(t, e.exp, "peloton_weekly_streak_derived", nil, 1)
	if _, ok := sample(t, e.exp, "peloton_weekly_streak_best", nil); ok {
		t.Error("a best streak was exported though the overview had none")
	}
}

func TestHistoryCountsWhenNeitherOverviewNorProfileHaveThem(t *testing.T) {
	e := newEnv(t)
	e.sim.SetOverviewJSON([]byte(`{}`))
	e.sim.InjectFault(simulator.EndpointMe, simulator.Fault{Status: 200, Body: `{"id":"` + e.sim.UserID() + `"}`})
	e.refresh(t)
	expectDerived(t, e, false)
}

// A profile whose workout_counts changes shape fails the "me" source only: the member's id is
// still read from it, so the overview and the history carry on, and /api/me is asked once.
func TestProfileDriftFailsOnlyTheProfile(t *testing.T) {
	e := newEnv(t)
	e.sim.InjectFault(simulator.EndpointMe, simulator.Fault{Status: 200,
		Body: `{"id":"` + e.sim.UserID() + `","workout_counts":{"workouts":"many"}}`})
	e.refresh(t)
	expectSample(t, e.exp, "peloton_source_up", map[string]string{"source": "me"}, 0)
	expectSample(t, e.exp, "peloton_source_up", map[string]string{"source": "overview"}, 1)
	expectSample(t, e.exp, "peloton_source_up", map[string]string{"source": "workouts"}, 1)
	expectDerived(t, e, true)
	if n := e.sim.Requests(simulator.EndpointMe); n != 1 {
		t.Errorf("/api/me was asked %d times in one refresh, want 1", n)
	}
	if !strings.Contains(e.logs.String(), "me: decoding the answer") {
		t.Errorf("the log does not name the profile's decoding error:\n%s", e.logs.String())
	}
}

func TestHistorySignals(t *testing.T) {
	clock := simulator.NewClock(time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC)) // a Tuesday
	sim, err := simulator.Start(simulator.Config{Now: clock.Now, InProgress: true, Timezone: "America/Chicago"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	c, _ := client.New(client.Config{APIURL: sim.APIURL(), AuthURL: sim.AuthURL(), Transport: sim.Transport(), Username: simulator.DemoUsername, Password: simulator.DemoPassword, Now: clock.Now})
	exp := collector.New(c, collector.Options{WeekStart: time.Monday, Now: clock.Now})
	defer exp.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	exp.Refresh(ctx)

	chicago, _ := time.LoadLocation("America/Chicago")
	expectSample(t, exp, "peloton_current_week_end_timestamp_seconds", nil, float64(time.Date(2026, 11, 30, 0, 0, 0, 0, chicago).Unix()))
	if n, ok := sample(t, exp, "peloton_current_week_workouts", nil); !ok || n < 1 {
		t.Errorf("current week workouts = %v (%v); the simulated member worked out within the last day", n, ok)
	}
	in, _ := sample(t, exp, "peloton_workout_in_progress", nil)
	if in != 1 {
		t.Error("no workout in progress reported")
	}
	for _, name := range []string{"peloton_last_workout_timestamp_seconds", "peloton_workout_duration_seconds"} {
		if _, ok := sample(t, exp, name, map[string]string{"discipline": "yoga"}); !ok {
			t.Errorf("%s{discipline=yoga} missing", name)
		}
	}
	if v, ok := sample(t, exp, "peloton_output_joules", map[string]string{"discipline": "cycling"}); !ok || v < 1e6 {
		t.Errorf("cycling output = %v, want the sum of years of rides", v)
	}
	// Peloton reports total_work 0 for a class without an output meter: no output, not a 0.
	if v, ok := sample(t, exp, "peloton_output_joules", map[string]string{"discipline": "yoga"}); ok {
		t.Errorf("yoga output = %v: a discipline without output must have no sample", v)
	}
}

// Each source says when it was last read: a profile that keeps failing must not make the
// overview's and the history's data look old (the alerts gate on their own source's age).
func TestEachSourceSaysWhenItWasLastRead(t *testing.T) {
	e := newEnv(t)
	e.refresh(t)
	first := float64(e.clock.Now().Unix())
	e.sim.InjectFault(simulator.EndpointMe, simulator.Fault{Status: 200, Body: `{"id":"` + e.sim.UserID() + `","workout_counts":{"workouts":"many"}}`})
	e.clock.Advance(6 * time.Minute)
	e.refresh(t)
	now := float64(e.clock.Now().Unix())
	expectSample(t, e.exp, "peloton_source_last_success_timestamp_seconds", map[string]string{"source": "me"}, first)
	expectSample(t, e.exp, "peloton_source_last_success_timestamp_seconds", map[string]string{"source": "overview"}, now)
	expectSample(t, e.exp, "peloton_source_last_success_timestamp_seconds", map[string]string{"source": "workouts"}, now)
	expectSample(t, e.exp, "peloton_last_refresh_success_timestamp_seconds", nil, first)
}

// An account that must wait for its turn to log in (a household's logins are spaced) tries
// again at its turn, not a whole retry interval later, and is up from then on.
func TestRefreshRetriesAtTheLoginTurn(t *testing.T) {
	clock := simulator.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	sam := simulator.DemoMember(1)
	sim, err := simulator.Start(simulator.Config{Now: clock.Now, Workouts: 40, Household: []simulator.Member{sam}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	spacer := client.NewLoginSpacer(30 * time.Second)
	newClient := func(username, password string) *client.Client {
		c, err := client.New(client.Config{
			APIURL: sim.APIURL(), AuthURL: sim.AuthURL(), Transport: sim.Transport(),
			Username: username, Password: password, LoginSpacer: spacer,
			Timeout: 5 * time.Second, Now: clock.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := newClient(simulator.DemoUsername, simulator.DemoPassword)
	if _, err := first.UserID(context.Background()); err != nil {
		t.Fatal(err)
	}
	exp := collector.New(newClient(sam.Username, sam.Password), collector.Options{TTL: 5 * time.Minute, NoDetail: true, Now: clock.Now})
	t.Cleanup(exp.Close)

	refresh(t, exp)
	if exp.Up() {
		t.Fatal("up before its turn to log in")
	}
	signIns := len(sim.SignIns())
	clock.Advance(29 * time.Second)
	refresh(t, exp)
	if n := len(sim.SignIns()); exp.Up() || n != signIns {
		t.Fatalf("before its turn: up %v, %d new sign-ins", exp.Up(), n-signIns)
	}
	clock.Advance(time.Second) // the turn, half the retry interval after the failure
	refresh(t, exp)
	if !exp.Up() {
		t.Fatal("not up at its turn to log in")
	}
	if v, ok := sample(t, exp, "peloton_up", nil); !ok || v != 1 {
		t.Errorf("peloton_up %v (%v), want 1", v, ok)
	}
}
