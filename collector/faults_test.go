package collector_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/collector"
	"github.com/peloton-exporter/peloton_exporter/internal/syncbuf"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// switchableProxy forwards TCP to the simulator's API and can be switched off, so that the
// client meets a real "connection refused" on the same address.
type switchableProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func newProxy(t *testing.T, target string) *switchableProxy {
	p := &switchableProxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *switchableProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *switchableProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *switchableProxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("re-listening on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// faultEnv is an exporter whose API traffic passes through a switchable proxy.
type faultEnv struct {
	*env
	proxy *switchableProxy
}

func newFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	clock := simulator.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	sim, err := simulator.Start(simulator.Config{Now: clock.Now, Workouts: 300})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	proxy := newProxy(t, sim.HostAddr(simulator.APIHost))
	// The client uses its default URLs; its API connections go through the proxy.
	tr := sim.Transport()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == simulator.APIHost+":443" {
			var d net.Dialer
			return d.DialContext(ctx, network, proxy.addr)
		}
		return dial(ctx, network, addr)
	}
	logs := &syncbuf.Buffer{}
	logger := log.NewLogfmtLogger(logs)
	c, err := client.New(client.Config{
		Transport: tr,
		Username:  simulator.DemoUsername, Password: simulator.DemoPassword,
		Timeout: time.Second, Logger: logger, Now: clock.Now,
		MaxBodyBytes: 8 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	exp := collector.New(c, collector.Options{TTL: 5 * time.Minute, WeekStart: time.Monday, Logger: logger, Now: clock.Now, NoDetail: true})
	t.Cleanup(exp.Close)
	return &faultEnv{env: &env{sim: sim, clock: clock, exp: exp, logs: logs}, proxy: proxy}
}

// dataText is the exposition of every series except peloton_up and the health series, which
// a failure is expected to change (peloton_weekly_streak_derived too: with the overview down
// the streak comes from the history).
func dataText(t *testing.T, exp prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(exp)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		switch mf.GetName() {
		case "peloton_up", "peloton_source_up", "peloton_source_last_success_timestamp_seconds", "peloton_refresh_duration_seconds", "peloton_api_requests_total",
			"peloton_last_refresh_success_timestamp_seconds", "peloton_auth_token_expiry_timestamp_seconds",
			"peloton_weekly_streak_derived", "peloton_auth_credentials_refused":
			continue
		}
		expfmt.MetricFamilyToText(&b, mf)
	}
	return b.String()
}

type faultCase struct {
	name   string
	inject func(e *faultEnv)
	cause  string        // what the log line must name
	wait   time.Duration // how long until Peloton is allowed again (Retry-After, login back-off)
	stayUp bool          // the exporter copes without a failed refresh (e.g. refreshes a token)
	// stuck: only the member can end it (a blocked account, a verification step): the exporter stays down with
	// peloton_auth_credentials_refused 1 and sends no more credentials.
	stuck bool
}

func apiFault(f simulator.Fault) func(e *faultEnv) {
	return func(e *faultEnv) {
		for _, ep := range []string{simulator.EndpointMe, simulator.EndpointOverview, simulator.EndpointWorkouts} {
			e.sim.InjectFault(ep, f)
		}
	}
}

func overviewFault(f simulator.Fault) func(e *faultEnv) {
	return func(e *faultEnv) { e.sim.InjectFault(simulator.EndpointOverview, f) }
}

// loginFault forces a new password login and breaks one step of it.
func loginFault(endpoint string, f simulator.Fault) func(e *faultEnv) {
	return func(e *faultEnv) {
		e.sim.RevokeAccessTokens()
		e.sim.RevokeRefreshTokens()
		e.sim.InjectFault(endpoint, f)
	}
}

func html(body string) simulator.Fault {
	return simulator.Fault{Status: 200, Body: body, Header: http.Header{"Content-Type": {"text/html; charset=utf-8"}}}
}

func faultCases() []faultCase {
	cases := []faultCase{
		{name: "server error", inject: apiFault(simulator.Fault{Status: 503, Body: `{"status":503,"message":"Service Unavailable"}`}), cause: "HTTP 503"},
		{name: "429 with Retry-After seconds", inject: apiFault(simulator.Fault{Status: 429, Body: `{}`, Header: http.Header{"Retry-After": {"600"}}}), cause: "rate limited", wait: 11 * time.Minute},
		{name: "429 with Retry-After date", inject: func(e *faultEnv) {
			apiFault(simulator.Fault{Status: 429, Header: http.Header{"Retry-After": {e.clock.Now().Add(10 * time.Minute).Format(http.TimeFormat)}}})(e)
		}, cause: "rate limited", wait: 11 * time.Minute},
		{name: "401 mid-session", inject: func(e *faultEnv) { e.sim.RevokeAccessTokens() }, stayUp: true},
		{name: "rotated refresh token refused", inject: func(e *faultEnv) { e.sim.RevokeAccessTokens(); e.sim.RevokeRefreshTokens() }, cause: "refused the refresh token", stayUp: true},
		{name: "403 HTML from a CDN", inject: apiFault(simulator.Fault{Status: 403, Body: "<!DOCTYPE html><title>Attention Required! | Cloudflare</title>", Header: http.Header{"Content-Type": {"text/html"}}}), cause: "HTML page"},
		{name: "connection refused", inject: func(e *faultEnv) { e.proxy.down() }, cause: "connection refused"},
		{name: "a response that never ends", inject: overviewFault(simulator.Fault{Status: 200, Body: `{"streaks": {`, Stall: true}), cause: "timed out"},
		{name: "truncated JSON", inject: overviewFault(simulator.Fault{Status: 200, Body: `{"workout_counts": {"workouts": [{"slug": "cyc`}), cause: "decoding"},
		{name: "malformed JSON", inject: overviewFault(simulator.Fault{Status: 200, Body: `{"streaks": }`}), cause: "decoding"},
		{name: "50 MB body", inject: overviewFault(simulator.Fault{Status: 200, Body: `{"streaks": {}}`, PadTo: 50 << 20}), cause: "limit"},
		{name: "empty 200", inject: overviewFault(simulator.Fault{Status: 200, Body: ""}), cause: "empty answer"},
		{name: "workouts page not a list", inject: func(e *faultEnv) {
			e.sim.InjectFault(simulator.EndpointWorkouts, simulator.Fault{Status: 200, Body: `{"data": {"id": 1}}`})
		}, cause: "workouts"},
		{name: "workouts pages that repeat for ever", inject: func(e *faultEnv) {
			e.sim.InjectFault(simulator.EndpointWorkouts, simulator.Fault{Status: 200, Body: `{"data": [{"id": "a1", "status": "COMPLETE", "start_time": 1764000000, "end_time": 1764001800, "fitness_discipline": "yoga"}], "total": 9999, "show_next": true}`})
		}, cause: "earlier pages"},
		{name: "workout times that cannot be", inject: func(e *faultEnv) {
			e.sim.InjectFault(simulator.EndpointWorkouts, simulator.Fault{Status: 200, Body: `{"data": [{"id": "odd", "status": "COMPLETE", "start_time": -9.2e18, "end_time": 9.2e18, "fitness_discipline": "cycling"}], "show_next": false}`})
		}, cause: "implausible times", stayUp: true},
		{name: "login page without its config or csrf cookie", inject: loginFault(simulator.EndpointLoginPage,
			html("<html><form><input name=username></form></html>")), cause: "neither a window.injectedConfig nor a _csrf cookie", wait: 16 * time.Minute},
		{name: "login page with an unreadable config", inject: loginFault(simulator.EndpointLoginPage,
			html(`<script>window.injectedConfig = window.injectedConfig || "not base64!";</script>`)), cause: "cannot be read", wait: 16 * time.Minute},
		// Each try could e-mail the member another code: password logins stop until a sign-in.
		{name: "login answer without a form (a verification step)", inject: loginFault(simulator.EndpointLogin,
			html("<html><body>Welcome back!</body></html>")), cause: "verification step", stuck: true},
		{name: "login request rejected (AnomalyDetected)", inject: loginFault(simulator.EndpointLogin, simulator.Fault{Status: 403,
			Body: `{"statusCode":403,"name":"AnomalyDetected","code":"access_denied","description":"Invalid state"}`}), cause: "login page changed", wait: 16 * time.Minute},
		{name: "account blocked (too_many_attempts)", inject: loginFault(simulator.EndpointLogin, simulator.Fault{Status: 429,
			Body: `{"statusCode":429,"name":"AnomalyDetected","code":"too_many_attempts","description":"Your account has been blocked after multiple consecutive login attempts."}`}),
			cause: "blocked password logins for this account", stuck: true},
		{name: "login IP throttled (too_many_attempts that lifts by itself)", inject: loginFault(simulator.EndpointLogin, simulator.Fault{Status: 429,
			Body: `{"statusCode":429,"name":"AnomalyDetected","code":"too_many_attempts","description":"We have detected suspicious login behavior and further attempts will be blocked. Please contact the administrator."}`}),
			cause: "throttles logins from this IP", wait: 16 * time.Minute},
		{name: "login rate limited (x-ratelimit-reset)", inject: func(e *faultEnv) {
			reset := strconv.FormatInt(e.clock.Now().Add(10*time.Minute).Unix(), 10)
			loginFault(simulator.EndpointLogin, simulator.Fault{Status: 429, Body: `{"error":"too_many_requests"}`,
				Header: http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {reset}}})(e)
		}, cause: "rate limited", wait: 16 * time.Minute},
		{name: "login error sent back by redirect", inject: loginFault(simulator.EndpointContinue, simulator.Fault{Status: 302, Header: http.Header{
			"Location": {"https://members.onepeloton.com/callback?error=access_denied&error_description=Access%20denied%20by%20a%20rule&state=x"}}}),
			cause: "access_denied: Access denied by a rule", wait: 16 * time.Minute},
		{name: "login redirected off Peloton's hosts", inject: loginFault(simulator.EndpointContinue, simulator.Fault{Status: 302,
			Header: http.Header{"Location": {"https://collect.example.com/?code=abc"}}}), cause: "redirected off Peloton's hosts", wait: 16 * time.Minute},
		{name: "login form without an action", inject: loginFault(simulator.EndpointLogin, html(`<form method="post"><input type="hidden" name="wa" value="wsignin1.0"><input type="hidden" name="wresult" value="forged"></form>`)), cause: "callback: HTTP 403", wait: 16 * time.Minute},
		{name: "login redirect loop", inject: loginFault(simulator.EndpointAuthorize, simulator.Fault{Status: 302, Header: http.Header{"Location": {"/authorize?again=1"}}}), cause: "redirect loop", wait: 16 * time.Minute},
		{name: "credentials refused", inject: func(e *faultEnv) {
			e.sim.RevokeAccessTokens()
			e.sim.RevokeRefreshTokens()
			e.sim.SetPassword("changed-by-the-member")
		}, cause: "refused the username or password", wait: 16 * time.Minute},
	}
	// A value of a wrong type anywhere in the overview fails the refresh, loudly, rather than
	// being half-read.
	for field, body := range map[string]string{
		"workout_counts":       `{"workout_counts": "many"}`,
		"workouts":             `{"workout_counts": {"workouts": {"cycling": 3}}}`,
		"workout count":        `{"workout_counts": {"workouts": [{"slug": "cycling", "count": true}]}}`,
		"workout slug":         `{"workout_counts": {"workouts": [{"slug": ["cycling"], "count": 1}]}}`,
		"personal_records":     `{"personal_records": {"cycling": 1}}`,
		"record raw_value":     `{"personal_records": [{"slug": "cycling", "records": [{"slug": "300", "raw_value": "lots", "unit_slug": "kj"}]}]}`,
		"record slug":          `{"personal_records": [{"slug": "cycling", "records": [{"slug": {"s": 300}, "raw_value": 1, "unit_slug": "kj"}]}]}`,
		"record workout_date":  `{"personal_records": [{"slug": "cycling", "records": [{"slug": "300", "raw_value": 1, "unit_slug": "kj", "workout_date": [2024]}]}]}`,
		"streaks":              `{"streaks": [114]}`,
		"current_weekly":       `{"streaks": {"current_weekly": "many"}}`,
		"start_date":           `{"streaks": {"start_date_of_current_weekly": {"t": 1}}}`,
		"achievement_counts":   `{"achievement_counts": [1, 2]}`,
		"achievement count":    `{"achievement_counts": {"achievements": [{"count": {}, "template": {"slug": "x"}}]}}`,
		"achievement template": `{"achievement_counts": {"achievements": [{"count": 1, "template": "x"}]}}`,
	} {
		cases = append(cases, faultCase{name: "wrong type in " + field, inject: overviewFault(simulator.Fault{Status: 200, Body: body}), cause: "overview: decoding"})
	}
	return cases
}

