package main

// Tests of the built binary in household mode (--config.file): start-up errors, the demo
// household, reloads by SIGHUP and POST /-/reload.

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// writeFile writes a file of the test's own and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHouseholdStartUpErrorsAreExplained(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yml", "accounts:\n  - name: alex\n    refresh_token_file: "+writeFile(t, dir, "rt", "x")+"\n")
	cases := []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--config.file=" + writeFile(t, dir, "typo.yml", "accounts:\n  - name: alex\n    pasword_file: /x\n")}, `line 3: unknown key "pasword_file"`},
		{nil, []string{"--config.file=" + writeFile(t, dir, "dup.yml", "accounts:\n  - name: a\n  - name: a\n")}, `the account name "a" is taken by the account at line 2`},
		{nil, []string{"--config.file=" + writeFile(t, dir, "nowayin.yml", "accounts:\n  - name: a\n")}, "account a (line 2) has no way in"},
		{nil, []string{"--config.file=" + writeFile(t, dir, "nofile.yml", "accounts:\n  - {name: a, username: u, password_file: /nonexistent/pw}\n")}, "/nonexistent/pw"},
		{nil, []string{"--config.file=" + filepath.Join(dir, "missing.yml")}, "missing.yml"},
		{[]string{"PELOTON_USERNAME=a@b.c"}, []string{"--config.file=" + good}, "cannot be used with the single account of --peloton.username"},
		{[]string{"PELOTON_REFRESH_TOKEN=x"}, []string{"--config.file=" + good}, "$PELOTON_REFRESH_TOKEN"},
		{nil, []string{"--config.file=" + good, "--peloton.password-file=/x"}, "--peloton.password-file"},
		{nil, []string{"--config.file=" + good, "--web.telemetry-path=/probe"}, "--web.telemetry-path=/probe"},
		{nil, []string{"login", "--config.file=" + good}, "--peloton.state-file=<--peloton.state-dir>/<name>.json"},
		{nil, []string{"--config.file=" + good, "--peloton.login-spacing=0s"}, "--peloton.login-spacing"},
	}
	for _, tc := range cases {
		out, err := run(t, tc.env, append(tc.args, "--peloton.state-dir="+t.TempDir(), "--web.listen-address="+testkit.FreeAddr(t))...)
		if err == nil || !strings.Contains(out, tc.want) || strings.Contains(out, "goroutine ") {
			t.Errorf("env %v args %v: err=%v, output should say %q:\n%s", tc.env, tc.args, err, tc.want, out)
		}
	}
	// A state directory that is not there (a volume not mounted) would lose the tokens.
	missing := filepath.Join(dir, "no-such-dir")
	if out, err := run(t, nil, "--config.file="+good, "--peloton.state-dir="+missing, "--web.listen-address="+testkit.FreeAddr(t)); err == nil || !strings.Contains(out, missing+": not a directory") {
		t.Errorf("a missing state directory: err=%v:\n%s", err, out)
	}
}

// post sends a POST to the exporter and returns the status and body.
func (e *exporter) post(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := httpClient.Post("http://"+e.addr+path, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The demo with a config file is a simulated household: each account signs in as a member
// of its own, with its own data, and the accounts' logins come a spacing apart.
func TestDemoHousehold(t *testing.T) {
	dir := t.TempDir()
	// The secret files named do not exist: the demo reads none.
	cfg := writeFile(t, dir, "household.yml", `accounts:
  - name: alex
    username: alex@example.com
    password_file: /run/secrets/alex_password
  - name: sam
    refresh_token_file: /run/secrets/sam_refresh_token
    timezone: Europe/Berlin
  - name: kim
    access_token: ${KIM_TOKEN}
`)
	e := startExporter(t, []string{"KIM_TOKEN=not-read-by-the-demo"}, "--demo", "--config.file="+cfg,
		"--peloton.login-spacing=1s", "--peloton.detail-interval=2ms")
	bodies := map[string]string{}
	for _, name := range []string{"alex", "sam", "kim"} {
		bodies[name] = e.waitFor(t, "/probe?target="+name, "\npeloton_up 1\n")
	}
	if bodies["alex"] == bodies["sam"] || bodies["sam"] == bodies["kim"] {
		t.Error("two riders of the household have the same data")
	}
	metrics := e.waitFor(t, "/metrics", `peloton_account_up{account="kim"} 1`)
	for _, want := range []string{`peloton_account_up{account="alex"} 1`, "peloton_config_last_reload_successful 1", "peloton_exporter_build_info{", "go_goroutines ", "process_resident_memory_bytes "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, "peloton_weekly_streak") {
		t.Error("/metrics serves an account's series: they belong on /probe")
	}
	for _, want := range []string{`href="/probe?target=alex"`, `href="/probe?target=kim"`} {
		if landing := e.get(t, "/"); !strings.Contains(landing, want) {
			t.Errorf("the landing page lacks %s", want)
		}
	}
	// sam is the demo's member without a heart-rate strap: once the detail is in, alex has
	// heart-rate zones and sam none.
	e.waitFor(t, "/probe?target=sam", "peloton_workout_detail_pending 0")
	alex := e.waitFor(t, "/probe?target=alex", "peloton_workout_detail_pending 0")
	if sam := e.get(t, "/probe?target=sam"); strings.Contains(sam, "peloton_heart_rate_zone_seconds{") || !strings.Contains(alex, "peloton_heart_rate_zone_seconds{") {
		t.Error("want heart-rate zones for alex and none for sam, who never wore a strap")
	}
	if err := e.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, e.Out.String())
	}
	out := e.Out.String()
	for _, want := range []string{"account=sam member=sam@peloton.example", "waiting for this account's turn to log in"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "level=error") {
		t.Errorf("errors in the demo's log:\n%s", out)
	}
}

