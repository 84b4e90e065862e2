package e2e_test

// A household end to end: the exporter binary serving two simulated riders from a config file,
// a real Prometheus scraping them through /probe with the shipped scrape config
// (deploy/prometheus/prometheus-household.yml, sped up like the rest) and evaluating the
// shipped rules per rider.

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

const (
	householdPrometheusFile = "../deploy/prometheus/prometheus-household.yml"
	shippedExporterAddress  = "peloton-exporter:10070"
)

// rewriteHouseholdPrometheus makes the shipped household configuration run here: its
// durations scaled like the rules', the exporter's address replaced by the test's, and the
// parts that need the compose network (Alertmanager, Prometheus's own job) left out. The probe
// job, its targets and its relabelling stay as shipped. Every rewrite must happen.
func rewriteHouseholdPrometheus(src, exporterAddr string) (string, error) {
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		return "", err
	}
	var problems []string
	scale := func(m map[string]any, key string) {
		if v, ok := m[key].(string); ok {
			s, _, err := scaleDuration(v)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", key, err))
			}
			m[key] = s
		}
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		problems = append(problems, "no global section")
	}
	for _, k := range []string{"scrape_interval", "scrape_timeout", "evaluation_interval"} {
		if _, ok := global[k]; !ok {
			problems = append(problems, "global has no "+k)
		}
		scale(global, k)
	}
	delete(cfg, "alerting") // the alerting pipeline is TestAlertingEndToEnd's
	replaced := 0
	var jobs []any
	scrapes, _ := cfg["scrape_configs"].([]any)
	for _, j := range scrapes {
		job, _ := j.(map[string]any)
		if job["job_name"] == "prometheus" {
			continue // its own address is the test's
		}
		scale(job, "scrape_timeout")
		scale(job, "scrape_interval")
		statics, _ := job["static_configs"].([]any)
		for _, s := range statics {
			targets, _ := s.(map[string]any)["targets"].([]any)
			for i, target := range targets {
				if target == shippedExporterAddress {
					targets[i] = exporterAddr
					replaced++
				}
			}
		}
		relabels, _ := job["relabel_configs"].([]any)
		for _, r := range relabels {
			if rule, _ := r.(map[string]any); rule["replacement"] == shippedExporterAddress {
				rule["replacement"] = exporterAddr
				replaced++
			}
		}
		jobs = append(jobs, job)
	}
	cfg["scrape_configs"] = jobs
	if replaced != 2 {
		problems = append(problems, fmt.Sprintf("%d uses of %s replaced, want 2 (the probe relabelling and the exporter's own job)", replaced, shippedExporterAddress))
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("%s changed shape; update rewriteHouseholdPrometheus: %s", householdPrometheusFile, strings.Join(problems, "; "))
	}
	out, err := yaml.Marshal(cfg)
	return "# Written by the e2e test from " + householdPrometheusFile + ", sped up.\n" + string(out), err
}

