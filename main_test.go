package main

// End-to-end tests of the built binary: flags, start-up errors, demo mode, shutdown, and a
// search of everything it prints or serves for the secrets it handled.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/internal/syncbuf"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "peloton_exporter_test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "peloton_exporter")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the exporter: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// exporter is a running exporter process, stopped when the test ends.
type exporter struct {
	cmd    *exec.Cmd
	out    *syncbuf.Buffer
	addr   string
	exited chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// launch starts the exporter with args (and a free --web.listen-address), lets configure
// adjust the command first, and stops the process when the test ends.
func launch(t *testing.T, configure func(*exec.Cmd), args ...string) *exporter {
	t.Helper()
	e := &exporter{out: &syncbuf.Buffer{}, addr: freeAddr(t), exited: make(chan error, 1)}
	e.cmd = exec.Command(binary, append([]string{"--web.listen-address=" + e.addr}, args...)...)
	e.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	e.cmd.Dir = t.TempDir()
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if configure != nil {
		configure(e.cmd)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.exited <- e.cmd.Wait() }()
	t.Cleanup(func() { e.stop(t) })
	return e
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
	if e.cmd.ProcessState != nil {
		return nil
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-e.exited:
		e.exited <- err
		return err
	case <-time.After(20 * time.Second):
		_ = e.cmd.Process.Kill()
		t.Errorf("the exporter did not stop within 20s of SIGTERM")
		return <-e.exited
	}
}

func (e *exporter) get(t *testing.T, path string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.addr+path, nil)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	resp, err := http.DefaultClient.Do(req)
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
			t.Fatalf("%s never contained %q; last body:\n%.2000s\nexporter output:\n%s", path, want, body, e.out.String())
		}
		select {
		case err := <-e.exited:
			t.Fatalf("the exporter exited early (%v):\n%s", err, e.out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func run(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
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
	e := startExporter(t, nil, "--demo")
	metrics := e.waitFor(t, "/metrics", "peloton_up 1")
	for _, want := range []string{"peloton_weekly_streak ", "peloton_workouts{", "peloton_personal_record_output_joules{", "peloton_achievements{", "peloton_exporter_build_info{", `peloton_api_requests_total{code="200",endpoint="overview"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("demo metrics lack %s", want)
		}
	}
	if landing := e.get(t, "/"); !strings.Contains(landing, `href="/metrics"`) {
		t.Errorf("the landing page does not link to /metrics:\n%s", landing)
	}
	if err := e.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, e.out.String())
	}
}

// TestSecretsNeverLeak runs password and token logins, refresh, failures and refused
// credentials at debug level, then searches every output for every secret involved.
func TestSecretsNeverLeak(t *testing.T) {
	sim, err := simulator.Start(simulator.Config{AccessTokenTTL: 90 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	common := []string{
		"--peloton.api-url=" + sim.APIURL(), "--peloton.auth-url=" + sim.AuthURL(),
		"--log.level=debug", "--peloton.cache-ttl=1s", "--peloton.login-interval=1s",
	}
	var outputs []string

	// A password login, a scrape, then revoked tokens and a changed password: refresh refused,
	// login refused, errors logged.
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte(simulator.DemoPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state.json")
	e := startExporter(t, []string{"PELOTON_USERNAME=" + simulator.DemoUsername},
		append(common, "--peloton.password-file="+pwFile, "--peloton.state-file="+state)...)
	outputs = append(outputs, e.waitFor(t, "/metrics", "peloton_up 1"), e.get(t, "/"))
	sim.RevokeAccessTokens()
	sim.RevokeRefreshTokens()
	sim.SetPassword("a-new-password-the-exporter-lacks")
	outputs = append(outputs, e.waitFor(t, "/metrics", "peloton_up 0"))
	e.stop(t)
	outputs = append(outputs, e.out.String())
	if !strings.Contains(e.out.String(), "refused the username or password") {
		t.Errorf("refused credentials were not logged as such:\n%s", e.out.String())
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
	e = startExporter(t, []string{"PELOTON_ACCESS_TOKEN=" + access, "PELOTON_REFRESH_TOKEN=" + refresh}, append(common, "--peloton.state-file=")...)
	outputs = append(outputs, e.waitFor(t, "/metrics", "peloton_up 1"))
	sim.RevokeAccessTokens()
	outputs = append(outputs, e.waitFor(t, "/metrics", `endpoint="token"`))
	e.stop(t)
	outputs = append(outputs, e.out.String())

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
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| `"+prefix) {
			names[strings.Trim(strings.Split(line, "|")[1], " `")] = true
		}
	}
	return names
}

func TestREADMEDocumentsEveryFlag(t *testing.T) {
	help, err := run(t, nil, "--help")
	if err != nil {
		t.Fatalf("--help: %v", err)
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
	sim, err := simulator.Start(simulator.Config{Workouts: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	state := filepath.Join(t.TempDir(), "state.json")
	e := startExporter(t, []string{"PELOTON_USERNAME=" + simulator.DemoUsername, "PELOTON_PASSWORD=" + simulator.DemoPassword},
		"--peloton.api-url="+sim.APIURL(), "--peloton.auth-url="+sim.AuthURL(), "--peloton.state-file="+state, "--peloton.cache-ttl=1s")
	e.waitFor(t, "/metrics", "peloton_up 1")
	sim.InjectFault(simulator.EndpointOverview, simulator.Fault{Delay: 2 * time.Second})
	time.Sleep(1100 * time.Millisecond) // let the cache expire, so the next scrape waits for Peloton

	got := make(chan string, 1)
	go func() { got <- e.get(t, "/metrics") }()
	time.Sleep(500 * time.Millisecond) // the scrape is now waiting for the slow overview
	if err := e.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, e.out.String())
	}
	select {
	case body := <-got:
		if !strings.Contains(body, "peloton_up 1") {
			t.Errorf("the scrape in flight at SIGTERM got:\n%.500s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the scrape in flight never finished")
	}
	if st := readFile(t, state); !strings.Contains(st, "refresh_token") {
		t.Errorf("the state file lost its tokens: %s", st)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