// SIGHUP and POST /-/reload reload the file: an added account starts, a removed one stops, an
// unchanged one keeps its login; a bad file keeps the accounts running and says why.
func TestHouseholdReload(t *testing.T) {
	sam := simulator.DemoMember(1)
	sim, err := simulator.Start(simulator.Config{Workouts: 80, Household: []simulator.Member{sam}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir, state := t.TempDir(), t.TempDir()
	alexEntry := "  - name: alex\n    username: " + simulator.DemoUsername + "\n    password_file: " + writeFile(t, dir, "alex_pw", simulator.DemoPassword) + "\n"
	samEntry := "  - name: sam\n    username: " + sam.Username + "\n    password: ${SAM_PASSWORD}\n"
	cfg := writeFile(t, dir, "household.yml", "accounts:\n"+alexEntry)
	e := startExporter(t, append(testkit.SimulatorEnv(t, sim), "SAM_PASSWORD="+sam.Password),
		"--config.file="+cfg, "--peloton.state-dir="+state, "--peloton.login-spacing=1s", "--no-peloton.workout-detail")
	e.waitFor(t, "/probe?target=alex", "\npeloton_up 1\n")
	logins := len(sim.SignIns())

	writeFile(t, dir, "household.yml", "accounts:\n"+alexEntry+samEntry)
	if err := e.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, "/probe?target=sam", "\npeloton_up 1\n")

	writeFile(t, dir, "household.yml", "accounts:\n"+samEntry)
	if status, body := e.post(t, "/-/reload"); status != http.StatusOK {
		t.Fatalf("POST /-/reload: %d %s", status, body)
	}
	if body := e.get(t, "/probe?target=alex"); !strings.Contains(body, `unknown target "alex"`) {
		t.Errorf("removed alex still answers: %.300s", body)
	}
	if ins := sim.SignIns()[logins:]; len(ins) != 1 || ins[0].Username != sam.Username {
		t.Errorf("logins after the first: %+v; want sam's only", ins)
	}

	writeFile(t, dir, "household.yml", "accounts:\n"+samEntry+"  - name: kim\n    usrname: kim\n")
	status, body := e.post(t, "/-/reload")
	if status != http.StatusInternalServerError || !strings.Contains(body, `line 6: unknown key "usrname"`) {
		t.Errorf("POST /-/reload of a bad file: %d %q, want 500 naming the key and line", status, body)
	}
	if status, _ := e.post(t, "/-/reload"); status != http.StatusInternalServerError {
		t.Errorf("the bad file reloaded on the second try: %d", status)
	}
	if err := e.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	metrics := e.waitFor(t, "/metrics", "peloton_config_last_reload_successful 0")
	if !strings.Contains(metrics, `peloton_account_up{account="sam"} 1`) {
		t.Errorf("sam stopped after a bad reload:\n%s", metrics)
	}
	e.waitFor(t, "/probe?target=sam", "\npeloton_up 1\n")
	if resp, err := httpClient.Get("http://" + e.addr + "/-/reload"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %v %v, want 405", resp, err)
	} else {
		resp.Body.Close()
	}
	if err := e.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, e.Out.String())
	}
	out := e.Out.String()
	if !strings.Contains(out, "reloading the config file failed; the accounts of the last good one keep running") || !strings.Contains(out, "via=SIGHUP") {
		t.Errorf("the failed reload is not logged with its cause:\n%s", out)
	}
	for _, f := range []string{"alex.json", "sam.json", "alex.history.json", "sam.history.json"} {
		fi, err := os.Stat(filepath.Join(state, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want a 0600 file", f, fi, err)
		}
	}
}
