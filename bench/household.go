package main

// The household (issue 12): twenty accounts of 2,000 workouts each in one exporter, run from a
// config file against a simulated household that the bench hosts itself (so that the
// exporter's memory is its own, without the simulator's), reached through the simulator's
// CONNECT proxy and CA as a real deployment reaches Peloton. The detail filler is on, as it is
// by default, at a 1ms shared pace (the default's 1s would take eleven hours for 40,000
// graphs), and the fill is waited for before the rest, so that the memory figures include every
// workout's detail. --household-no-detail turns it off (--no-peloton.workout-detail), for a
// quicker run: the fill is a minute or more of simulator CPU on the machine being measured.

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/peloton-exporter/peloton_exporter/simulator"
)

const (
	householdAccounts = 20
	householdWorkouts = 2000
	// householdSpacing is the bench's --peloton.login-spacing, so that a cold start of twenty
	// password logins takes under a minute; the default of 1m would take twenty.
	householdSpacing   = 2 * time.Second
	householdStormTTL  = 2 * time.Second
	householdStormConc = 100
	rssBase            = 20 << 20 // the targets: RSS under rssBase + rssPerAccount × accounts
	rssPerAccount      = 3 << 20
	maxProbeSlowdown   = 2.0 // a warm probe within 2× of a warm single-account scrape
)

type householdLevel struct {
	Concurrency    int       `json:"concurrency"`
	Probe          loadStats `json:"probe"`           // /probe?target=…, round robin over the accounts
	Single         loadStats `json:"single"`          // a single-account exporter's /metrics
	ThroughputLoss float64   `json:"throughput_loss"` // single / probe scrapes per second
	P99Ratio       float64   `json:"p99_ratio"`       // probe / single
}

type householdResult struct {
	Accounts      int           `json:"accounts"`
	Workouts      int           `json:"workouts_each"`
	Spacing       time.Duration `json:"login_spacing_ns"`
	ColdStart     time.Duration `json:"cold_start_ns"` // until every account was up
	Logins        int           `json:"cold_start_logins"`
	MinLoginGap   time.Duration `json:"cold_start_min_login_gap_ns"`
	RestartUp     time.Duration `json:"restart_ns"` // the same state directory, saved tokens
	Detail        bool          `json:"detail"`     // the detail filler ran (unless --household-no-detail)
	DetailFill    time.Duration `json:"detail_fill_ns"`
	RestartLogins int           `json:"restart_logins"`
	Levels        []householdLevel
	LoadRequests  int             `json:"warm_load_upstream_requests"` // must be 0: a warm cache
	Storm         loadStats       `json:"storm"`
	StormChecks   []upstreamCheck `json:"storm_checks"`
	RSS           struct {
		AfterColdStart int64 `json:"after_cold_start_bytes"`
		AfterFill      int64 `json:"after_detail_fill_bytes"`
		AfterLoad      int64 `json:"after_warm_load_bytes"`
		StormMax       int64 `json:"storm_max_bytes"`
		Single         int64 `json:"single_account_after_load_bytes"`
	} `json:"rss"`
}

func householdTarget() int64 { return rssBase + rssPerAccount*householdAccounts }

func accountName(i int) string { return fmt.Sprintf("r%02d", i+1) }

// householdExporter starts the exporter in household mode and waits until every account is up.
func householdExporter(ctx context.Context, dir, bin, name string, env []string, extra ...string) (*exporter, time.Duration, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, 0, err
	}
	args := append([]string{"--config.file=" + filepath.Join(dir, "household.yml"), "--peloton.state-dir=" + filepath.Join(dir, "state"),
		"--peloton.login-spacing=" + householdSpacing.String(),
		"--web.listen-address=" + addr, "--log.level=warn"}, extra...)
	start := time.Now()
	ch, err := startChild("exporter "+name, bin, args, filepath.Join(dir, "exporter-"+name+".log"), nil, env...)
	if err != nil {
		return nil, 0, err
	}
	e := &exporter{child: ch, url: "http://" + addr + "/metrics"}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		up, err := accountsUp(ctx, e.url)
		if err == nil && up == householdAccounts {
			break
		}
		if ch.exited() {
			return nil, 0, fmt.Errorf("%s exited (%w):\n%s", ch.name, ch.waitErr, ch.logTail(20))
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("%d of %d accounts up", up, householdAccounts)
			}
			return nil, 0, fmt.Errorf("%s not up after 5 minutes: %w\n%s", ch.name, err, ch.logTail(20))
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	took := time.Since(start)
	logf("exporter %s up on %s (pid %d): %d accounts up after %s", name, addr, ch.pid(), householdAccounts, took.Round(100*time.Millisecond))
	return e, took, nil
}

