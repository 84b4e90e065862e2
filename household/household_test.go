package household_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/collector"
	"github.com/peloton-exporter/peloton_exporter/household"
	"github.com/peloton-exporter/peloton_exporter/internal/syncbuf"
	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// env is a simulated household (the demo's first three members) and a config directory.
type env struct {
	t       *testing.T
	sim     *simulator.Simulator
	dir     string // config file and secret files
	state   string // --peloton.state-dir
	logs    *syncbuf.Buffer
	members []simulator.Member
}

func newEnv(t *testing.T, opts ...func(*simulator.Config)) *env {
	t.Helper()
	members := []simulator.Member{simulator.DemoMember(0), simulator.DemoMember(1), simulator.DemoMember(2)}
	members[1].Workouts, members[2].Workouts = 60, 80
	cfg := simulator.Config{Workouts: 100, Household: members[1:]}
	for _, f := range opts {
		f(&cfg)
	}
	sim, err := simulator.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return &env{t: t, sim: sim, dir: t.TempDir(), state: t.TempDir(), logs: &syncbuf.Buffer{}, members: members}
}

// secret writes a secret file and returns its path.
func (e *env) secret(name, value string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// passwordAccount is a config entry logging in as member i with password.
func (e *env) passwordAccount(name string, i int, password string) string {
	return fmt.Sprintf("  - name: %s\n    username: %s\n    password_file: %s\n", name, e.members[i].Username, e.secret(name+"_password", password))
}

// writeConfig writes the config file and returns its path.
func (e *env) writeConfig(accounts ...string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, "household.yml")
	if err := os.WriteFile(p, []byte("accounts:\n"+strings.Join(accounts, "")), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

type opt func(*household.Options)

func (e *env) household(opts ...opt) *household.Household {
	e.t.Helper()
	logger := log.NewLogfmtLogger(e.logs)
	o := household.Options{
		Client:       client.Config{Transport: e.sim.Transport(), Timeout: 5 * time.Second, Logger: logger},
		Collector:    collector.Options{TTL: 5 * time.Minute, RefreshTimeout: 20 * time.Second, NoDetail: true, WeekStart: time.Monday},
		StateDir:     e.state,
		LoginSpacing: 300 * time.Millisecond,
		WarmupGap:    10 * time.Millisecond,
		WarmupPoll:   20 * time.Millisecond,
		Logger:       logger,
	}
	for _, f := range opts {
		f(&o)
	}
	h := household.New(o)
	e.t.Cleanup(h.Close)
	return h
}

// probe scrapes /probe?query as Prometheus would, with a scrape timeout of timeout seconds.
func probe(t *testing.T, h http.Handler, query string, timeout string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/probe?"+query, nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeout)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// waitUp waits until every named account of h is up.
func (e *env) waitUp(h *household.Household, within time.Duration, names ...string) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for _, name := range names {
		for {
			a, ok := h.Account(name)
			if ok && a.Exporter.Up() {
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("account %s not up within %v (running: %v)\n%s", name, within, h.Names(), e.logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// families parses an exposition into its metric families.
func families(t *testing.T, body string) map[string]bool {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing %q: %v", body[:min(len(body), 300)], err)
	}
	out := map[string]bool{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName())
			}
			sort.Strings(labels)
			out[name+"{"+strings.Join(labels, ",")+"}"] = true
		}
	}
	return out
}

func TestProbeServesEachAccountAsASingleExporterWould(t *testing.T) {
	e := newEnv(t)
	_, refresh, err := e.sim.IssueTokensFor(e.members[1].Username)
	if err != nil {
		t.Fatal(err)
	}
	path := e.writeConfig(
		e.passwordAccount("alex", 0, e.members[0].Password),
		"  - name: sam\n    refresh_token_file: "+e.secret("sam_refresh", refresh)+"\n    timezone: Europe/Berlin\n")
	h := e.household()
	if err := h.Load(path); err != nil {
		t.Fatal(err)
	}
	e.waitUp(h, 10*time.Second, "alex", "sam")
	if got := h.Names(); !slices.Equal(got, []string{"alex", "sam"}) {
		t.Errorf("running %v", got)
	}

	// A single-account exporter of alex's member, beside: the probe serves the same series.
	single, err := client.New(client.Config{Transport: e.sim.Transport(), Username: e.members[0].Username, Password: e.members[0].Password})
	if err != nil {
		t.Fatal(err)
	}
	exp := collector.New(single, collector.Options{NoDetail: true, WeekStart: time.Monday})
	defer exp.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	exp.Refresh(ctx)
	reg := prometheus.NewRegistry()
	reg.MustRegister(exp)
	want, err := testutil.GatherAndCount(reg)
	if err != nil || want == 0 {
		t.Fatal(err)
	}
	var buf strings.Builder
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		_, _ = expfmt.MetricFamilyToText(&buf, mf)
	}
	wantSeries := families(t, buf.String())
	if len(wantSeries) < 30 {
		t.Fatalf("the single-account exporter served only %d series", len(wantSeries))
	}

	status, alex := probe(t, h, "target=alex", "10")
	if status != http.StatusOK {
		t.Fatalf("probe alex: %d %s", status, alex)
	}
	gotSeries := families(t, alex)
	for s := range wantSeries {
		if !gotSeries[s] {
			t.Errorf("the probe lacks %s, which a single-account exporter serves", s)
		}
	}
	for s := range gotSeries {
		if !wantSeries[s] {
			t.Errorf("the probe serves %s, which a single-account exporter does not", s)
		}
		if strings.Contains(s, "account") {
			t.Errorf("the probe labels a series with the account: %s", s)
		}
	}
	status, sam := probe(t, h, "target=sam", "10")
	if status != http.StatusOK || !strings.Contains(sam, "\npeloton_up 1\n") || sam == alex {
		t.Errorf("probe sam: %d, up: %v, same as alex's: %v", status, strings.Contains(sam, "\npeloton_up 1\n"), sam == alex)
	}

	// The state files are the accounts' own, 0600.
	for _, name := range []string{"alex", "sam"} {
		fi, err := os.Stat(filepath.Join(e.state, name+".json"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s's state file: %v %v", name, fi, err)
		}
		if _, err := os.Stat(filepath.Join(e.state, name+".history.json")); err != nil {
			t.Errorf("%s's history file: %v", name, err)
		}
	}
}

// A probe for anything but a running account's name is refused without a request to Peloton
// and without touching a file.
func TestUnknownTargetsAreRefused(t *testing.T) {
	e := newEnv(t)
	path := e.writeConfig(e.passwordAccount("alex", 0, e.members[0].Password))
	h := e.household()
	if err := h.Load(path); err != nil {
		t.Fatal(err)
	}
	e.waitUp(h, 10*time.Second, "alex")
	endpoints := []string{simulator.EndpointAuthorize, simulator.EndpointLogin, simulator.EndpointToken, simulator.EndpointMe, simulator.EndpointOverview, simulator.EndpointWorkouts}
	before := map[string]int{}
	for _, ep := range endpoints {
		before[ep] = e.sim.Requests(ep)
	}
	entries, _ := os.ReadDir(e.state)
	for _, c := range []struct {
		query  string
		status int
		says   string
	}{
		{"", http.StatusBadRequest, "missing the target"},
		{"target=", http.StatusBadRequest, "missing the target"},
		{"target=alex&target=sam", http.StatusBadRequest, "one account per request"},
		{"target=sam", http.StatusNotFound, `unknown target "sam"`},
		{"target=ALEX", http.StatusNotFound, "unknown target"},
		{"target=..%2F..%2Fetc%2Fpasswd", http.StatusNotFound, `unknown target "../../etc/passwd"`},
		{"target=" + e.members[1].Username, http.StatusNotFound, "unknown target"},
		{"target=" + strings.Repeat("x", 5000), http.StatusNotFound, "…"},
	} {
		status, body := probe(t, h, c.query, "10")
		if status != c.status || !strings.Contains(body, c.says) {
			t.Errorf("/probe?%.60s: %d %q, want %d saying %q", c.query, status, body, c.status, c.says)
		}
		if len(body) > 300 {
			t.Errorf("/probe?%.60s: the answer repeats the request at length (%d bytes)", c.query, len(body))
		}
	}
	for _, ep := range endpoints {
		if n := e.sim.Requests(ep) - before[ep]; n != 0 {
			t.Errorf("%d requests to %s for unknown targets", n, ep)
		}
	}
	if after, _ := os.ReadDir(e.state); len(after) != len(entries) {
		t.Errorf("the state directory changed: %v, then %v", entries, after)
	}
}

// One account's wrong password or slow Peloton neither delays nor breaks another's probe.
func TestOneAccountFailingLeavesTheOthersServing(t *testing.T) {
	e := newEnv(t)
	path := e.writeConfig(
		e.passwordAccount("alex", 0, e.members[0].Password),
		e.passwordAccount("sam", 1, "a-wrong-password"),
		e.passwordAccount("kim", 2, e.members[2].Password))
	h := e.household(func(o *household.Options) {
		o.Collector.TTL = time.Second // every probe below refreshes
		o.LoginSpacing = 50 * time.Millisecond
	})
	if err := h.Load(path); err != nil {
		t.Fatal(err)
	}
	e.waitUp(h, 10*time.Second, "alex", "kim")

	// kim's Peloton hangs from now on.
	e.sim.InjectFault(simulator.EndpointOverview, simulator.Fault{Member: e.members[2].Username, Delay: 4 * time.Second})
	time.Sleep(1100 * time.Millisecond) // every cache expired
	var wg sync.WaitGroup
	kimDone := make(chan string, 1)
	wg.Go(func() { _, body := probe(t, h, "target=kim", "1"); kimDone <- body })
	time.Sleep(100 * time.Millisecond) // kim's refresh is now hanging
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		start := time.Now()
		status, body := probe(t, h, "target=alex", "10")
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("alex's probe %d took %v while kim's Peloton hangs", i, took)
		}
		if status != http.StatusOK || !strings.Contains(body, "\npeloton_up 1\n") {
			t.Fatalf("alex's probe %d: %d, up: %v", i, status, strings.Contains(body, "\npeloton_up 1\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if body := <-kimDone; !strings.Contains(body, "peloton_weekly_streak") {
		t.Error("kim's probe, its scrape timeout over, did not get its last good data")
	}
	wg.Wait()
	_, sam := probe(t, h, "target=sam", "1")
	if !strings.Contains(sam, "\npeloton_up 0\n") || strings.Contains(sam, "peloton_weekly_streak ") {
		t.Errorf("sam, with a wrong password, should be down without data:\n%.500s", sam)
	}
	if !strings.Contains(e.logs.String(), "refused the username or password") || !strings.Contains(e.logs.String(), "account=sam") {
		t.Errorf("sam's refused password is not logged as sam's:\n%s", e.logs)
	}
	e.sim.ClearFaults()
	// At a glance on /metrics: alex and kim up (kim's last refresh may still be failing), sam down.
	if v := accountUp(t, h, "sam"); v != 0 {
		t.Errorf("peloton_account_up{account=sam} %v, want 0", v)
	}
	if v := accountUp(t, h, "alex"); v != 1 {
		t.Errorf("peloton_account_up{account=alex} %v, want 1", v)
	}
}

// accountUp is the value of peloton_account_up for an account.
func accountUp(t *testing.T, h *household.Household, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "peloton_account_up" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == name {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// At start-up the accounts do not all log in at once: their logins come a spacing apart, and
// each is up soon after its turn, without a scrape.
func TestColdStartSpacesTheLogins(t *testing.T) {
	e := newEnv(t)
	const spacing = time.Second
	h := e.household(func(o *household.Options) { o.LoginSpacing = spacing })
	start := time.Now()
	if err := h.Load(e.threeRiders()); err != nil {
		t.Fatal(err)
	}
	e.waitUp(h, 10*time.Second, "alex", "sam", "kim")
	took := time.Since(start)
	e.checkSpacing(spacing, 3)
	if took > 2*spacing+3*time.Second {
		t.Errorf("all three up only after %v", took)
	}
	if !strings.Contains(e.logs.String(), "waiting for this account's turn to log in") {
		t.Errorf("no account said it waited for its turn:\n%s", e.logs)
	}
}

// A slow login page delays a login's credentials post, not the next account's: the spacing
// holds between the posts, as Auth0 sees them, not between the starts of the logins.
func TestSlowLoginPageKeepsTheSpacing(t *testing.T) {
	e := newEnv(t)
	const spacing = time.Second
	// The first login's page takes most of a spacing; the next login's is quick.
	e.sim.InjectFault(simulator.EndpointLoginPage, simulator.Fault{Delay: 900 * time.Millisecond, Times: 1})
	h := e.household(func(o *household.Options) { o.LoginSpacing = spacing })
	if err := h.Load(e.threeRiders()); err != nil {
		t.Fatal(err)
	}
	e.waitUp(h, 10*time.Second, "alex", "sam", "kim")
	e.checkSpacing(spacing, 3)
}

// A changed account that restarts while it waits for its turn to log in does not lose a slot:
// its old self's turn is given up, not kept booked ahead of its successor.
func TestRestartedAccountKeepsItsPlaceInTheLoginQueue(t *testing.T) {
	e := newEnv(t)
	const spacing = time.Second
	alex := e.passwordAccount("alex", 0, e.members[0].Password)
	sam := e.passwordAccount("sam", 1, e.members[1].Password)
	h := e.household(func(o *household.Options) { o.LoginSpacing = spacing })
	if err := h.Load(e.writeConfig(alex, sam)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !logged(e.logs.String(), "account=sam", "waiting for this account's turn") {
		if time.Now().After(deadline) {
			t.Fatalf("sam did not wait for its turn:\n%s", e.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// sam changes before its turn: its successor asks for a turn of its own.
	if err := h.Load(e.writeConfig(alex, strings.TrimSuffix(sam, "\n")+"\n    timezone: Europe/Berlin\n")); err != nil {
		t.Fatal(err)
	}
	e.waitUp(h, 10*time.Second, "alex", "sam")
	ins := e.sim.SignIns()
	if len(ins) != 2 {
		t.Fatalf("%d credentials posts, want one per account: %+v", len(ins), ins)
	}
	if gap := ins[1].At.Sub(ins[0].At); gap > spacing*3/2 {
		t.Errorf("the restarted sam logged in %v after alex: a slot later than the spacing of %v", gap, spacing)
	}
}

// When Auth0 throttles the household's address, every account's password logins wait for
// the throttle's end, not only those of the account that was told.
func TestIPThrottlingStopsTheHouseholdsLogins(t *testing.T) {
	e := newEnv(t, func(c *simulator.Config) { c.IPThrottleAfter = 1 })
	path := e.writeConfig(
		e.passwordAccount("alex", 0, "a-wrong-password"), // throttles the address
		e.passwordAccount("sam", 1, e.members[1].Password),
		e.passwordAccount("kim", 2, e.members[2].Password))
	h := e.household(func(o *household.Options) { o.LoginSpacing = 100 * time.Millisecond })
	if err := h.Load(path); err != nil {
		t.Fatal(err)
	}
	// sam is told at its turn; kim, at its own, is rate limited too, one way or the other.
	deadline := time.Now().Add(10 * time.Second)
	for !logged(e.logs.String(), "account=kim", "rate limited by Peloton") {
		if time.Now().After(deadline) {
			t.Fatalf("kim was not rate limited within 10s:\n%s", e.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.sim.Requests(simulator.EndpointLogin); n != 2 {
		t.Errorf("%d credentials posts, want alex's and sam's only:\n%s", n, e.logs)
	}
	if n := strings.Count(e.logs.String(), "Auth0 throttles logins from this IP address"); n != 1 {
		t.Errorf("the throttling logged %d times, want once:\n%s", n, e.logs)
	}
}

// logged tells whether a line of logs holds every one of parts.
func logged(logs string, parts ...string) bool {
	for _, line := range strings.Split(logs, "\n") {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			return true
		}
	}
	return false
}

// threeRiders writes a config file of the three members, each with its password.
func (e *env) threeRiders() string {
	return e.writeConfig(
		e.passwordAccount("alex", 0, e.members[0].Password),
		e.passwordAccount("sam", 1, e.members[1].Password),
		e.passwordAccount("kim", 2, e.members[2].Password))
}

// checkSpacing wants n credentials posts, each at least spacing after the one before as the
// simulator saw them. The slack is for the simulator's clock, which notes a post once it has
// read it, a few milliseconds after the client noted it.
func (e *env) checkSpacing(spacing time.Duration, n int) {
	e.t.Helper()
	const slack = 100 * time.Millisecond
	ins := e.sim.SignIns()
	if len(ins) != n {
		e.t.Fatalf("%d credentials posts, want %d: %+v", len(ins), n, ins)
	}
	for i := 1; i < len(ins); i++ {
		if gap := ins[i].At.Sub(ins[i-1].At); gap < spacing-slack {
			e.t.Errorf("credentials posts %d and %d came %v apart, under the spacing of %v", i-1, i, gap, spacing)
		}
	}
}

// A reload starts added accounts, stops removed ones, keeps unchanged ones as they run
// (tokens, cache and all), restarts changed ones from their state file, and a bad file
// changes nothing.
func TestReload(t *testing.T) {
	e := newEnv(t)
	alex := e.passwordAccount("alex", 0, e.members[0].Password)
	sam := e.passwordAccount("sam", 1, e.members[1].Password)
	path := e.writeConfig(alex, sam)
	h := e.household(func(o *household.Options) { o.LoginSpacing = 50 * time.Millisecond })
	if err := h.Load(path); err != nil {
		t.Fatal(err)
	}
	e.waitUp(h, 10*time.Second, "alex", "sam")
	firstAlex, _ := h.Account("alex")
	reloaded := reloadTime(t, h)
	if v := gauge(t, h, "peloton_config_last_reload_successful"); v != 1 || reloaded == 0 {
		t.Errorf("after the first load: successful %v at %v", v, reloaded)
	}

	// sam goes, kim comes, alex stays; a comment and moved lines change nothing for alex.
	kim := e.passwordAccount("kim", 2, e.members[2].Password)
	path = e.writeConfig("# reordered\n", kim, alex)
	signIns := len(e.sim.SignIns())
	if err := h.Load(path); err != nil {
		t.Fatal(err)
	}
	e.waitUp(h, 10*time.Second, "kim")
	if a, _ := h.Account("alex"); a != firstAlex || !a.Exporter.Up() {
		t.Error("unchanged alex was restarted")
	}
	if _, ok := h.Account("sam"); ok {
		t.Error("removed sam still runs")
	}
	if status, _ := probe(t, h, "target=sam", "1"); status != http.StatusNotFound {
		t.Errorf("a probe of removed sam: %d, want 404", status)
	}
	if ins := e.sim.SignIns()[signIns:]; len(ins) != 1 || ins[0].Username != e.members[2].Username {
		t.Errorf("sign-ins of the reload: %+v; want kim's only", ins)
	}
	if got := h.Names(); !slices.Equal(got, []string{"kim", "alex"}) {
		t.Errorf("running %v, want the file's order", got)
	}

	// A broken file: everything keeps running, and the gauge says so.
	if err := os.WriteFile(path, []byte("accounts:\n  - name: alex\n    passwd: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := h.Load(path)
	if err == nil || !strings.Contains(err.Error(), `line 3: unknown key "passwd"`) {
		t.Errorf("a broken file loaded, or the error does not say where: %v", err)
	}
	if got := h.Names(); !slices.Equal(got, []string{"kim", "alex"}) {
		t.Errorf("after a bad reload: running %v", got)
	}
	if v := gauge(t, h, "peloton_config_last_reload_successful"); v != 0 {
		t.Errorf("peloton_config_last_reload_successful %v after a bad reload", v)
	}
	if got := reloadTime(t, h); got < reloaded {
		t.Errorf("the last successful reload's time went back: %v, then %v", reloaded, got)
	}
	// A file whose accounts cannot start (a missing secret file) is just as bad.
	path = e.writeConfig(alex, "  - name: kim\n    username: kim\n    password_file: "+filepath.Join(e.dir, "missing")+"\n")
	if err := h.Load(path); err == nil || !strings.Contains(err.Error(), "account kim (line 5)") {
		t.Errorf("a missing secret file: %v", err)
	}
	if a, _ := h.Account("kim"); a == nil || !a.Exporter.Up() {
		t.Error("a bad reload stopped kim")
	}

	// alex changes (a time zone): restarted, with the tokens of its state file: no login.
	signIns = len(e.sim.SignIns())
	path = e.writeConfig(kim, strings.TrimSuffix(alex, "\n")+"\n    timezone: Europe/Berlin\n")
	if err := h.Load(path); err != nil {
		t.Fatal(err)
	}
	e.waitUp(h, 10*time.Second, "alex")
	if a, _ := h.Account("alex"); a == firstAlex {
		t.Error("changed alex was not restarted")
	}
	if n := len(e.sim.SignIns()) - signIns; n != 0 {
		t.Errorf("%d logins for a restarted account whose state file holds tokens", n)
	}
	if v := gauge(t, h, "peloton_config_last_reload_successful"); v != 1 {
		t.Errorf("peloton_config_last_reload_successful %v after a good reload", v)
	}
	if problems, err := testutil.CollectAndLint(h); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

func gauge(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	v, err := testutil.GatherAndCount(gatherer(c), name)
	if err != nil || v != 1 {
		t.Fatalf("%s: %d samples (%v)", name, v, err)
	}
	return testutil.ToFloat64(filtered{c, name})
}

func reloadTime(t *testing.T, h *household.Household) float64 {
	t.Helper()
	return gauge(t, h, "peloton_config_last_reload_success_timestamp_seconds")
}

func gatherer(c prometheus.Collector) prometheus.Gatherer {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	return reg
}

// filtered is a collector of one metric of another, for testutil.ToFloat64.
type filtered struct {
	c    prometheus.Collector
	name string
}

func (f filtered) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(f, ch) }
func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { f.c.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+f.name+`"`) {
			ch <- m
		}
	}
}

func TestPaths(t *testing.T) {
	if s, hf := household.Paths("/var/lib/p", "alex"); s != "/var/lib/p/alex.json" || hf != "/var/lib/p/alex.history.json" {
		t.Errorf("Paths: %s %s", s, hf)
	}
	if s, hf := household.Paths("", "alex"); s != "" || hf != "" {
		t.Errorf("Paths in memory: %q %q", s, hf)
	}
	cfg := household.ClientConfig(client.Config{Timeout: time.Second}, "sam", household.Credentials{Username: "u", RefreshToken: "r"}, "/d")
	if cfg.StateFile != "/d/sam.json" || cfg.Username != "u" || cfg.RefreshToken != "r" || cfg.Timeout != time.Second {
		t.Errorf("ClientConfig: %+v", cfg)
	}
}

// The README's Households section documents exactly the household's own metrics.
func TestREADMEDocumentsTheHouseholdMetrics(t *testing.T) {
	testkit.CompareMetricNames(t, "Households", testkit.READMEMetrics(t, "../README.md", "Households"),
		testkit.DescribedMetrics(household.New(household.Options{})))
}
