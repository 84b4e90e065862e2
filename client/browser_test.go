package client_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// signIn runs a browser sign-in to its callback address with the simulator as the browser.
func (e *env) signIn(c *client.Client) string {
	e.t.Helper()
	authorize, err := c.StartBrowserSignIn()
	if err != nil {
		e.t.Fatal(err)
	}
	landed, err := e.sim.SignInWithBrowser(ctx(e.t), authorize, simulator.DemoUsername, simulator.DemoPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	return landed
}

func tokenlessConfig(e *env) client.Config {
	cfg := e.config()
	cfg.Username, cfg.Password = "", ""
	return cfg
}

func TestBrowserSignIn(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 10})
	c := e.client(tokenlessConfig(e))
	landed := e.signIn(c)
	// What the member pastes may be only the query, quoted.
	u, _ := url.Parse(landed)
	if err := c.FinishBrowserSignIn(ctx(t), ` "?`+u.RawQuery+`" `); err != nil {
		t.Fatalf("finishing with the bare query: %v", err)
	}
	if st := readState(t, e.state); st["refresh_token"] == nil || st["signed_in_at"] == nil {
		t.Errorf("state after the sign-in: %v", st)
	}
	// A restarted exporter without any credentials uses the tokens.
	if _, err := e.client(tokenlessConfig(e)).Me(ctx(t)); err != nil {
		t.Fatalf("Me with the signed-in tokens: %v", err)
	}
}

func TestBrowserSignInRefusals(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 10})
	c := e.client(tokenlessConfig(e))
	for _, tc := range []struct{ name, paste, want string }{
		{"another site", "https://evil.example/callback?code=abc&state=x", "not the address of Peloton's callback"},
		{"no code", "https://members.onepeloton.com/callback?state=x", "not the address of Peloton's callback"},
		{"an error", "https://members.onepeloton.com/callback?error=access_denied&error_description=Too%20many%20attempts", "access_denied: Too many attempts"},
	} {
		if _, err := c.StartBrowserSignIn(); err != nil {
			t.Fatal(err)
		}
		if err := c.FinishBrowserSignIn(ctx(t), tc.paste); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	// A sign-in is kept for 30 minutes, not longer.
	landed := e.signIn(c)
	e.clock.Advance(31 * time.Minute)
	if err := c.FinishBrowserSignIn(ctx(t), landed); !errors.Is(err, client.ErrNoSignIn) {
		t.Errorf("after 31 minutes: err = %v, want ErrNoSignIn", err)
	}
	if _, err := os.Stat(e.state); err == nil {
		t.Error("a refused sign-in wrote the state file")
	}
	// A code Peloton refuses (here: expired) drops the pending sign-in and says what to do.
	landed = e.signIn(c)
	e.sim.InjectFault(simulator.EndpointToken, simulator.Fault{Status: 403, Times: 1,
		Body: `{"error":"invalid_grant","error_description":"Invalid authorization code"}`, Header: http.Header{"Content-Type": {"application/json"}}})
	if err := c.FinishBrowserSignIn(ctx(t), landed); err == nil || !strings.Contains(err.Error(), "run peloton_exporter login again") {
		t.Errorf("refused code: err = %v", err)
	}
	if _, err := os.Stat(client.SignInFile(e.state)); err == nil {
		t.Error("the pending sign-in outlived a refused code")
	}
}

// A running exporter whose logins are stopped takes the tokens of a sign-in made by another
// process (`peloton_exporter login` beside it), and the sign-in lifts a blocked account's stop.
func TestRunningExporterTakesASignIn(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 10})
	e.sim.InjectFault(simulator.EndpointLogin, simulator.Fault{Status: 429, Times: 1,
		Body: `{"statusCode":429,"name":"AnomalyDetected","code":"too_many_attempts","description":"Your account has been blocked."}`})
	running := e.client(e.config())
	if _, err := running.Me(ctx(t)); !errors.Is(err, client.ErrAccountBlocked) {
		t.Fatalf("err = %v, want a blocked account", err)
	}
	if !running.CredentialsRefused() {
		t.Fatal("not stopped")
	}
	e.sim.UnblockAccount()
	other := e.client(tokenlessConfig(e)) // the login command, another process
	if err := other.FinishBrowserSignIn(ctx(t), e.signIn(other)); err != nil {
		t.Fatal(err)
	}
	if _, err := running.Me(ctx(t)); err != nil {
		t.Fatalf("the running exporter after the sign-in: %v", err)
	}
	if running.CredentialsRefused() {
		t.Error("the sign-in did not lift the blocked account's stop")
	}
}

// stopAfterRefusals runs the exporter with a wrong password until its logins stop.
func (e *env) stopAfterRefusals() {
	e.t.Helper()
	cfg := e.config()
	cfg.Password = "wrong-password-123"
	e.stopAfterRefusalsWith(cfg)
}