// accountsUp counts the accounts whose peloton_account_up is 1 on the exporter's /metrics.
func accountsUp(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: status %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, err
	}
	n := 0
	if mf := mfs["peloton_account_up"]; mf != nil {
		for _, m := range mf.GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				n++
			}
		}
	}
	return n, nil
}

// measureHousehold runs the household phase.
func measureHousehold(ctx context.Context, cfg config, tmp, bin string) (householdResult, error) {
	r := householdResult{Accounts: householdAccounts, Workouts: householdWorkouts, Spacing: householdSpacing}
	var members []simulator.Member
	for i := range householdAccounts {
		m := simulator.DemoMember(i)
		m.Workouts = householdWorkouts - m.Imports
		members = append(members, m)
	}
	logf("household: simulating %d members of %d workouts each", householdAccounts, householdWorkouts)
	p := members[0]
	sim, err := simulator.Start(simulator.Config{Username: p.Username, Password: p.Password, Workouts: p.Workouts, Household: members[1:]})
	if err != nil {
		return r, err
	}
	defer sim.Close()
	dir := filepath.Join(tmp, "household")
	for _, d := range []string{"secrets", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return r, err
		}
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM(), 0o644); err != nil {
		return r, err
	}
	env := []string{"HTTPS_PROXY=" + sim.ProxyURL(), "SSL_CERT_FILE=" + ca}
	var file strings.Builder
	file.WriteString("accounts:\n")
	for i, m := range members {
		pw := filepath.Join(dir, "secrets", accountName(i))
		if err := os.WriteFile(pw, []byte(m.Password), 0o600); err != nil {
			return r, err
		}
		fmt.Fprintf(&file, "  - name: %s\n    username: %s\n    password_file: %s\n", accountName(i), m.Username, pw)
	}
	if err := os.WriteFile(filepath.Join(dir, "household.yml"), []byte(file.String()), 0o600); err != nil {
		return r, err
	}

	r.Detail = !cfg.householdNoDetail
	detail := []string{"--peloton.detail-interval=1ms"}
	if !r.Detail {
		detail = []string{"--no-peloton.workout-detail"}
	}

	// --- Cold start: no saved tokens, every account logs in, at its turn. ---
	hh, took, err := householdExporter(ctx, dir, bin, "H", env, detail...)
	if err != nil {
		return r, err
	}
	r.ColdStart = took
	var gaps []time.Duration
	ins := sim.SignIns()
	for i, in := range ins {
		if in.Accepted {
			r.Logins++
		}
		if i > 0 {
			gaps = append(gaps, in.At.Sub(ins[i-1].At))
		}
	}
	if len(gaps) > 0 {
		r.MinLoginGap = slices.Min(gaps)
	}
	r.RSS.AfterColdStart = rssOf(hh.child)
	probes := probeURLs(hh)
	if r.Detail {
		logf("household: waiting for the detail of %d workouts", householdAccounts*householdWorkouts)
		if r.DetailFill, err = waitFilled(ctx, probes); err != nil {
			return r, fmt.Errorf("household: %w", err)
		}
		r.RSS.AfterFill = rssOf(hh.child)
		logf("household: detail filled in %s", r.DetailFill.Round(time.Second))
	}

	// --- A single-account exporter of the first member, beside, for the comparison: the same
	// flags, and so the same series, as its probe. ---
	single, _, err := startSingle(ctx, dir, bin, env, members[0], detail...)
	if err != nil {
		return r, err
	}
	if r.Detail {
		if _, err := waitFilled(ctx, []string{single.url}); err != nil {
			return r, fmt.Errorf("single account: %w", err)
		}
	}
	before, err := readAll(ctx, probes)
	if err != nil {
		return r, err
	}
	for _, conc := range cfg.levels {
		lv := householdLevel{Concurrency: conc}
		for _, side := range []struct {
			name string
			url  string
			urls []string
			pid  int
			out  *loadStats
		}{{"single", single.url, nil, single.pid(), &lv.Single}, {"probe", "", probes, hh.pid(), &lv.Probe}} {
			w := warmupScrapes(conc, cfg.scrapes)
			if _, err := drive(ctx, side.url, driveOpts{conc: conc, scrapes: w, urls: side.urls}, 0); err != nil {
				return r, fmt.Errorf("%s warm-up at concurrency %d: %w", side.name, conc, err)
			}
			st, err := drive(ctx, side.url, driveOpts{conc: conc, scrapes: cfg.scrapes, urls: side.urls}, side.pid)
			if err != nil {
				return r, fmt.Errorf("%s at concurrency %d: %w", side.name, conc, err)
			}
			*side.out = st
			logf("%-8s c=%-3d %8.0f scrapes/s  p50 %s  p99 %s  errors %d", side.name, conc, st.PerSec, ms(st.P50), ms(st.P99), st.Errors)
		}
		r.Levels = append(r.Levels, lv)
	}
	after, err := readAll(ctx, probes)
	if err != nil {
		return r, err
	}
	for i := range probes {
		for ep, v := range after[i].requests {
			r.LoadRequests += int(math.Round(v - before[i].requests[ep]))
		}
	}
	r.RSS.AfterLoad = rssOf(hh.child)
	r.RSS.Single = rssOf(single.child)
	single.stop()
	hh.stop()

	// --- Restart with the saved tokens, a short TTL, and a scrape storm over every account. ---
	logins := len(sim.SignIns())
	hh, took, err = householdExporter(ctx, dir, bin, "H2", env, append(detail, "--peloton.cache-ttl="+householdStormTTL.String())...)
	if err != nil {
		return r, err
	}
	defer hh.stop()
	r.RestartUp, r.RestartLogins = took, len(sim.SignIns())-logins
	probes = probeURLs(hh)
	if before, err = readAll(ctx, probes); err != nil {
		return r, err
	}
	logf("household: %s of scraping every account at concurrency %d, TTL %s", cfg.ttlPhase, householdStormConc, householdStormTTL)
	st, samples, err := driveSampling(ctx, hh, driveOpts{conc: householdStormConc, dur: cfg.ttlPhase, urls: probes}, max(cfg.ttlPhase/5, time.Second))
	if err != nil {
		return r, err
	}
	r.Storm = st
	for _, s := range samples {
		r.RSS.StormMax = max(r.RSS.StormMax, s.RSS)
	}
	if after, err = readAll(ctx, probes); err != nil {
		return r, err
	}
	for i := range probes {
		r.StormChecks = append(r.StormChecks, checkUpstream(accountName(i), householdStormTTL, before[i], after[i], 0, true))
	}
	r.RSS.StormMax = max(r.RSS.StormMax, rssOf(hh.child))
	return r, nil
}

