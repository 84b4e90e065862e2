package client_test

import (
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
