package main

// End-to-end tests of the built binary: flags, start-up errors, demo mode, shutdown, and a
// search of everything it prints or serves for the secrets it handled.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

const (
	// stopGrace is how long the exporter gets between SIGTERM and SIGKILL.
	stopGrace = 20 * time.Second
	// httpTimeout bounds every HTTP request to the exporter: more than the scrape timeout the
	// requests announce (10s), so that no answer the exporter gives in time is cut off.
	httpTimeout = 15 * time.Second
)

var (
	binary     string
	httpClient = &http.Client{Timeout: httpTimeout}
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() { // the fast inner loop: no build, the tests of the binary skip
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "peloton_exporter_test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "peloton_exporter")
	if err := testkit.BuildExporter(".", binary); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needBinary skips a test of the built binary under go test -short, and returns its path. A
// test that runs the binary calls it first (launch and run do), before it starts anything.
func needBinary(t *testing.T) string {
	t.Helper()
	if binary == "" {
		t.Skip("skipped under -short: runs the built exporter (./scripts/test.sh runs it)")
	}
	return binary
}

// exporter is a running exporter process, stopped when the test ends.
type exporter struct {
	*testkit.Process
	addr string
}

// launch starts the exporter with args (and a free --web.listen-address), lets configure
// adjust the command first, and stops the process when the test ends.
func launch(t *testing.T, configure func(*exec.Cmd), args ...string) *exporter {
	t.Helper()
	needBinary(t)
	addr := testkit.FreeAddr(t)
	cmd := exec.Command(binary, append([]string{"--web.listen-address=" + addr}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cmd.Dir = t.TempDir()
	if configure != nil {
		configure(cmd)
	}
	p, err := testkit.Start(t, cmd, stopGrace, func(err error) { failIfKilled(t, err) })
	if err != nil {
		t.Fatal(err)
	}
	return &exporter{Process: p, addr: addr}
}

// startExporter launches the exporter with env added and waits for its landing page.
func startExporter(t *testing.T, env []string, args ...string) *exporter {
	t.Helper()
	e := launch(t, func(cmd *exec.Cmd) { cmd.Env = append(cmd.Env, env...) }, args...)
	e.waitFor(t, "/", "Metrics")
	return e
}

// stop sends SIGTERM and waits (bounded) for a clean exit.
func (e *exporter) stop(t *testing.T) error {
	return failIfKilled(t, e.Stop())
}

// failIfKilled fails the test when the exporter had to be killed; it returns err.
func failIfKilled(t *testing.T, err error) error {
	if errors.Is(err, testkit.ErrKilled) {
		t.Errorf("the exporter did not stop within %v of SIGTERM", stopGrace)
	}
	return err
}

func (e *exporter) get(t *testing.T, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.addr+path, nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	resp, err := httpClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls path until its body contains want, for at most 15 seconds.
func (e *exporter) waitFor(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		body := e.get(t, path)
		if strings.Contains(body, want) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never contained %q; last body:\n%.2000s\nexporter output:\n%s", path, want, body, e.Out.String())
		}
		select {
		case <-e.Exited():
			t.Fatalf("the exporter exited early (%v):\n%s", e.Err(), e.Out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func run(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	needBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := testkit.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestStartWithoutCredentialsSaysWhatToSet(t *testing.T) {
	out, err := run(t, nil)
	if err == nil {
		t.Fatal("the exporter started without credentials")
	}
	for _, want := range []string{"--peloton.username", "PELOTON_PASSWORD", "--peloton.password-file", "PELOTON_REFRESH_TOKEN", "--demo"} {
		if !strings.Contains(out, want) {
			t.Errorf("the start-up error does not mention %s:\n%s", want, out)
		}
	}
}

func TestBadFlagValuesAreExplained(t *testing.T) {
	cases := []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"PELOTON_PASSWORD=x"}, nil, "no username"},
		{[]string{"PELOTON_USERNAME=a@b.c"}, nil, "no password"},
		{[]string{"PELOTON_USERNAME=a@b.c"}, []string{"--peloton.password-file=/nonexistent/pw"}, "/nonexistent/pw"},
		{[]string{"PELOTON_REFRESH_TOKEN=x"}, []string{"--peloton.api-url=ftp://example"}, "invalid URL"},
		{nil, []string{"--demo", "--peloton.cache-ttl=soon"}, "cache-ttl"},
		{nil, []string{"--demo", "--peloton.timeout=0s"}, "--peloton.timeout"},
		{nil, []string{"--demo", "--log.level=loud"}, "debug,info,warn,error"},
	}
	for _, tc := range cases {
		out, err := run(t, tc.env, tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("env %v args %v: err=%v, output should mention %q:\n%s", tc.env, tc.args, err, tc.want, out)
		}
	}
}

func TestDemoServesMetricsAndStopsCleanly(t *testing.T) {
	// A real account's state file, named by mistake: the demo must neither use nor touch it.
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	const real = `{"version":1,"access_token":"a.real.token","refresh_token":"a-real-refresh-token","user_id":"0123456789abcdef0123456789abcdef"}`
	if err := os.WriteFile(state, []byte(real), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startExporter(t, nil, "--demo", "--peloton.state-file="+state)
	metrics := e.waitFor(t, "/metrics", "\npeloton_up 1\n")
	for _, want := range []string{"peloton_weekly_streak ", "peloton_workouts{", "peloton_personal_record_output_joules{", "peloton_achievements{", "peloton_exporter_build_info{", `peloton_api_requests_total{code="200",endpoint="overview"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("demo metrics lack %s", want)
		}
	}
	if landing := e.get(t, "/"); !strings.Contains(landing, `href="/metrics"`) {
		t.Errorf("the landing page does not link to /metrics:\n%s", landing)
	}
	if err := e.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, e.Out.String())
	}
	if got := testkit.ReadFile(t, state); got != real {
		t.Errorf("the demo changed a real state file:\n%s", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the demo wrote files beside the state file: %v", entries)
	}
}

// CI must run exactly the README's test command, so that what the README promises is tested.
func TestCIRunsTheREADMETestCommand(t *testing.T) {
	// The test command is the one line of the code block under "## Test".
	_, section, _ := strings.Cut(testkit.ReadFile(t, "README.md"), "\n## Test\n")
	_, block, _ := strings.Cut(section, "```sh\n")
	command, _, _ := strings.Cut(block, "\n")
	if command == "" || strings.HasPrefix(command, "```") {
		t.Fatal(`the README's test command (the code block under "## Test") is gone`)
	}
	ci := strings.Split(testkit.ReadFile(t, ".ci/run"), "\n")
	if !slices.Contains(ci, command) {
		t.Errorf(".ci/run does not run the README's test command %q:\n%s", command, strings.Join(ci, "\n"))
	}
}

// TestSecretsNeverLeak runs password and token logins, refresh, failures and refused
// credentials at debug level, then searches every output for every secret involved.
func TestSecretsNeverLeak(t *testing.T) {
	needBinary(t)
	sim, err := simulator.Start(simulator.Config{AccessTokenTTL: 90 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	simEnv := testkit.SimulatorEnv(t, sim) // the default URLs, reached through the simulator's proxy
	common := []string{"--log.level=debug", "--peloton.cache-ttl=1s", "--peloton.login-interval=1s"}
	var outputs []string

	// A password login, a scrape, then revoked tokens and a changed password: refresh refused,
	// login refused, errors logged.
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte(simulator.DemoPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state.json")
	e := startExporter(t, append(simEnv, "PELOTON_USERNAME="+simulator.DemoUsername),
		append(common, "--peloton.password-file="+pwFile, "--peloton.state-file="+state)...)
	outputs = append(outputs, e.waitFor(t, "/metrics", "\npeloton_up 1\n"), e.get(t, "/"))
	sim.RevokeAccessTokens()
	sim.RevokeRefreshTokens()
	sim.SetPassword("a-new-password-the-exporter-lacks")
	outputs = append(outputs, e.waitFor(t, "/metrics", "\npeloton_up 0\n"))
	e.stop(t)
	outputs = append(outputs, e.Out.String())
	if !strings.Contains(e.Out.String(), "refused the username or password") {
		t.Errorf("refused credentials were not logged as such:\n%s", e.Out.String())
	}
	if st, err := os.ReadFile(state); err == nil {
		outputs = append(outputs, string(st)) // holds tokens by design; checked below not to hold the password
		if strings.Contains(string(st), simulator.DemoPassword) {
			t.Error("the state file holds the password")
		}
	}

	// Browser tokens from the environment.
	sim.SetPassword(simulator.DemoPassword)
	access, refresh := sim.IssueTokens()
	e = startExporter(t, append(simEnv, "PELOTON_ACCESS_TOKEN="+access, "PELOTON_REFRESH_TOKEN="+refresh), append(common, "--peloton.state-file=")...)
	outputs = append(outputs, e.waitFor(t, "/metrics", "\npeloton_up 1\n"))
	sim.RevokeAccessTokens()
	outputs = append(outputs, e.waitFor(t, "/metrics", `endpoint="token"`))
	e.stop(t)
	outputs = append(outputs, e.Out.String())

	for _, args := range [][]string{{"--help"}, {"--version"}} {
		out, _ := run(t, []string{"PELOTON_PASSWORD=" + simulator.DemoPassword}, args...)
		outputs = append(outputs, out)
	}

	secrets := append(sim.Secrets(), simulator.DemoPassword, "a-new-password-the-exporter-lacks")
	if len(secrets) < 10 {
		t.Fatalf("only %d secrets recorded: the flows above did not run", len(secrets))
	}
	for _, s := range secrets {
		if len(s) < 8 {
			continue
		}
		for i, out := range outputs {
			if strings.Contains(out, s) && !isStateFile(out) {
				t.Errorf("output %d contains a secret (%.6s…):\n%.3000s", i, s, out)
			}
		}
	}
}

func isStateFile(s string) bool { return strings.HasPrefix(s, `{"version":`) }

// readmeColumn returns the first-column code spans of README table rows starting with prefix.
func readmeColumn(t *testing.T, path, prefix string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, line := range strings.Split(testkit.ReadFile(t, path), "\n") {
		if strings.HasPrefix(line, "| `"+prefix) {
			names[strings.Trim(strings.Split(line, "|")[1], " `")] = true
		}
	}
	return names
}

func TestREADMEDocumentsEveryFlag(t *testing.T) {
	// The global flags, and each command's own (`login`'s are documented in its section).
	var help string
	for _, args := range [][]string{{"--help"}, {"backfill", "--help"}, {"login", "--help"}} {
		out, err := run(t, nil, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		help += out
	}
	inHelp := map[string]bool{}
	for _, field := range strings.Fields(help) {
		if strings.HasPrefix(field, "--") {
			name := strings.TrimPrefix(strings.SplitN(field, "=", 2)[0], "--")
			name = strings.TrimPrefix(name, "[no-]")
			if name != "help" && name != "help-long" && name != "help-man" && !strings.HasSuffix(name, ".") {
				inHelp["--"+strings.TrimRight(name, ").,")] = true
			}
		}
	}
	inREADME := readmeColumn(t, "README.md", "--")
	for f := range inHelp {
		if !inREADME[f] {
			t.Errorf("flag %s is not in the README's configuration table", f)
		}
	}
	for f := range inREADME {
		if !inHelp[f] {
			t.Errorf("the README documents %s, which the exporter does not have", f)
		}
	}
}

// TestSIGTERMFinishesTheScrapeInFlight stops the exporter while a scrape waits for a slow
// Peloton: the scrape still gets its answer and the process exits cleanly.
func TestSIGTERMFinishesTheScrapeInFlight(t *testing.T) {
	needBinary(t)
	sim, err := simulator.Start(simulator.Config{Workouts: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	state := filepath.Join(t.TempDir(), "state.json")
	e := startExporter(t, append(testkit.SimulatorEnv(t, sim), "PELOTON_USERNAME="+simulator.DemoUsername, "PELOTON_PASSWORD="+simulator.DemoPassword),
		"--peloton.state-file="+state, "--peloton.cache-ttl=1s")
	e.waitFor(t, "/metrics", "\npeloton_up 1\n")
	sim.InjectFault(simulator.EndpointOverview, simulator.Fault{Delay: 2 * time.Second})
	time.Sleep(1100 * time.Millisecond) // let the cache expire, so the next scrape waits for Peloton

	got := make(chan string, 1)
	go func() { got <- e.get(t, "/metrics") }()
	time.Sleep(500 * time.Millisecond) // the scrape is now waiting for the slow overview
	if err := e.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, e.Out.String())
	}
	select {
	case body := <-got:
		if !strings.Contains(body, "\npeloton_up 1\n") {
			t.Errorf("the scrape in flight at SIGTERM got:\n%.500s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scrape in flight never finished")
	}
	if st := testkit.ReadFile(t, state); !strings.Contains(st, "refresh_token") {
		t.Errorf("the state file lost its tokens: %s", st)
	}
}

// TestWorldReadablePasswordFileIsWarnedAbout logs in with a password file others can read: the
// exporter still works, warns that the file is readable, and never logs the password.
func TestWorldReadablePasswordFileIsWarnedAbout(t *testing.T) {
	needBinary(t)
	const password = "world-readable-file-password"
	sim, err := simulator.Start(simulator.Config{Password: password})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pwFile, 0o644); err != nil { // WriteFile's mode is subject to the umask
		t.Fatal(err)
	}
	e := startExporter(t, append(testkit.SimulatorEnv(t, sim), "PELOTON_USERNAME="+simulator.DemoUsername),
		"--peloton.state-file=", "--log.level=debug", "--peloton.password-file="+pwFile)
	e.waitFor(t, "/metrics", "\npeloton_up 1\n") // logged in: the password from the file was used
	if err := e.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, e.Out.String())
	}
	out := e.Out.String()
	var warning string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "a secret file is readable by other users; chmod 600 it") {
			warning = line
			break
		}
	}
	switch {
	case warning == "":
		t.Errorf("no warning that others can read the password file:\n%s", out)
	case !strings.Contains(warning, "level=warn") || !strings.Contains(warning, pwFile) || !strings.Contains(warning, "-rw-r--r--"):
		t.Errorf("the warning should be at level warn and name the file and its mode -rw-r--r--:\n%s", warning)
	}
	if strings.Contains(out, password) {
		t.Errorf("the log contains the password:\n%s", out)
	}
}

// Issue 14, 5: a bad --web.telemetry-path is a usage error, reported before anything starts:
// no panic, no stack trace, and not one request to Peloton.
func TestBadTelemetryPathIsRefusedBeforePelotonIsContacted(t *testing.T) {
	needBinary(t)
	sim, err := simulator.Start(simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	access, refresh := sim.IssueTokens()
	env := []string{"PELOTON_ACCESS_TOKEN=" + access, "PELOTON_REFRESH_TOKEN=" + refresh}
	for _, path := range []string{"metrics", "", "/metrics/{x"} {
		out, err := run(t, env, "--peloton.api-url="+sim.APIURL(), "--peloton.auth-url="+sim.AuthURL(),
			"--peloton.state-file=", "--web.listen-address="+testkit.FreeAddr(t), "--web.telemetry-path="+path)
		if err == nil || !strings.Contains(out, "--web.telemetry-path") || strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") {
			t.Errorf("--web.telemetry-path=%q: err=%v, want a clear usage error naming the flag:\n%s", path, err, out)
		}
	}
	for _, ep := range []string{simulator.EndpointMe, simulator.EndpointOverview, simulator.EndpointWorkouts, simulator.EndpointToken} {
		if n := sim.Requests(ep); n != 0 {
			t.Errorf("%d requests to %s before the flags were found bad", n, ep)
		}
	}
}

// Issue 14, 1, 2 and 4, against the running binary: hostile scrapers can neither change what
// others receive nor fill the error log.
func TestHostileScrapersCannotPoisonTheCacheOrTheLog(t *testing.T) {
	e := startExporter(t, nil, "--demo")
	e.waitFor(t, "/metrics", "\npeloton_up 1\n")
	scrape := func(path string, header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.addr+path, nil)
		for _, h := range header {
			name, value, _ := strings.Cut(h, ": ")
			req.Header.Add(name, value)
		}
		// A transport of its own, which neither adds nor undoes compression.
		resp, err := (&http.Client{Timeout: httpTimeout, Transport: &http.Transport{DisableCompression: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	scrape("/metrics?name[]=peloton_up")
	if _, full := scrape("/metrics"); !strings.Contains(full, "peloton_weekly_streak ") {
		t.Errorf("a full scrape right after a filtered one lost series:\n%.500s", full)
	}
	if _, filtered := scrape("/metrics?name[]=peloton_up"); strings.Contains(filtered, "peloton_weekly_streak ") {
		t.Error("a filtered scrape right after a full one got everything")
	}

	time.Sleep(1100 * time.Millisecond) // answers are kept for a second: let the poisoner come first
	scrape("/metrics", "Accept-Encoding: ", "Accept-Encoding: gzip")
	if resp, _ := scrape("/metrics"); resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("a scrape that did not ask for compression got Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}

	for i := range 200 {
		scrape("/metrics", fmt.Sprintf("Accept-Encoding: x-%d;q=1, identity;q=0, *;q=0", i))
	}
	// The same with a query string, which the cache does not keep: the answer is computed for
	// the request alone, still from the negotiated compression.
	for i := range 200 {
		scrape(fmt.Sprintf("/metrics?x=%d", i), fmt.Sprintf("Accept-Encoding: bogus%d, *;q=0", i))
	}
	if err := e.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if n := strings.Count(e.Out.String(), "level=error"); n != 0 {
		t.Errorf("%d error lines after requests with bad Accept-Encoding values, with and without a query:\n%.3000s", n, e.Out.String())
	}
}

// Issue 14, 12: the exporter listens on every interface by default but serves personal data;
// the README says so beside TLS and basic auth, and shows the loopback-only form.
func TestREADMEShowsTheLoopbackOnlyForm(t *testing.T) {
	_, section, _ := strings.Cut(testkit.ReadFile(t, "README.md"), "\n### Who can reach it\n")
	section, _, found := strings.Cut(section, "\n### TLS and basic auth\n")
	if !found || !strings.Contains(section, "personal data") || !strings.Contains(section, "--web.listen-address=127.0.0.1:"+defaultPort) {
		t.Errorf("the README lacks, just before its TLS section, the warning and the loopback-only form:\n%s", section)
	}
}

// A listen address that cannot be served (taken, or not an address) is found out before the
// warm-up refresh tries to log in: a container crash-looping on it must not contact Peloton
// on every restart. Peloton here is a proxy that counts the connections made to it: a login
// attempt cut short by the exit still counts.
func TestAnAddressThatCannotBeServedIsFoundBeforePelotonIsContacted(t *testing.T) {
	needBinary(t)
	peloton, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var contacts atomic.Int64
	go func() {
		for {
			c, err := peloton.Accept()
			if err != nil {
				return
			}
			contacts.Add(1)
			c.Close()
		}
	}()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	env := []string{"HTTPS_PROXY=http://" + peloton.Addr().String(), "PELOTON_USERNAME=" + simulator.DemoUsername, "PELOTON_PASSWORD=" + simulator.DemoPassword}
	// A household of two accounts, whose warm-ups wait for the server as the single one does.
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte(simulator.DemoPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	household := filepath.Join(dir, "household.yml")
	accounts := fmt.Sprintf("accounts:\n  - {name: alex, username: %s, password_file: %s}\n  - {name: sam, username: sam@peloton.example, password_file: %s}\n",
		simulator.DemoUsername, pw, pw)
	if err := os.WriteFile(household, []byte(accounts), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 { // a few restarts of a crash loop
		for addr, want := range map[string]string{taken.Addr().String(): "address already in use", "127.0.0.1:1007O": "1007O"} {
			out, err := run(t, env, "--peloton.state-file=", "--web.listen-address="+addr)
			if err == nil || !strings.Contains(out, want) {
				t.Errorf("--web.listen-address=%s: err=%v, want an exit saying %q:\n%s", addr, err, want, out)
			}
			out, err = run(t, env[:1], "--config.file="+household, "--peloton.state-dir="+dir, "--web.listen-address="+addr)
			if err == nil || !strings.Contains(out, want) {
				t.Errorf("household, --web.listen-address=%s: err=%v, want an exit saying %q:\n%s", addr, err, want, out)
			}
		}
	}
	time.Sleep(200 * time.Millisecond) // connections the kernel took are accepted by now
	peloton.Close()
	if n := contacts.Load(); n != 0 {
		t.Errorf("Peloton was contacted %d times by exporters that could not serve", n)
	}

	// One that serves still warms its cache up at once, before any scrape.
	sim, err := simulator.Start(simulator.Config{Workouts: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	e := startExporter(t, append(testkit.SimulatorEnv(t, sim), env[1:]...), "--peloton.state-file=")
	for deadline := time.Now().Add(10 * time.Second); sim.Requests(simulator.EndpointWorkouts) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no warm-up refresh without a scrape:\n%s", e.Out.String())
		}
	}
	e.stop(t)
}

// With no history on disk, `backfill` downloads the workout list itself, in the profile's
// time zone, keeps it beside the state file for the next run, and writes a file promtool
// can read.
func TestBackfillSyncsTheHistoryItself(t *testing.T) {
	needBinary(t)
	sim, err := simulator.Start(simulator.Config{Timezone: "Asia/Tokyo", Workouts: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	state, om := filepath.Join(dir, "state.json"), filepath.Join(dir, "peloton.om")
	out, err := run(t, append(testkit.SimulatorEnv(t, sim), "PELOTON_USERNAME="+simulator.DemoUsername, "PELOTON_PASSWORD="+simulator.DemoPassword),
		"backfill", "--peloton.state-file="+state, "--label=job=peloton", "--label=instance=rider:10070", "--output="+om)
	if err != nil {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	if !strings.Contains(out, `zone=Asia/Tokyo from=profile`) {
		t.Errorf("the streak's weeks do not follow the profile's zone:\n%s", out)
	}
	text, err := os.ReadFile(om)
	if err != nil || !strings.HasSuffix(string(text), "\n# EOF\n") || !strings.Contains(string(text), `peloton_workouts{job="peloton",instance="rider:10070",discipline="cycling"`) {
		t.Errorf("the file (%v) has no peloton_workouts of the target, or no # EOF:\n%.500s", err, text)
	}
	kept, err := os.ReadFile(filepath.Join(dir, "state.history.json"))
	if err != nil || !strings.Contains(string(kept), `"timezone":"Asia/Tokyo"`) {
		t.Errorf("the history beside the state file (%v) does not keep the profile's zone: %.300s", err, kept)
	}
	if n := sim.Requests(simulator.EndpointWorkouts); n == 0 {
		t.Error("no workout page was read")
	}
}

// --best-effort: a backfill that cannot read Peloton says why and exits 0, removing an earlier
// run's file so that promtool does not make blocks of it again; without it, it exits 1 and
// keeps the file.
func TestBackfillBestEffort(t *testing.T) {
	needBinary(t)
	sim, err := simulator.Start(simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	env := append(testkit.SimulatorEnv(t, sim), "PELOTON_USERNAME="+simulator.DemoUsername, "PELOTON_PASSWORD="+simulator.DemoPassword)
	sim.Close() // Peloton cannot be reached
	dir := t.TempDir()
	om := filepath.Join(dir, "peloton.om")
	for _, bestEffort := range []bool{false, true} {
		if err := os.WriteFile(om, []byte("# EOF\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"backfill", "--peloton.state-file=" + filepath.Join(dir, "state.json"), "--peloton.timeout=2s",
			"--label=job=peloton", "--label=instance=rider:10070", "--output=" + om}
		if bestEffort {
			args = append(args, "--best-effort")
		}
		out, err := run(t, env, args...)
		_, statErr := os.Stat(om)
		switch {
		case !strings.Contains(out, `msg="backfill failed"`):
			t.Errorf("best effort %v: the failure is not logged:\n%s", bestEffort, out)
		case bestEffort && (err != nil || statErr == nil):
			t.Errorf("--best-effort: exit %v, the earlier file removed: %v; want exit 0 and no file\n%s", err, statErr != nil, out)
		case !bestEffort && (err == nil || statErr != nil):
			t.Errorf("without --best-effort: exit %v, the earlier file kept: %v; want exit 1 and the file\n%s", err, statErr == nil, out)
		}
	}
}

// backfill --config.file: every rider's history, each to its own file, read from where the
// household keeps it or downloaded (with the account's credentials, read only then, logins
// spaced), in each rider's zone, labelled with the rider's name as the household's scrape
// config labels its targets. --account picks one.
func TestBackfillOfAHousehold(t *testing.T) {
	needBinary(t)
	sam := simulator.DemoMember(1) // in Europe/Berlin
	sam.Workouts = 40
	sim, err := simulator.Start(simulator.Config{Workouts: 30, Household: []simulator.Member{sam}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir, out := t.TempDir(), t.TempDir()
	alexPW, samPW := filepath.Join(dir, "alex_password"), filepath.Join(dir, "sam_password")
	for path, pw := range map[string]string{alexPW: simulator.DemoPassword, samPW: sam.Password} {
		if err := os.WriteFile(path, []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	household := filepath.Join(dir, "household.yml")
	accounts := fmt.Sprintf("accounts:\n  - {name: alex, username: %s, password_file: %s, timezone: Asia/Tokyo}\n  - {name: sam, username: %s, password_file: %s}\n",
		simulator.DemoUsername, alexPW, sam.Username, samPW)
	if err := os.WriteFile(household, []byte(accounts), 0o600); err != nil {
		t.Fatal(err)
	}
	env := testkit.SimulatorEnv(t, sim)
	common := []string{"backfill", "--config.file=" + household, "--peloton.state-dir=" + dir, "--peloton.login-spacing=1s", "--label=job=peloton"}
	logged, err := run(t, env, append(common, "--output="+out)...)
	if err != nil {
		t.Fatalf("backfill: %v\n%s", err, logged)
	}
	for name, zone := range map[string]string{"alex": "zone=Asia/Tokyo from=--streak.timezone", "sam": "zone=Europe/Berlin from=profile"} {
		text, _ := os.ReadFile(filepath.Join(out, name+".om"))
		if !strings.Contains(string(text), `peloton_workouts{job="peloton",instance="`+name+`",`) || strings.Count(string(text), `instance="`) != strings.Count(string(text), `instance="`+name+`"`) {
			t.Errorf("%s.om does not hold %s's series alone, labelled instance=%q:\n%.300s", name, name, name, text)
		}
		if !regexp.MustCompile(`account=` + name + ` .*` + regexp.QuoteMeta(zone)).MatchString(logged) {
			t.Errorf("%s's weeks do not follow %q:\n%s", name, zone, logged)
		}
		if _, err := os.Stat(filepath.Join(dir, name+".history.json")); err != nil {
			t.Errorf("%s's history is not kept where the household keeps it: %v", name, err)
		}
	}
	signIns := sim.SignIns()
	if len(signIns) != 2 || signIns[1].At.Sub(signIns[0].At) < time.Second {
		t.Errorf("sign-ins %+v: want two, a login spacing (1s) apart", signIns)
	}

	// With the histories on disk, no credential is read and Peloton is not asked.
	if err := os.Remove(alexPW); err != nil {
		t.Fatal(err)
	}
	before := sim.Requests(simulator.EndpointLogin) + sim.Requests(simulator.EndpointWorkouts)
	one := filepath.Join(out, "just-alex.om")
	if logged, err := run(t, env, append(common, "--account=alex", "--output="+one)...); err != nil {
		t.Fatalf("backfill --account=alex, its history on disk, its password file gone: %v\n%s", err, logged)
	}
	if text, _ := os.ReadFile(one); !strings.Contains(string(text), `instance="alex"`) {
		t.Errorf("--account=alex wrote no series of alex: %.200s", text)
	}
	if after := sim.Requests(simulator.EndpointLogin) + sim.Requests(simulator.EndpointWorkouts); after != before {
		t.Errorf("a backfill from the kept history sent %d requests to Peloton", after-before)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{append(common, "--account=kim", "--output="+one), `has no such account (it has alex, sam)`},
		{append(common, "--output="+one), "with every account of --config.file, name a directory"},
		{append(common, "--label=instance=x", "--output="+out), "each account's name is its instance"},
		{[]string{"backfill", "--label=job=peloton", "--label=instance=x", "--output=" + one, "--account=sam"}, "--account names an account of --config.file"},
	} {
		if logged, err := run(t, env, c.args...); err == nil || !strings.Contains(logged, c.want) {
			t.Errorf("%q: %v, want an error saying %q:\n%s", c.args, err, c.want, logged)
		}
	}
}

// --best-effort over a household is all or nothing: when one rider's backfill fails, the
// others' files go too (promtool runs next, and the mark it leaves would keep the missing
// rider out for good), and the failure's time is noted: the exporter serves from then on, so
// the backfill that succeeds later stops there rather than overlap what Prometheus scraped.
func TestBackfillOfAHouseholdBestEffort(t *testing.T) {
	needBinary(t)
	sam := simulator.DemoMember(1)
	sam.Workouts = 20
	sim, err := simulator.Start(simulator.Config{Workouts: 20, Household: []simulator.Member{sam}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir, out := t.TempDir(), t.TempDir()
	alexPW, samPW := filepath.Join(dir, "alex_password"), filepath.Join(dir, "sam_password")
	for path, pw := range map[string]string{alexPW: simulator.DemoPassword, samPW: "not-sams-password"} {
		if err := os.WriteFile(path, []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	household := filepath.Join(dir, "household.yml")
	accounts := fmt.Sprintf("accounts:\n  - {name: alex, username: %s, password_file: %s}\n  - {name: sam, username: %s, password_file: %s}\n",
		simulator.DemoUsername, alexPW, sam.Username, samPW)
	if err := os.WriteFile(household, []byte(accounts), 0o600); err != nil {
		t.Fatal(err)
	}
	env := testkit.SimulatorEnv(t, sim)
	args := []string{"backfill", "--config.file=" + household, "--peloton.state-dir=" + dir, "--peloton.login-spacing=1ms",
		"--label=job=peloton", "--output=" + out, "--best-effort", "--until=0s"}
	logged, err := run(t, env, args...)
	failedAt := time.Now()
	if err != nil || !strings.Contains(logged, `account=sam`) || !strings.Contains(logged, `msg="backfill failed"`) {
		t.Fatalf("--best-effort with sam refused: %v, want exit 0 and sam's failure logged\n%s", err, logged)
	}
	if files, _ := filepath.Glob(filepath.Join(out, "*.om")); len(files) != 0 {
		t.Errorf("files %v left by a household backfill that failed for one rider", files)
	}

	time.Sleep(2 * time.Second) // the retry's own --until (now) reaches past the failure's time
	if err := os.WriteFile(samPW, []byte(sam.Password), 0o600); err != nil {
		t.Fatal(err)
	}
	sim.AddWorkoutFor(sam.Username, simulator.Workout{}) // after the failure: not written
	logged, err = run(t, env, args...)
	if err != nil || !strings.Contains(logged, "an earlier backfill failed at this time") {
		t.Fatalf("the retry: %v, want it to stop at the earlier failure\n%s", err, logged)
	}
	for _, name := range []string{"alex", "sam"} {
		text, err := os.ReadFile(filepath.Join(out, name+".om"))
		if err != nil {
			t.Fatalf("the retry wrote no %s.om: %v", name, err)
		}
		for _, line := range strings.Split(string(text), "\n") {
			f := strings.Fields(line)
			if len(f) == 3 && !strings.HasPrefix(line, "#") {
				if ts, _ := strconv.ParseInt(f[2], 10, 64); ts > failedAt.Unix() {
					t.Fatalf("%s.om has a sample at %v, after the earlier failure at %v: %s", name, time.Unix(ts, 0), failedAt, line)
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(out, ".peloton-backfill-first-failure")); err == nil {
		t.Error("the note of the failure outlived the backfill that succeeded")
	}
}

// The demo household's backfill, with the config file the compose example ships: a file per
// rider, each with the rider's own history.
func TestBackfillOfTheDemoHousehold(t *testing.T) {
	needBinary(t)
	config, err := filepath.Abs("deploy/household/household.yml")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	logged, err := run(t, nil, "backfill", "--demo", "--demo.workouts=60", "--config.file="+config, "--label=job=peloton", "--output="+out)
	if err != nil {
		t.Fatalf("backfill --demo --config.file: %v\n%s", err, logged)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.om"))
	seen := map[string]string{} // the file without its instance label -> whose
	for _, f := range files {
		text, _ := os.ReadFile(f)
		name := strings.TrimSuffix(filepath.Base(f), ".om")
		anonymous := strings.ReplaceAll(string(text), `instance="`+name+`"`, `instance=""`)
		switch {
		case !strings.Contains(string(text), `peloton_workouts{job="peloton",instance="`+name+`"`):
			t.Errorf("%s holds no peloton_workouts of %s", f, name)
		case regexp.MustCompile(`instance="[^"]`).MatchString(anonymous):
			t.Errorf("%s holds another rider's series", f)
		case seen[anonymous] != "":
			t.Errorf("%s and %s backfilled the same history", name, seen[anonymous])
		}
		seen[anonymous] = name
	}
	if len(files) < 2 {
		t.Fatalf("files %v: want one per rider of the shipped household\n%s", files, logged)
	}
}