// probeURLs are the probes of every account of e.
func probeURLs(e *exporter) []string {
	out := make([]string, householdAccounts)
	for i := range out {
		out[i] = strings.TrimSuffix(e.url, "/metrics") + "/probe?target=" + accountName(i)
	}
	return out
}

// waitFilled waits until the exporters at urls have no workout detail pending, and says how
// long that took.
func waitFilled(ctx context.Context, urls []string) (time.Duration, error) {
	start := time.Now()
	for pending := math.Inf(1); pending > 0; {
		if time.Since(start) > 15*time.Minute {
			return 0, fmt.Errorf("%v details still pending after 15 minutes", pending)
		}
		time.Sleep(time.Second)
		states, err := readAll(ctx, urls)
		if err != nil {
			return 0, err
		}
		pending = 0
		for _, st := range states {
			pending += st.pending
		}
	}
	return time.Since(start), nil
}

// readAll reads the state behind each of urls: an account's probe, or an exporter's /metrics.
func readAll(ctx context.Context, urls []string) ([]exporterState, error) {
	var out []exporterState
	for _, u := range urls {
		st, err := readExporter(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// startSingle starts a single-account exporter for member m, with the household's flags extra.
func startSingle(ctx context.Context, dir, bin string, env []string, m simulator.Member, extra ...string) (*exporter, exporterState, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, exporterState{}, err
	}
	args := append([]string{"--peloton.state-file=" + filepath.Join(dir, "single.json"),
		"--web.listen-address=" + addr, "--log.level=warn"}, extra...)
	ch, err := startChild("exporter S", bin, args, filepath.Join(dir, "exporter-S.log"), nil,
		append(env, "PELOTON_USERNAME="+m.Username, "PELOTON_PASSWORD="+m.Password)...)
	if err != nil {
		return nil, exporterState{}, err
	}
	e := &exporter{child: ch, url: "http://" + addr + "/metrics"}
	st, err := waitUp(ctx, e.url, ch, 60*time.Second)
	if err != nil {
		return nil, exporterState{}, err
	}
	logf("exporter S (one account) up on %s (pid %d)", addr, ch.pid())
	return e, st, nil
}
