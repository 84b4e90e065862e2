package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/internal/syncbuf"
	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

type env struct {
	t     *testing.T
	sim   *simulator.Simulator
	clock *simulator.Clock
	logs  *syncbuf.Buffer
	state string
}

func newEnv(t *testing.T, simCfg simulator.Config) *env {
	t.Helper()
	clock := simulator.NewClock(time.Now())
	simCfg.Now = clock.Now
	sim, err := simulator.Start(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return &env{t: t, sim: sim, clock: clock, logs: &syncbuf.Buffer{}, state: filepath.Join(t.TempDir(), "state.json")}
}

// config is a client config pointed at the simulator with the demo credentials.
func (e *env) config() client.Config {
	return client.Config{
		APIURL:    e.sim.APIURL(),
		AuthURL:   e.sim.AuthURL(),
		Transport: e.sim.Transport(),
		Username:  simulator.DemoUsername,
		Password:  simulator.DemoPassword,
		StateFile: e.state,
		Timeout:   5 * time.Second,
		Logger:    log.NewLogfmtLogger(e.logs),
		Now:       e.clock.Now,
	}
}

// tokenConfig is a config with tokens taken from a browser and no password.
func (e *env) tokenConfig(access, refresh string) client.Config {
	cfg := e.config()
	cfg.Username, cfg.Password = "", ""
	cfg.AccessToken, cfg.RefreshToken = access, refresh
	return cfg
}

func (e *env) client(cfg client.Config) *client.Client {
	e.t.Helper()
	c, err := client.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func readState(t *testing.T, path string) map[string]any {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("state file is not JSON: %v", err)
	}
	return m
}

func TestPasswordLoginFetchesOverviewAndPersistsTokens(t *testing.T) {
	e := newEnv(t, simulator.Config{})
	c := e.client(e.config())
	ov, err := c.Overview(ctx(t))
	if err != nil {
		t.Fatalf("Overview: %v", err)
	}
	want := e.sim.Overview()
	if ov.Streaks == nil || int(ov.Streaks.CurrentWeekly.Value) != want.Streaks.CurrentWeekly {
		t.Errorf("weekly streak = %+v, want %d", ov.Streaks, want.Streaks.CurrentWeekly)
	}
	if got := len(ov.AchievementCounts.Achievements); got < 200 {
		t.Errorf("achievements = %d, want 200+", got)
	}
	if n := e.sim.Requests(simulator.EndpointLogin); n != 1 {
		t.Errorf("password logins = %d, want 1", n)
	}
	st := readState(t, e.state)
	for _, k := range []string{"access_token", "refresh_token", "expires_at", "user_id"} {
		if st[k] == nil || st[k] == "" {
			t.Errorf("state file lacks %s: %v", k, st)
		}
	}
	if exp, ok := c.TokenExpiry(); !ok || exp.Sub(e.clock.Now()) < 47*time.Hour {
		t.Errorf("token expiry = %v, %v; want about 48h ahead", exp, ok)
	}

	// A restart with the same state file reuses the tokens: no second login.
	c2 := e.client(e.config())
	if _, err := c2.Overview(ctx(t)); err != nil {
		t.Fatalf("Overview after restart: %v", err)
	}
	if n := e.sim.Requests(simulator.EndpointLogin); n != 1 {
		t.Errorf("password logins after restart = %d, want still 1", n)
	}
	if n := e.sim.Requests(simulator.EndpointMe); n != 1 {
		t.Errorf("/api/me calls = %d, want 1 (the user id is saved)", n)
	}
}

func TestStatsCountRequestsByEndpointAndCode(t *testing.T) {
	e := newEnv(t, simulator.Config{})
	c := e.client(e.config())
	if _, err := c.Overview(ctx(t)); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, s := range c.Stats() {
		got[s.Endpoint+"/"+s.Code] = s.Count
	}
	for _, k := range []string{"authorize/302", "login_page/200", "login/200", "callback/302", "sso/303", "continue/302", "token/200", "me/200", "overview/200"} {
		if got[k] == 0 {
			t.Errorf("no request counted for %s; counts: %v", k, got)
		}
	}
}

func TestWrongPasswordIsRefusedAndBacksOff(t *testing.T) {
	e := newEnv(t, simulator.Config{})
	cfg := e.config()
	cfg.Password = "wrong-password-123"
	cfg.LoginInterval = 15 * time.Minute
	c := e.client(cfg)

	_, err := c.Overview(ctx(t))
	if !errors.Is(err, client.ErrCredentialsRefused) {
		t.Fatalf("err = %v, want ErrCredentialsRefused", err)
	}
	for i := 0; i < 5; i++ {
		_, err = c.Overview(ctx(t))
		var backoff *client.LoginBackoffError
		if !errors.As(err, &backoff) {
			t.Fatalf("repeat %d: err = %v, want a LoginBackoffError", i, err)
		}
	}
	if n := e.sim.Requests(simulator.EndpointLogin); n != 1 {
		t.Fatalf("credential posts = %d, want 1: refused credentials must not be hammered", n)
	}
	// The back-off doubles after each failure: 15m, then 30m.
	e.clock.Advance(16 * time.Minute)
	if _, err = c.Overview(ctx(t)); !errors.Is(err, client.ErrCredentialsRefused) {
		t.Fatalf("after 16m: err = %v, want a second refused attempt", err)
	}
	e.clock.Advance(16 * time.Minute)
	if _, err = c.Overview(ctx(t)); err == nil || e.sim.Requests(simulator.EndpointLogin) != 2 {
		t.Fatalf("16m after the 2nd failure: err = %v, logins = %d; want still backing off at 2", err, e.sim.Requests(simulator.EndpointLogin))
	}
	e.clock.Advance(15 * time.Minute)
	e.sim.SetPassword(cfg.Password) // the member fixes the account: the next attempt succeeds
	if _, err = c.Overview(ctx(t)); err != nil {
		t.Fatalf("after the back-off with a valid password: %v", err)
	}
	if strings.Contains(e.logs.String(), cfg.Password) || strings.Contains(err2s(err), cfg.Password) {
		t.Error("the password leaked into logs or errors")
	}
}

func err2s(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestRefreshBeforeExpiryRotatesAndSaves(t *testing.T) {
	e := newEnv(t, simulator.Config{AccessTokenTTL: 2 * time.Hour})
	c := e.client(e.config())
	if _, err := c.Overview(ctx(t)); err != nil {
		t.Fatal(err)
	}
	first := readState(t, e.state)["refresh_token"]

	e.clock.Advance(90 * time.Minute) // inside the default 1h refresh margin
	if _, err := c.Overview(ctx(t)); err != nil {
		t.Fatalf("Overview near expiry: %v", err)
	}
	second := readState(t, e.state)["refresh_token"]
	if second == first {
		t.Fatal("the refresh token did not rotate in the state file")
	}
	if n := e.sim.Requests(simulator.EndpointLogin); n != 1 {
		t.Errorf("password logins = %d, want 1 (refresh, not login)", n)
	}

	// A client that kept the old (rotated away) refresh token is refused and falls back to a
	// password login.
	stale := e.config()
	stale.StateFile = ""
	stale.RefreshToken = first.(string)
	e.clock.Advance(3 * time.Hour)
	c3 := e.client(stale)
	if _, err := c3.Overview(ctx(t)); err != nil {
		t.Fatalf("fallback to password: %v", err)
	}
	if n := e.sim.Requests(simulator.EndpointLogin); n != 2 {
		t.Errorf("password logins = %d, want 2 (the stale refresh token forced one)", n)
	}
}

func TestTokenOnlyModeRefreshesOn401(t *testing.T) {
	e := newEnv(t, simulator.Config{})
	access, refresh := e.sim.IssueTokens()
	cfg := e.tokenConfig(access, refresh)
	c := e.client(cfg)
	if _, err := c.Overview(ctx(t)); err != nil {
		t.Fatalf("Overview with browser tokens: %v", err)
	}
	e.sim.RevokeAccessTokens()
	if _, err := c.Overview(ctx(t)); err != nil {
		t.Fatalf("Overview after the access token was revoked: %v", err)
	}
	if n := e.sim.Requests(simulator.EndpointLogin); n != 0 {
		t.Errorf("password logins = %d, want 0", n)
	}

	// Without a working refresh token and without a password there is nothing left to try.
	e.sim.RevokeAccessTokens()
	e.sim.RevokeRefreshTokens()
	_, err := c.Overview(ctx(t))
	if !errors.Is(err, client.ErrNoCredentials) {
		t.Fatalf("err = %v, want ErrNoCredentials", err)
	}
	for _, secret := range []string{access, refresh} {
		if strings.Contains(err.Error(), secret) || strings.Contains(e.logs.String(), secret) {
			t.Error("a token leaked into an error or the logs")
		}
	}
}

// A token is renewed when a quarter of its life is left (12h of 48h), so that while renewing
// works the token in use never has less than that left: PelotonAuthExpiringSoon relies on it.
func TestTokenIsRenewedWithAQuarterOfItsLifeLeft(t *testing.T) {
	for name, supplied := range map[string]bool{"logged in": false, "browser token": true} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, simulator.Config{AccessTokenTTL: 48 * time.Hour})
			cfg := e.config()
			if supplied {
				cfg = e.tokenConfig(e.sim.IssueTokens())
			}
			c := e.client(cfg)
			if _, err := c.Me(ctx(t)); err != nil {
				t.Fatal(err)
			}
			first, _ := c.TokenExpiry()
			e.clock.Advance(35*time.Hour + 59*time.Minute)
			if _, err := c.Me(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if exp, _ := c.TokenExpiry(); !exp.Equal(first) {
				t.Errorf("renewed with %v left, want not before 12h", first.Sub(e.clock.Now()))
			}
			e.clock.Advance(2 * time.Minute)
			if _, err := c.Me(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if exp, _ := c.TokenExpiry(); exp.Sub(e.clock.Now()) < 47*time.Hour {
				t.Errorf("not renewed with under 12h left: expiry in %v", exp.Sub(e.clock.Now()))
			}
		})
	}
}