// A browser sign-in lifts a stop for refused credentials, as the advice says: the member has
// acted, the gauge drops, and a restart with the same password is not stopped either. The
// refusals in a row are cut to 3, not forgotten: the sign-in may come from another network.
func TestBrowserSignInLiftsARefusedCredentialsStop(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 10})
	e.stopAfterRefusals()
	cfg := e.config()
	cfg.Password = "wrong-password-123"
	running := e.client(cfg) // restarted, still stopped
	if !running.CredentialsRefused() {
		t.Fatal("not stopped")
	}
	other := e.client(tokenlessConfig(e)) // the login command
	if err := other.FinishBrowserSignIn(ctx(t), e.signIn(other)); err != nil {
		t.Fatal(err)
	}
	if _, err := running.Me(ctx(t)); err != nil {
		t.Fatalf("the running exporter after the sign-in: %v", err)
	}
	if running.CredentialsRefused() {
		t.Error("the sign-in did not lift the refused credentials' stop")
	}
	stop, _ := readState(t, e.state)["login_stop"].(map[string]any)
	if stop["consecutive"] != 3.0 || stop["refusals"] != nil || stop["credentials"] != nil {
		t.Errorf("budget after the sign-in: %v, want only the 3 refusals in a row", stop)
	}
	if c := e.client(cfg); c.CredentialsRefused() {
		t.Error("a restart with the same password is stopped again")
	}
}

// The login command saves its sign-in into the state file as it is when the sign-in ends, not
// as it was when the command started: a refusal the exporter counted meanwhile stands.
func TestSignInKeepsWhatTheExporterSavedMeanwhile(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 10})
	other := e.client(tokenlessConfig(e)) // started before the refusals: its state is empty
	e.stopAfterRefusals()
	if err := other.FinishBrowserSignIn(ctx(t), e.signIn(other)); err != nil {
		t.Fatal(err)
	}
	st := readState(t, e.state)
	if stop, _ := st["login_stop"].(map[string]any); stop["consecutive"] != 3.0 || st["signed_in_at"] == nil {
		t.Errorf("state after the sign-in: %v, want the sign-in and the 3 refusals in a row", st)
	}
}

// A running exporter takes only the tokens of a sign-in another process saved, and keeps its
// own budget (cut as a sign-in cuts it), whatever the other process wrote of it.
func TestRunningExporterTakesOnlyTheTokensOfASignIn(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 10})
	cfg := e.config()
	for _, password := range []string{"wrong-1", "wrong-2"} { // 6 refusals in a row: the ceiling
		cfg.Password = password
		e.stopAfterRefusalsWith(cfg)
	}
	running := e.client(cfg)
	if !running.CredentialsRefused() {
		t.Fatal("not stopped at the ceiling")
	}
	// A sign-in saved by an older login command, from a stale copy without the budget.
	st := readState(t, e.state)
	st["access_token"], st["refresh_token"] = e.sim.IssueTokens()
	st["signed_in_at"] = e.clock.Now().Unix()
	delete(st, "login_stop")
	b, _ := json.Marshal(st)
	if err := os.WriteFile(e.state, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := running.Me(ctx(t)); err != nil {
		t.Fatalf("after the sign-in: %v", err)
	}
	if stop, _ := readState(t, e.state)["login_stop"].(map[string]any); stop["consecutive"] != 3.0 || running.CredentialsRefused() {
		t.Errorf("budget after taking the sign-in: %v (stopped: %v), want 3 refusals in a row and no stop", stop, running.CredentialsRefused())
	}
}

func (e *env) stopAfterRefusalsWith(cfg client.Config) {
	e.t.Helper()
	before := e.sim.Requests(simulator.EndpointLogin)
	c := e.client(cfg)
	for i := 0; i < 4; i++ {
		c.Me(ctx(e.t))
		e.clock.Advance(9 * time.Hour)
	}
	if !c.CredentialsRefused() || e.sim.Requests(simulator.EndpointLogin)-before != 3 {
		e.t.Fatalf("not stopped after 3 refusals (%d posts)", e.sim.Requests(simulator.EndpointLogin)-before)
	}
}

// A member whose logins ask for a verification step: the password login stops at once, and a
// browser sign-in, where the member passes the step, gets the exporter going.
func TestSignInAfterAVerificationStep(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 10, VerifyLogins: true})
	running := e.client(e.config())
	if _, err := running.Me(ctx(t)); !errors.Is(err, client.ErrVerificationRequired) || !running.CredentialsRefused() {
		t.Fatalf("err = %v, stopped = %v; want a verification step that stops password logins", err, running.CredentialsRefused())
	}
	other := e.client(tokenlessConfig(e))
	if err := other.FinishBrowserSignIn(ctx(t), e.signIn(other)); err != nil {
		t.Fatal(err)
	}
	if _, err := running.Me(ctx(t)); err != nil || running.CredentialsRefused() {
		t.Fatalf("after the sign-in: err = %v, stopped = %v", err, running.CredentialsRefused())
	}
	if n := e.sim.Requests(simulator.EndpointLogin); n != 2 { // the exporter's one, the browser's one
		t.Errorf("%d credential posts, want 2", n)
	}
}
