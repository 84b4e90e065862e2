// Package e2e_test proves the alerting pipeline end to end with the real programs: the exporter
// binary scraping a simulated Peloton, a real Prometheus evaluating the project's rules, and a
// real Alertmanager routing with the project's configuration to a webhook in the test.
//
// It needs Debian's prometheus and prometheus-alertmanager packages (or the upstream binaries)
// in PATH. Without them the test is skipped, unless the environment variable CI is set: then it
// fails, so that CI cannot pass silently.
package e2e_test

import (
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

const (
	rulesFile        = "../deploy/prometheus/peloton-rules.yml"
	alertmanagerFile = "../deploy/alertmanager/alertmanager.yml"
	dashboardFile    = "../grafana/peloton.json"

	job = "peloton" // the scrape job, as in deploy/prometheus/prometheus.yml

	// slack is added to every bounded wait for what the scaled timers predict: start-up, a
	// slow refresh, scheduling on a busy machine.
	slack = 30 * time.Second
)

// dataAlerts are the alerts about the member's data, which an outage or a restart of the
// exporter must never raise: the three streak alerts the issue is about, and the personal record
// alert, which uses the same health gate.
var dataAlerts = []string{
	"PelotonWeeklyStreakBroken",
	"PelotonWeeklyStreakAtRisk",
	"PelotonDailyStreakBroken",
	"PelotonNewPersonalRecord",
}

// stack is the running pipeline: simulator → exporter → Prometheus → Alertmanager → webhook.
type stack struct {
	root         *testing.T // the whole test, which owns the processes
	sim          *simulator.Simulator
	exporterBin  string
	exporterAddr string
	exporter     *process
	prometheus   *process
	alertmanager *process
	prom         promClient
	amBase       string
	hook         *webhook
	rules        scaledRules
	started      time.Time // before Prometheus started: every sample it has is younger
}

// TestAlertingEndToEnd is the proof of issue 4: a streak alert fires, and reaches the member,
// when and only when the streak really broke: not while the exporter is down, not when it
// restarts; and every dashboard query works against the same data.
func TestAlertingEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: runs Prometheus, Alertmanager and the exporter for about a minute (./scripts/test.sh runs it)")
	}
	s := startStack(t)

	steps := []struct {
		name string
		run  func(*stack, *testing.T)
	}{
		{"healthy_baseline", (*stack).healthyBaseline},
		{"exporter_down", (*stack).exporterDown},
		{"exporter_restarted", (*stack).exporterRestarted},
		{"streak_broken", (*stack).streakBroken},
		{"dashboard_queries", (*stack).dashboardQueries},
	}
	for _, step := range steps {
		if !t.Run(step.name, func(t *testing.T) { step.run(s, t) }) {
			t.Fatalf("step %s failed; later steps depend on it", step.name)
		}
	}
}