// A CDN page on the token endpoint is an outage, not a refusal: the refresh token is kept, the
// current access token serves while it lasts, and the next refresh works.
func TestCDNPageOnTheTokenEndpointKeepsTheRefreshToken(t *testing.T) {
	e := newEnv(t, simulator.Config{AccessTokenTTL: 2 * time.Hour})
	access, refresh := e.sim.IssueTokens()
	cfg := e.tokenConfig(access, refresh)
	c := e.client(cfg)
	e.clock.Advance(90 * time.Minute) // inside the refresh margin: the next call refreshes
	e.sim.InjectFault(simulator.EndpointToken, simulator.Fault{Status: 403,
		Header: http.Header{"Content-Type": {"text/html"}}, Body: "<html><body>Access denied | Cloudflare</body></html>"})
	if _, err := c.Overview(ctx(t)); err != nil {
		t.Fatalf("Overview while the token endpoint is blocked: %v (the old token has 30 minutes left)", err)
	}
	if n := e.sim.Requests(simulator.EndpointToken); n != 1 {
		t.Errorf("%d renewal attempts for two API calls, want 1 (one try per refresh, not per request)", n)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "cannot renew the access token; using it until it expires") ||
		strings.Contains(logs, "refused the refresh token") {
		t.Errorf("want a warning that renewing failed, not that the token was refused:\n%s", logs)
	}
	if got := readState(t, e.state)["refresh_token"]; got != refresh {
		t.Fatal("the refresh token was dropped or replaced after a CDN page")
	}

	e.sim.ClearFaults()
	e.clock.Advance(time.Minute)
	if _, err := c.Overview(ctx(t)); err != nil {
		t.Fatalf("Overview once the token endpoint is back: %v", err)
	}
	if got := readState(t, e.state)["refresh_token"]; got == refresh {
		t.Error("the refresh did not happen once the token endpoint was back")
	}
	if exp, ok := c.TokenExpiry(); !ok || exp.Sub(e.clock.Now()) < 119*time.Minute {
		t.Errorf("token expiry = %v, %v; want a fresh 2h token", exp, ok)
	}
}