// TestHouseholdEndToEnd: Prometheus scrapes the household's two riders through /probe with the
// shipped relabelling, each rider is an instance of its own, the rules judge each rider apart
// (one rider's broken streak alerts for that rider only), and the dashboard works per rider.
func TestHouseholdEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: runs Prometheus and the exporter for about a minute (./scripts/test.sh runs it)")
	}
	promBin := tool(t, "prometheus", "prometheus")
	promtool := tool(t, "prometheus", "promtool")
	rules, err := scaleRules(testkit.ReadFile(t, rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "peloton_exporter")
	if err := testkit.BuildExporter("..", bin); err != nil {
		t.Fatal(err)
	}

	// alex is the simulator's own member (a workout in progress, a heart-rate strap: every
	// dashboard panel has data); sam rides too, in Berlin, without a strap. The members' clock
	// stands still, as in TestAlertingEndToEnd.
	sam := simulator.DemoMember(1)
	sim, err := simulator.Start(simulator.Config{Now: simulator.NewClock(time.Now()).Now, Workouts: 300, InProgress: true,
		Household: []simulator.Member{sam}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)

	// The accounts' names are the shipped config's targets: the scrape config stays as it is.
	dir := t.TempDir()
	secret := func(name, value string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, value)
		return p
	}
	writeFile(t, filepath.Join(dir, "household.yml"), "accounts:\n"+
		"  - name: alex\n    username: "+simulator.DemoUsername+"\n    password_file: "+secret("alex_pw", simulator.DemoPassword)+"\n"+
		"  - name: sam\n    username: "+sam.Username+"\n    password_file: "+secret("sam_pw", sam.Password)+"\n    timezone: Europe/Berlin\n")
	exporterAddr := testkit.FreeAddr(t)
	exporter := startProcess(t, t, "exporter", dir, testkit.SimulatorEnv(t, sim), bin,
		"--config.file="+filepath.Join(dir, "household.yml"),
		"--peloton.state-dir="+t.TempDir(),
		"--peloton.cache-ttl=1s",
		"--peloton.login-spacing=2s",
		"--peloton.detail-interval=2ms",
		"--web.listen-address="+exporterAddr)
	exporter.waitReady(t, "http://"+exporterAddr+"/")

	promDir := t.TempDir()
	promConfig, err := rewriteHouseholdPrometheus(testkit.ReadFile(t, householdPrometheusFile), exporterAddr)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(promDir, "peloton-rules.yml"), rules.text)
	writeFile(t, filepath.Join(promDir, "prometheus.yml"), promConfig)
	runTool(t, promtool, "check", "config", filepath.Join(promDir, "prometheus.yml"))
	promAddr := testkit.FreeAddr(t)
	prom := promClient{base: "http://" + promAddr}
	started := time.Now()
	prometheus := startProcess(t, t, "prometheus", promDir, nil, promBin,
		"--config.file="+filepath.Join(promDir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(promDir, "data"),
		"--web.listen-address="+promAddr,
		"--query.lookback-delta="+formatPromDuration(5*time.Minute/timeScale),
		"--log.level=info")
	prometheus.waitReady(t, prom.base+"/-/ready")
	s := &stack{root: t, sim: sim, exporter: exporter, prometheus: prometheus, prom: prom, rules: rules, started: started, hook: &webhook{}}

	instances := func(expr string) []string {
		var out []string
		for _, r := range prom.mustQuery(t, expr) {
			out = append(out, r.Metric["instance"])
		}
		sort.Strings(out)
		return out
	}
	riders := []string{"alex", "sam"}
	s.waitUntil(t, "both riders healthy, each an instance of the probe job", 20*time.Second+slack, func() bool {
		return slices.Equal(instances(`peloton:healthy{job="`+job+`"}`), riders) &&
			slices.Equal(instances(`peloton:weekly_streak:healthy{job="`+job+`"}`), riders)
	})
	// The exporter's own job is scraped on its own schedule: under load its first scrape may
	// come after the riders'.
	s.waitUntil(t, "the exporter's own job scraped, at "+exporterAddr, 20*time.Second+slack, func() bool {
		return slices.Equal(instances(`up{job="peloton-exporter"} == 1`), []string{exporterAddr})
	})
	if got := slices.Compact(instances(`peloton_account_up == 1`)); len(got) != 1 || got[0] != exporterAddr {
		t.Errorf("peloton_account_up comes from the exporter's own job, at %s: instances %v", exporterAddr, got)
	}
	if n := len(prom.mustQuery(t, `peloton_account_up{account=~"alex|sam"} == 1`)); n != 2 {
		t.Errorf("peloton_account_up: %d accounts up, want 2", n)
	}
	// Each rider's data is its own: the simulated members differ (300 and 420 workouts).
	if a, b := s.value(t, `sum(peloton_workouts{instance="alex"})`), s.value(t, `sum(peloton_workouts{instance="sam"})`); a == b {
		t.Errorf("both riders have %g workouts", a)
	}

	// The Household row: one bar per rider.
	targets, _ := readDashboard(t)
	vars := grafanaVariables("alex|sam")
	vars["instance"] = "alex|sam" // All, as Grafana sends it for the two instances
	household := 0
	for _, tg := range targets {
		if !strings.Contains(tg.where, `"Household: `) {
			continue
		}
		household++
		expr, err := substitute(tg.expr, vars)
		if err != nil {
			t.Fatal(err)
		}
		if got := instances(expr); !slices.Equal(got, riders) {
			t.Errorf("%s: instances %v, want one per rider %v\n\t%s", tg.where, got, riders, expr)
		}
	}
	if household != 3 {
		t.Errorf("%d Household panels found, want 3", household)
	}

	// alex's weekly streak breaks: the alert fires for alex, and nothing for sam.
	since := time.Now()
	s.waitUntil(t, "a healthy baseline of both riders", slack, func() bool {
		s.noDataAlerts(t, "healthy baseline")
		return time.Since(since) >= 3*evalInterval
	})
	sim.SetWeeklyStreak(0) // the first member's: alex's
	var fired promAlert
	s.waitUntil(t, "PelotonWeeklyStreakBroken firing for alex", rules.forOf["PelotonWeeklyStreakBroken"]+slack, func() bool {
		alerts, err := prom.alerts()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range alerts {
			if slices.Contains(dataAlerts, a.Labels["alertname"]) && a.Labels["instance"] != "alex" {
				t.Fatalf("a data alert for %s, whose data did not change: %s%s", a.Labels["instance"], a, s.dump())
			}
			if a.Labels["alertname"] == "PelotonWeeklyStreakBroken" && a.State == "firing" {
				fired = a
				return true
			}
		}
		return false
	})
	if fired.Labels["job"] != job || !strings.Contains(fired.Annotations["description"], "alex") {
		t.Errorf("the alert does not name the rider: %v %v", fired.Labels, fired.Annotations)
	}
	window := formatPromDuration(time.Duration(time.Since(started).Seconds()+5) * time.Second)
	q := fmt.Sprintf(`count_over_time(ALERTS{instance="sam",alertname=~%q}[%s])`, strings.Join(dataAlerts, "|"), window)
	if res := prom.mustQuery(t, q); len(res) > 0 {
		t.Errorf("data alerts for sam, whose data did not change: %v", res)
	}
	for _, a := range []string{"PelotonExporterDown", "PelotonRefreshFailing", "PelotonDataStale"} {
		if st := s.alertState(t, a); st != "" {
			t.Errorf("%s is %s in a healthy household%s", a, st, s.dump())
		}
	}

	// The whole dashboard works for one rider, unchanged, once the detail is in.
	s.waitUntil(t, "alex's workout detail fetched", 2*time.Minute, func() bool {
		res, err := prom.query(`peloton_workout_detail_pending{instance="alex"}`)
		return err == nil && len(res) == 1 && res[0].value() == 0
	})
	checkDashboard(t, prom, "alex")
	t.Logf("the household's riders healthy, alex's broken streak alerted after %v", time.Since(started).Round(time.Second))
}

// The rewrite of the shipped household configuration fails loudly when the file changes shape,
// rather than running Prometheus on an unscaled or unredirected configuration.
func TestRewriteHouseholdPrometheusFailsLoudly(t *testing.T) {
	shipped := testkit.ReadFile(t, householdPrometheusFile)
	out, err := rewriteHouseholdPrometheus(shipped, "127.0.0.1:1")
	if err != nil || strings.Contains(out, shippedExporterAddress) || strings.Contains(out, "alertmanager") || !strings.Contains(out, "127.0.0.1:1") {
		t.Fatalf("the shipped file: %v\n%s", err, out)
	}
	for name, src := range map[string]string{
		"exporter renamed": strings.ReplaceAll(shipped, shippedExporterAddress, "exporter:10070"),
		"no global":        strings.Replace(shipped, "global:", "globals:", 1),
		"bad duration":     strings.Replace(shipped, "scrape_timeout: 50s", "scrape_timeout: soon", 1),
	} {
		if _, err := rewriteHouseholdPrometheus(src, "127.0.0.1:1"); err == nil {
			t.Errorf("%s: rewritten without complaint", name)
		}
	}
}
