package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// Tests of `peloton_exporter login`, the browser sign-in, run as a member would: the built
// binary with its default URLs (reaching the simulator through its proxy), and the simulator's
// SignInWithBrowser in place of the member's browser.

var authorizeLine = regexp.MustCompile(`(?m)^\s+(https://auth\.onepeloton\.com/authorize\?\S+)$`)

// startSignIn runs `login` with nothing on standard input and returns the URL it printed and
// its output.
func startSignIn(t *testing.T, env []string, state string) (string, string) {
	t.Helper()
	out, err := run(t, env, "login", "--peloton.state-file="+state)
	if err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	m := authorizeLine.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "--callback-url=") {
		t.Fatalf("login printed no authorize URL or no way to finish later:\n%s", out)
	}
	return m[1], out
}

func TestBrowserSignInInTwoRuns(t *testing.T) {
	needBinary(t)
	sim, err := simulator.Start(simulator.Config{Workouts: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	env := testkit.SimulatorEnv(t, sim)
	state := filepath.Join(t.TempDir(), "state.json")
	authorize, out1 := startSignIn(t, env, state)
	if fi, err := os.Stat(client.SignInFile(state)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the pending sign-in is not kept with mode 0600: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	landed, err := sim.SignInWithBrowser(ctx, authorize, simulator.DemoUsername, simulator.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}

	// The address of another sign-in (a wrong state) is refused and nothing is saved.
	other := regexp.MustCompile(`state=[^&]+`).ReplaceAllString(landed, "state=someone-elses")
	if out, err := run(t, env, "login", "--peloton.state-file="+state, "--callback-url="+other); err == nil ||
		!strings.Contains(out, "state does not match") {
		t.Errorf("a callback of another sign-in: err=%v\n%s", err, out)
	}
	if _, err := os.Stat(state); err == nil {
		t.Error("a refused callback wrote the state file")
	}

	out2, err := run(t, env, "login", "--peloton.state-file="+state, "--callback-url="+landed)
	if err != nil || !strings.Contains(out2, "Signed in.") {
		t.Fatalf("finishing the sign-in: %v\n%s", err, out2)
	}
	st := testkit.ReadFile(t, state)
	if !strings.Contains(st, `"refresh_token"`) || !strings.Contains(st, `"signed_in_at"`) {
		t.Errorf("the state file lacks the tokens: %s", st)
	}
	if _, err := os.Stat(client.SignInFile(state)); err == nil {
		t.Error("the pending sign-in outlived its use")
	}
	if out, err := run(t, env, "login", "--peloton.state-file="+state, "--callback-url="+landed); err == nil ||
		!strings.Contains(out, "no browser sign-in is waiting") {
		t.Errorf("the same address twice: err=%v\n%s", err, out)
	}

	// The exporter starts on the state file alone, without a password, and never logs in.
	e := startExporter(t, env, "--peloton.state-file="+state)
	e.waitFor(t, "/metrics", "\npeloton_up 1\n")
	e.stop(t)
	if n := sim.Requests(simulator.EndpointLogin); n != 1 {
		t.Errorf("%d credential posts, want only the browser's one", n)
	}
	checkNoSecrets(t, sim, out1, out2, e.Out.String())
}

func TestBrowserSignInInteractive(t *testing.T) {
	bin := needBinary(t)
	sim, err := simulator.Start(simulator.Config{Workouts: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	state := filepath.Join(t.TempDir(), "state.json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := testkit.CommandContext(ctx, bin, "login", "--peloton.state-file="+state)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, testkit.SimulatorEnv(t, sim)...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	var printed strings.Builder
	r := bufio.NewReader(io.TeeReader(stdout, &printed))
	authorize := ""
	for authorize == "" {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("login ended before printing a URL: %v\n%s", err, printed.String())
		}
		if m := authorizeLine.FindStringSubmatch(strings.TrimRight(line, "\n")); m != nil {
			authorize = m[1]
		}
	}
	landed, err := sim.SignInWithBrowser(ctx, authorize, simulator.DemoUsername, simulator.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, landed+"\n")
	rest, _ := io.ReadAll(r)
	if err := cmd.Wait(); err != nil || !strings.Contains(string(rest), "Signed in.") {
		t.Fatalf("login: %v\n%s", err, printed.String())
	}
	if st := testkit.ReadFile(t, state); !strings.Contains(st, `"refresh_token"`) {
		t.Errorf("the state file lacks the tokens: %s", st)
	}
	checkNoSecrets(t, sim, printed.String())
}

// checkNoSecrets fails when an output holds a secret the simulator handed out or took.
func checkNoSecrets(t *testing.T, sim *simulator.Simulator, outputs ...string) {
	t.Helper()
	for _, s := range sim.Secrets() {
		if len(s) < 8 {
			continue
		}
		for i, out := range outputs {
			if strings.Contains(out, s) {
				t.Errorf("output %d holds a secret (%.6s…):\n%.2000s", i, s, out)
			}
		}
	}
}