// TestFaults runs every fault against a live exporter and checks what is served and logged,
// that nothing secret is logged, that it recovers on its own, and that a failing login is
// tried at most once per back-off window.
func TestFaults(t *testing.T) {
	baseline := runtime.NumGoroutine()
	for _, fc := range faultCases() {
		t.Run(fc.name, func(t *testing.T) {
			e := newFaultEnv(t)
			e.refresh(t)
			e.clock.Advance(16 * time.Minute) // past the login interval of the first login
			e.refresh(t)
			expectSample(t, e.exp, "peloton_up", nil, 1)
			good := dataText(t, e.exp)
			logins := e.sim.Requests(simulator.EndpointLogin)

			fc.inject(e)
			for i := 0; i < 3; i++ { // several refreshes inside one back-off window
				e.clock.Advance(6 * time.Minute / 3)
				e.refresh(t)
			}
			e.clock.Advance(4 * time.Minute)
			e.refresh(t)
			if fc.stayUp {
				expectSample(t, e.exp, "peloton_up", nil, 1)
			} else {
				expectSample(t, e.exp, "peloton_up", nil, 0)
			}
			if got := dataText(t, e.exp); got != good {
				t.Errorf("the data changed during the fault:\n%s", lineDiff(good, got))
			}
			if !strings.Contains(e.logs.String(), fc.cause) {
				t.Errorf("no log line names the cause %q:\n%s", fc.cause, e.logs.String())
			}
			if n := e.sim.Requests(simulator.EndpointLogin) - logins; n > 1 {
				t.Errorf("%d credential posts during one back-off window, want at most 1", n)
			}

			if fc.stuck {
				expectSample(t, e.exp, "peloton_auth_credentials_refused", nil, 1)
				before := e.sim.Requests(simulator.EndpointLogin)
				e.sim.ClearFaults()
				e.clock.Advance(24 * time.Hour)
				e.refresh(t)
				expectSample(t, e.exp, "peloton_up", nil, 0)
				if n := e.sim.Requests(simulator.EndpointLogin) - before; n != 0 {
					t.Errorf("%d credential posts after the account was blocked, want none", n)
				}
				checkNoSecretLogged(t, e)
				return
			}
			expectSample(t, e.exp, "peloton_auth_credentials_refused", nil, 0)
			e.sim.ClearFaults()
			e.sim.SetPassword(simulator.DemoPassword)
			e.proxy.down()
			e.proxy.up(t)
			e.clock.Advance(fc.wait + 5*time.Minute) // retries back off to the TTL
			e.refresh(t)
			expectSample(t, e.exp, "peloton_up", nil, 1)
			checkNoSecretLogged(t, e)
		})
	}
	// Every simulator, proxy, exporter and connection of the cases is closed by now; what they
	// started must be gone too (bounded wait: idle connections close asynchronously).
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline+5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline+5 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after the fault cases, %d before: a leak\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
}

func checkNoSecretLogged(t *testing.T, e *faultEnv) {
	t.Helper()
	for _, secret := range append(e.sim.Secrets(), simulator.DemoPassword) {
		if len(secret) >= 8 && strings.Contains(e.logs.String(), secret) {
			t.Errorf("a secret (%.4s…) is in the logs", secret)
		}
	}
}

func TestRefreshIsBoundedWhenPelotonHangs(t *testing.T) {
	e := newFaultEnv(t)
	e.refresh(t)
	e.sim.InjectFault(simulator.EndpointOverview, simulator.Fault{Delay: time.Hour})
	e.clock.Advance(6 * time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e.exp.Refresh(ctx)
	if ctx.Err() != nil {
		t.Fatal("a refresh against a hanging Peloton outlived the per-request timeout")
	}
	expectSample(t, e.exp, "peloton_up", nil, 0)
}

// lineDiff lists the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ia, ib := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !ib[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ia[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