// With nothing to renew it with, a browser access token still serves until it expires.
func TestAccessTokenAloneServesUntilItExpires(t *testing.T) {
	e := newEnv(t, simulator.Config{AccessTokenTTL: 2 * time.Hour})
	access, _ := e.sim.IssueTokens()
	cfg := e.tokenConfig(access, "")
	c := e.client(cfg)
	e.clock.Advance(110 * time.Minute) // 10 minutes left, well inside the refresh margin
	if _, err := c.Overview(ctx(t)); err != nil {
		t.Fatalf("Overview with 10 minutes left on the token: %v", err)
	}
	e.clock.Advance(11 * time.Minute)
	if _, err := c.Overview(ctx(t)); !errors.Is(err, client.ErrNoCredentials) {
		t.Fatalf("after expiry: err = %v, want ErrNoCredentials", err)
	}
	if strings.Contains(e.logs.String(), access) {
		t.Error("the access token leaked into the logs")
	}
}

// TokenExpiry is read by every scrape; it must not wait for a login in progress.
func TestTokenExpiryDoesNotWaitForALogin(t *testing.T) {
	e := newEnv(t, simulator.Config{})
	e.sim.InjectFault(simulator.EndpointLogin, simulator.Fault{Delay: 3 * time.Second, Times: 1})
	c := e.client(e.config())
	loggedIn := make(chan error, 1)
	go func() {
		_, err := c.Me(ctx(t))
		loggedIn <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for e.sim.Requests(simulator.EndpointLogin) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if e.sim.Requests(simulator.EndpointLogin) == 0 {
		t.Fatal("the login never started")
	}
	expiry := make(chan bool, 1)
	go func() {
		_, ok := c.TokenExpiry()
		expiry <- ok
	}()
	select {
	case ok := <-expiry:
		if ok {
			t.Error("an expiry was reported before any token was obtained")
		}
	case err := <-loggedIn:
		t.Fatalf("TokenExpiry waited for the login to end (login: %v)", err)
	}
	if err := <-loggedIn; err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, ok := c.TokenExpiry(); !ok {
		t.Error("no expiry after the login")
	}
}

// A failure after the hidden form is posted is reported, not lost (it once was, and the login
// went on with no URL and panicked).
func TestLoginReportsACallbackFailure(t *testing.T) {
	e := newEnv(t, simulator.Config{})
	e.sim.InjectFault(simulator.EndpointCallback, simulator.Fault{Status: http.StatusFound,
		Header: http.Header{"Location": {"/authorize/resume?again=1"}}})
	_, err := e.client(e.config()).Me(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "redirect loop") {
		t.Errorf("err = %v, want the callback's redirect loop", err)
	}
}

func TestSuppliedTokensYieldToTheirSavedSuccessors(t *testing.T) {
	e := newEnv(t, simulator.Config{AccessTokenTTL: 2 * time.Hour})
	access, refresh := e.sim.IssueTokens()
	cfg := e.tokenConfig(access, refresh)
	c := e.client(cfg)
	e.clock.Advance(90 * time.Minute) // forces a refresh, rotating the refresh token
	if _, err := c.Overview(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// Restarted with the same (now rotated away) tokens on the command line: the saved
	// successors must be used, or the exporter would lock itself out.
	e.clock.Advance(2 * time.Hour)
	c2 := e.client(cfg)
	if _, err := c2.Overview(ctx(t)); err != nil {
		t.Fatalf("after restart with the original tokens: %v", err)
	}
}

func TestRateLimitIsHonoured(t *testing.T) {
	for name, retryAfter := range map[string]func(now time.Time) string{
		"seconds":   func(time.Time) string { return "120" },
		"http-date": func(now time.Time) string { return now.Add(2 * time.Minute).UTC().Format(http.TimeFormat) },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, simulator.Config{})
			c := e.client(e.config())
			if _, err := c.Overview(ctx(t)); err != nil {
				t.Fatal(err)
			}
			e.sim.InjectFault(simulator.EndpointOverview, simulator.Fault{Status: 429, Body: `{}`, Header: http.Header{"Retry-After": {retryAfter(e.clock.Now())}}, Times: 1})
			var rl *client.RateLimitedError
			if _, err := c.Overview(ctx(t)); !errors.As(err, &rl) {
				t.Fatalf("err = %v, want RateLimitedError", err)
			}
			before := e.sim.Requests(simulator.EndpointOverview)
			e.clock.Advance(time.Minute)
			if _, err := c.Overview(ctx(t)); !errors.As(err, &rl) {
				t.Fatalf("within Retry-After: err = %v, want RateLimitedError", err)
			}
			if n := e.sim.Requests(simulator.EndpointOverview); n != before {
				t.Errorf("requests within Retry-After = %d, want none", n-before)
			}
			e.clock.Advance(90 * time.Second)
			if _, err := c.Overview(ctx(t)); err != nil {
				t.Fatalf("after Retry-After: %v", err)
			}
		})
	}
}