// startStack starts everything and waits until each part answers. Every process and directory
// is removed when the test ends, however it ends.
func startStack(t *testing.T) *stack {
	promBin := tool(t, "prometheus", "prometheus")
	promtool := tool(t, "prometheus", "promtool")
	amBin := tool(t, "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")

	s := &stack{root: t, hook: &webhook{}}
	var err error
	s.rules, err = scaleRules(testkit.ReadFile(t, rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	s.exporterBin = filepath.Join(t.TempDir(), "peloton_exporter")
	if err := testkit.BuildExporter("..", s.exporterBin); err != nil {
		t.Fatal(err)
	}

	// The simulated member's clock stands still: its streaks cannot change because a real
	// midnight or Monday passes during the test, only through SetWeeklyStreak. (The exporter and
	// Prometheus keep real time; the member's newest workout is 2 to 16 hours old either way.)
	// A workout in progress gives the dashboard's "Workout in progress" a series to show.
	s.sim, err = simulator.Start(simulator.Config{Now: simulator.NewClock(time.Now()).Now, InProgress: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.sim.Close) // after the exporter stops: cleanups run last-in first-out

	s.exporterAddr = testkit.FreeAddr(t)
	s.startExporter(t)

	hookSrv := httptest.NewServer(s.hook) // listens on 127.0.0.1
	t.Cleanup(hookSrv.Close)

	// Alertmanager with the project's configuration (see rewriteAlertmanager for the changes).
	amDir := t.TempDir()
	amConfig, err := rewriteAlertmanager(testkit.ReadFile(t, alertmanagerFile), hookSrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	amConfigFile := filepath.Join(amDir, "alertmanager.yml")
	writeFile(t, amConfigFile, amConfig)
	amAddr := testkit.FreeAddr(t)
	s.amBase = "http://" + amAddr
	s.alertmanager = startProcess(t, t, "alertmanager", amDir, nil, amBin,
		"--config.file="+amConfigFile,
		"--storage.path="+filepath.Join(amDir, "data"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=", // no clustering: no gossip port, no peers
		"--log.level=info",
	)

	// Prometheus with the scaled rules, scraping the exporter as job "peloton" every second.
	promDir := t.TempDir()
	writeFile(t, filepath.Join(promDir, "peloton-rules.yml"), s.rules.text)
	promConfigFile := filepath.Join(promDir, "prometheus.yml")
	interval := formatPromDuration(evalInterval)
	writeFile(t, promConfigFile, fmt.Sprintf(`# Written by the e2e test: the shape of deploy/prometheus/prometheus.yml, %d× faster.
global:
  scrape_interval: %[2]s
  scrape_timeout: %[2]s
  evaluation_interval: %[2]s
rule_files:
  - peloton-rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['%[3]s']
scrape_configs:
  - job_name: %[4]s
    scrape_interval: %[2]s
    scrape_timeout: %[2]s
    static_configs:
      - targets: ['%[5]s']
`, timeScale, interval, amAddr, job, s.exporterAddr))
	runTool(t, promtool, "check", "config", promConfigFile) // a clear error for a bad scaled rule

	promAddr := testkit.FreeAddr(t)
	s.prom = promClient{base: "http://" + promAddr}
	s.started = time.Now()
	s.prometheus = startProcess(t, t, "prometheus", promDir, nil, promBin,
		"--config.file="+promConfigFile,
		"--storage.tsdb.path="+filepath.Join(promDir, "data"),
		"--web.listen-address="+promAddr,
		// Scaled like the rest: series without a staleness marker count for 5s (5m by default).
		"--query.lookback-delta="+formatPromDuration(5*time.Minute/timeScale),
		"--log.level=info",
	)
	s.alertmanager.waitReady(t, s.amBase+"/-/ready")
	s.prometheus.waitReady(t, s.prom.base+"/-/ready")
	return s
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func runTool(t *testing.T, path string, args ...string) {
	t.Helper()
	p := startProcess(t, t, filepath.Base(path), t.TempDir(), nil, path, args...)
	select {
	case <-p.Exited():
	case <-time.After(time.Minute):
		t.Fatalf("%s %v: no answer within a minute", path, args)
	}
	if p.Err() != nil {
		t.Fatalf("%s %s: %v\n%s", path, strings.Join(args, " "), p.Err(), p.Out.String())
	}
}

// startExporter runs the exporter binary against the simulator, on s.exporterAddr, until the
// whole test ends (or a step stops it).
func (s *stack) startExporter(t *testing.T) {
	t.Helper()
	dir := s.root.TempDir()
	s.exporter = startProcess(t, s.root, "exporter", dir,
		append(testkit.SimulatorEnv(s.root, s.sim), "PELOTON_USERNAME="+simulator.DemoUsername, "PELOTON_PASSWORD="+simulator.DemoPassword),
		s.exporterBin,           // with its default URLs: the simulator's proxy and CA reach its hosts
		"--peloton.state-file=", // tokens and history in memory only
		"--peloton.cache-ttl=1s",
		"--peloton.detail-interval=5ms", // the simulator's 1,800 workouts in seconds, not half an hour
		"--web.listen-address="+s.exporterAddr,
	)
	s.exporter.waitReady(t, "http://"+s.exporterAddr+"/")
}

// ---------------------------------------------------------------------------------------------
// Polling and checks

// dump is what a failure shows: the state of every part of the pipeline.
func (s *stack) dump() string {
	var b strings.Builder
	if alerts, err := s.prom.alerts(); err != nil {
		fmt.Fprintf(&b, "\nPrometheus alerts: %v\n", err)
	} else {
		fmt.Fprintf(&b, "\nPrometheus alerts (%d):\n", len(alerts))
		for _, a := range alerts {
			fmt.Fprintf(&b, "  %s\n", a)
		}
	}
	for _, q := range []string{"up", "peloton_up", "peloton_source_up", "peloton:healthy", "peloton_weekly_streak", "peloton_daily_streak", "peloton:weekly_streak:healthy"} {
		res, err := s.prom.query(q)
		fmt.Fprintf(&b, "%s:", q)
		for _, r := range res {
			fmt.Fprintf(&b, " %v=%g", r.Metric, r.value())
		}
		if err != nil {
			fmt.Fprintf(&b, " %v", err)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "Alertmanager alerts: %.3000s\n", rawGet(s.amBase+"/api/v2/alerts"))
	fmt.Fprintf(&b, "webhook notifications:\n%s", s.hook)
	for _, p := range []*process{s.exporter, s.prometheus, s.alertmanager} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s output (running: %v):\n%s\n", p.name, p.Running(), tail(p.Out.String(), outputTail))
		}
	}
	return b.String()
}

// waitUntil polls cond until it is true, failing the test with a dump after timeout. cond may
// fail the test itself, for an invariant that must hold on every poll.
func (s *stack) waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s%s", timeout, what, s.dump())
		}
		time.Sleep(pollEvery)
	}
}

// noDataAlerts fails the test when Prometheus has any data alert pending or firing, or when
// any data alert notification reached the webhook.
func (s *stack) noDataAlerts(t *testing.T, during string) {
	t.Helper()
	alerts, err := s.prom.alerts()
	if err != nil {
		t.Fatalf("%s: %v", during, err)
	}
	for _, a := range alerts {
		if slices.Contains(dataAlerts, a.Labels["alertname"]) {
			t.Fatalf("%s: false alarm: %s%s", during, a, s.dump())
		}
	}
	for _, n := range s.hook.notifications() {
		for _, a := range n.Alerts {
			if slices.Contains(dataAlerts, a.Labels["alertname"]) {
				t.Fatalf("%s: false alarm notified to %s: %s %s%s", during, n.Path, a.Labels["alertname"], a.Status, s.dump())
			}
		}
	}
}

// alertState is the state of the named alert in Prometheus ("pending", "firing" or "").
func (s *stack) alertState(t *testing.T, name string) string {
	t.Helper()
	alerts, err := s.prom.alerts()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if a.Labels["alertname"] == name {
			return a.State
		}
	}
	return ""
}

// notified returns the alert of the first webhook call to path for alertname in status.
func (s *stack) notified(path, alertname, status string) (notification, int, bool) {
	for _, n := range s.hook.notifications() {
		if n.Path != path {
			continue
		}
		for i, a := range n.Alerts {
			if a.Labels["alertname"] == alertname && a.Status == status {
				return n, i, true
			}
		}
	}
	return notification{}, 0, false
}

// present tells whether a query returns anything.
func (s *stack) present(t *testing.T, expr string) bool {
	t.Helper()
	return len(s.prom.mustQuery(t, expr)) > 0
}

// value is the single value of a query, failing the test unless there is exactly one.
func (s *stack) value(t *testing.T, expr string) float64 {
	t.Helper()
	res := s.prom.mustQuery(t, expr)
	if len(res) != 1 {
		t.Fatalf("%s: %d results, want 1%s", expr, len(res), s.dump())
	}
	return res[0].value()
}

// dataAlertsFor is the longest `for:` of the data alerts: a condition that lasts longer than it
// has had time to make an alert fire.
func (s *stack) dataAlertsFor(t *testing.T) time.Duration {
	t.Helper()
	var longest time.Duration
	for _, a := range dataAlerts {
		d, ok := s.rules.forOf[a]
		if !ok {
			t.Fatalf("alert %s is not in %s", a, rulesFile)
		}
		longest = max(longest, d)
	}
	return longest
}

var (
	exporterSelector = `{job="` + job + `"}`
	healthyExpr      = `peloton:healthy` + exporterSelector
)

// ---------------------------------------------------------------------------------------------
// The scenario

// healthyBaseline: the exporter is scraped, its data is healthy, and no data alert is raised.
func (s *stack) healthyBaseline(t *testing.T) {
	s.waitUntil(t, "healthy data from the exporter", slack, func() bool {
		s.noDataAlerts(t, "start-up")
		return s.present(t, `peloton_up`+exporterSelector+` == 1`) && s.present(t, healthyExpr) &&
			s.present(t, `peloton:weekly_streak:healthy`+exporterSelector)
	})
	weekly := s.value(t, `peloton:weekly_streak:healthy`+exporterSelector)
	if want := s.sim.Overview().Streaks.CurrentWeekly; weekly != float64(want) || want <= 0 {
		t.Fatalf("weekly streak in Prometheus %g, simulator %d: want the same, above 0 (a streak to break)", weekly, want)
	}
	// Healthy for a few evaluations, so that the lookback windows hold healthy values.
	since := time.Now()
	s.waitUntil(t, "a healthy baseline", slack, func() bool {
		s.noDataAlerts(t, "healthy baseline")
		return time.Since(since) >= 3*evalInterval
	})
	t.Logf("healthy after %v; weekly streak %g", time.Since(s.started).Round(time.Millisecond), weekly)
}

// exporterDown: with the exporter stopped, PelotonExporterDown fires and is notified, and no
// data alert is pending or firing at any point of an outage longer than any data alert's for.
func (s *stack) exporterDown(t *testing.T) {
	downAt := time.Now()
	if err := s.exporter.Stop(); err != nil {
		t.Errorf("the exporter's exit after SIGTERM: %v\n%s", err, tail(s.exporter.Out.String(), outputTail))
	}
	downFor := s.rules.forOf["PelotonExporterDown"]
	minOutage := max(s.dataAlertsFor(t), downFor) + 2*evalInterval
	var firingAt time.Time
	s.waitUntil(t, "PelotonExporterDown firing and notified, through a long outage", minOutage+slack, func() bool {
		s.noDataAlerts(t, "exporter down")
		if firingAt.IsZero() && s.alertState(t, "PelotonExporterDown") == "firing" {
			firingAt = time.Now()
		}
		_, _, notified := s.notified("/peloton-exporter", "PelotonExporterDown", "firing")
		return !firingAt.IsZero() && notified && time.Since(downAt) >= minOutage
	})
	if firedAfter := firingAt.Sub(downAt); firedAfter < downFor {
		t.Errorf("PelotonExporterDown fired %v after the exporter stopped, before its for: %v", firedAfter, downFor)
	}
	if !s.present(t, `up`+exporterSelector+` == 0`) {
		t.Errorf("up is not 0 while the exporter is down%s", s.dump())
	}
	t.Logf("PelotonExporterDown fired %v after the stop; outage of %v without a data alert",
		firingAt.Sub(downAt).Round(time.Millisecond), time.Since(downAt).Round(time.Millisecond))
}

// exporterRestarted: the same account after a restart is healthy again without any data alert,
// for longer than any data alert's for; PelotonExporterDown resolves.
func (s *stack) exporterRestarted(t *testing.T) {
	before := s.sim.Overview().Streaks.CurrentWeekly
	restartAt := time.Now()
	s.startExporter(t)
	s.waitUntil(t, "healthy data after the restart", slack, func() bool {
		s.noDataAlerts(t, "restart")
		return s.present(t, `up`+exporterSelector+` == 1`) && s.present(t, healthyExpr)
	})
	healthyAt := time.Now()
	observe := s.dataAlertsFor(t) + 2*evalInterval
	s.waitUntil(t, "a healthy period after the restart, and PelotonExporterDown resolved", observe+slack, func() bool {
		s.noDataAlerts(t, "after the restart")
		_, _, resolved := s.notified("/peloton-exporter", "PelotonExporterDown", "resolved")
		return time.Since(healthyAt) >= observe && resolved
	})
	if got := s.value(t, `peloton:weekly_streak:healthy`+exporterSelector); got != float64(before) {
		t.Fatalf("weekly streak after the restart %g, want the unchanged %d", got, before)
	}
	// Polls can miss a state that lasts less than one; Prometheus's ALERTS series cannot: it has a
	// sample for every evaluation in which an alert was pending or firing.
	window := time.Duration(math.Ceil(time.Since(s.started).Seconds())+5) * time.Second
	q := fmt.Sprintf(`count_over_time(ALERTS{alertname=~%q}[%s])`, strings.Join(dataAlerts, "|"), formatPromDuration(window))
	if res := s.prom.mustQuery(t, q); len(res) > 0 {
		t.Fatalf("a data alert was pending or firing at some point since Prometheus started: %s = %v%s", q, res, s.dump())
	}
	t.Logf("healthy %v after the restart; %v without a data alert", healthyAt.Sub(restartAt).Round(time.Millisecond),
		time.Since(healthyAt).Round(time.Millisecond))
}

// streakBroken: the weekly streak really ends, and PelotonWeeklyStreakBroken reaches the member's
// receiver, complete, no sooner than its for: allows.
func (s *stack) streakBroken(t *testing.T) {
	s.noDataAlerts(t, "before the break")
	streak := s.sim.Overview().Streaks.CurrentWeekly
	brokeAt := time.Now()
	s.sim.SetWeeklyStreak(0)
	weeklyFor := s.rules.forOf["PelotonWeeklyStreakBroken"]
	var (
		n     notification
		i     int
		found bool
	)
	s.waitUntil(t, "the PelotonWeeklyStreakBroken notification", weeklyFor+slack, func() bool {
		n, i, found = s.notified("/peloton", "PelotonWeeklyStreakBroken", "firing")
		return found
	})
	after := time.Since(brokeAt)
	if after < weeklyFor {
		t.Errorf("notified %v after the break, before the alert's for: %v", after, weeklyFor)
	}
	if n.Receiver != "peloton" {
		t.Errorf("notified through receiver %q, want the member's, peloton", n.Receiver)
	}
	a := n.Alerts[i]
	if a.Labels["severity"] == "" {
		t.Errorf("the notification has no severity label: %v", a.Labels)
	}
	for _, k := range []string{"summary", "description"} {
		if v := a.Annotations[k]; strings.TrimSpace(v) == "" || strings.Contains(v, "<no value>") || strings.Contains(v, "%!") {
			t.Errorf("annotation %s = %q: want a complete text", k, v)
		}
	}
	// The description's $value is the streak that ended; its query finds the current one.
	desc := a.Annotations["description"]
	if !regexp.MustCompile(`\b`+strconv.Itoa(streak)+`\b`).MatchString(desc) || !strings.Contains(desc, s.exporterAddr) {
		t.Errorf("description %q: want the ended streak (%d) and the instance (%s)", desc, streak, s.exporterAddr)
	}
	for _, other := range dataAlerts[1:] {
		if st := s.alertState(t, other); st != "" {
			t.Errorf("%s is %s: only the weekly streak changed%s", other, st, s.dump())
		}
	}
	t.Logf("weekly streak %d → 0 notified after %v: %s", streak, after.Round(time.Millisecond), desc)
}

// dashboardQueries: every dashboard query runs and returns data, once every workout's detail
// is fetched (the training panels need it).
func (s *stack) dashboardQueries(t *testing.T) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, err := s.prom.query("peloton_workout_detail_pending")
		if err == nil && len(res) == 1 && res[0].value() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workout detail still pending after 2 minutes (%v, %v)%s", res, err, s.dump())
		}
		time.Sleep(pollEvery)
	}
	checkDashboard(t, s.prom, s.exporterAddr)
}