// A 429 of the login waits on the auth host only: the API goes on with the token there is, and
// an API 429 does not hold up the login either.
func TestRateLimitsAreKeptPerHost(t *testing.T) {
	e := newEnv(t, simulator.Config{Workouts: 10})
	c := e.client(e.config())
	if _, err := c.Me(ctx(t)); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(37 * time.Hour) // 11h of 48h left: a renewal is due, the token still valid
	e.sim.RevokeRefreshTokens()     // so the renewal is a password login
	e.sim.InjectFault(simulator.EndpointLogin, simulator.Fault{Status: 429, Body: `{}`, Header: http.Header{"Retry-After": {"600"}}})
	before := e.sim.Requests(simulator.EndpointMe)
	for i := 0; i < 3; i++ {
		if _, err := c.Me(ctx(t)); err != nil {
			t.Fatalf("call %d with a valid token while the login waits: %v", i, err)
		}
		e.clock.Advance(2 * time.Minute)
	}
	if n := e.sim.Requests(simulator.EndpointMe) - before; n != 3 {
		t.Errorf("%d API calls reached Peloton, want 3", n)
	}

	e2 := newEnv(t, simulator.Config{Workouts: 10, AccessTokenTTL: 2 * time.Hour})
	c2 := e2.client(e2.config())
	if _, err := c2.Me(ctx(t)); err != nil {
		t.Fatal(err)
	}
	e2.sim.InjectFault(simulator.EndpointOverview, simulator.Fault{Status: 429, Body: `{}`, Header: http.Header{"Retry-After": {"7200"}}, Times: 1})
	c2.Overview(ctx(t))
	e2.clock.Advance(100 * time.Minute) // inside the renew margin
	e2.sim.RevokeRefreshTokens()
	if _, err := c2.Me(ctx(t)); !errors.As(err, new(*client.RateLimitedError)) {
		t.Fatalf("the API host's wait: err = %v, want it to hold", err)
	}
	if n := e2.sim.Requests(simulator.EndpointLogin); n != 2 {
		t.Errorf("%d logins, want 2: the API's wait must not hold up the login", n)
	}
}

func TestAPIErrorsAreClear(t *testing.T) {
	cases := []struct {
		name  string
		fault simulator.Fault
		want  string
	}{
		{"server error", simulator.Fault{Status: 503, Body: `{"status":503,"message":"Service Unavailable"}`}, "HTTP 503: Service Unavailable"},
		{"cdn block page", simulator.Fault{Status: 403, Body: `<html><body>Attention Required! | Cloudflare</body></html>`, Header: http.Header{"Content-Type": {"text/html"}}}, "HTML page"},
		{"retired login", simulator.Fault{Status: 403, Body: `{"status":403,"message":"Access forbidden. Endpoint no longer accepting requests."}`}, "retired"},
		{"malformed json", simulator.Fault{Status: 200, Body: `{"streaks": {"current_weekly": 3`}, "decoding"},
		{"wrong type", simulator.Fault{Status: 200, Body: `{"streaks": {"current_weekly": {"n": 3}}}`}, "current_weekly"},
		{"empty 200", simulator.Fault{Status: 200, Body: ` `}, "empty answer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, simulator.Config{})
			c := e.client(e.config())
			e.sim.InjectFault(simulator.EndpointOverview, tc.fault)
			_, err := c.Overview(ctx(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestBodySizeIsLimited(t *testing.T) {
	e := newEnv(t, simulator.Config{})
	cfg := e.config()
	cfg.MaxBodyBytes = 64 << 10
	c := e.client(cfg)
	e.sim.InjectFault(simulator.EndpointOverview, simulator.Fault{Status: 200, Body: `{"x":"` + strings.Repeat("a", 1<<20) + `"}`})
	if _, err := c.Overview(ctx(t)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("err = %v, want a size-limit error", err)
	}
}

func TestBadStateFileIsIgnored(t *testing.T) {
	for name, content := range map[string]string{"corrupt": "{not json", "empty": "", "wrong version": `{"version":99,"access_token":"x"}`} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, simulator.Config{})
			if err := os.WriteFile(e.state, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			c := e.client(e.config())
			if _, err := c.Overview(ctx(t)); err != nil {
				t.Fatalf("Overview with a %s state file: %v", name, err)
			}
			if readState(t, e.state)["access_token"] == nil {
				t.Error("the state file was not rewritten with good tokens")
			}
		})
	}
}

func TestUnwritableStateFileIsReportedOnce(t *testing.T) {
	e := newEnv(t, simulator.Config{AccessTokenTTL: 2 * time.Hour})
	blocker := filepath.Join(t.TempDir(), "not-a-directory")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.StateFile = filepath.Join(blocker, "state.json") // its parent is a file: never writable, even for root
	c := e.client(cfg)
	for i := 0; i < 3; i++ {
		if _, err := c.Overview(ctx(t)); err != nil {
			t.Fatalf("Overview with an unwritable state file: %v", err)
		}
		e.clock.Advance(90 * time.Minute) // a refresh, so another save
	}
	if n := strings.Count(e.logs.String(), "cannot save tokens"); n != 1 {
		t.Errorf("the unwritable state file was reported %d times, want once:\n%s", n, e.logs.String())
	}
}

func TestWorldReadableStateFileIsWarnedAboutAndTightened(t *testing.T) {
	e := newEnv(t, simulator.Config{})
	c := e.client(e.config())
	if _, err := c.Overview(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.state, 0o644); err != nil {
		t.Fatal(err)
	}
	e.client(e.config()) // a restart reads the file, and tightens it without waiting for a save
	if !strings.Contains(e.logs.String(), "readable by other users") {
		t.Error("a world-readable state file was not warned about")
	}
	readState(t, e.state) // asserts mode 0600 again
}

// Issue 14, 9: a state file path that is a symlink to some other file: that file is neither
// chmod-ed (its content is no state file) nor overwritten, and the link is not replaced.
func TestStateFileSymlinkToAnotherFileIsLeftAlone(t *testing.T) {
	e := newEnv(t, simulator.Config{})
	other := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(other, []byte("not a state file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(other, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, e.state); err != nil {
		t.Fatal(err)
	}
	c := e.client(e.config())
	if _, err := c.Overview(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(other); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("the other file's mode is now %v (%v), want 0644 untouched", fi.Mode().Perm(), err)
	}
	if b, _ := os.ReadFile(other); string(b) != "not a state file" {
		t.Errorf("the other file was overwritten: %.100s", b)
	}
	if fi, err := os.Lstat(e.state); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced by a regular file (%v)", err)
	}
	if !strings.Contains(e.logs.String(), "refusing to write") {
		t.Errorf("the refusal to save was not logged:\n%s", e.logs.String())
	}
}

// Issue 14, 9: a symlink to a real state file is read, tightened and saved through.
func TestStateFileSymlinkToAStateFileIsWrittenThrough(t *testing.T) {
	e := newEnv(t, simulator.Config{})
	real := filepath.Join(t.TempDir(), "state.json")
	cfg := e.config()
	cfg.StateFile = real
	if _, err := e.client(cfg).Overview(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(real, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, e.state); err != nil {
		t.Fatal(err)
	}
	before := testkit.ReadFile(t, real)
	e.sim.RevokeAccessTokens() // the next request refreshes and saves the new tokens
	c := e.client(e.config())
	if _, err := c.Overview(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(e.state); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced by a regular file (%v)", err)
	}
	readState(t, real) // asserts mode 0600
	if testkit.ReadFile(t, real) == before {
		t.Error("the renewed tokens were not saved through the symlink")
	}
	if strings.Contains(e.logs.String(), "cannot save") {
		t.Errorf("saving through the symlink failed:\n%s", e.logs.String())
	}
}
