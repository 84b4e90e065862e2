package simulator_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/internal/conformance"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// The simulator's answers must have the shape of the live ones as the public record documents
// them (internal/conformance): statuses, media types, redirects, cookies and their attributes,
// bodies. The client drives it; the transcript, not the client, is the judge.

// exchange is one request to an auth host and its answer, as recorded.
type exchange struct {
	req      *http.Request
	reqBody  []byte
	resp     *http.Response
	respBody []byte
}

// recorder is a transport that keeps every exchange with the auth hosts.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	got  []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := r.next.RoundTrip(req)
	if err != nil || req.URL.Hostname() == simulator.APIHost {
		return resp, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.got = append(r.got, exchange{req, reqBody, resp, body})
	r.mu.Unlock()
	return resp, nil
}

// login runs one client login against sim and returns what it exchanged with the auth hosts.
func login(t *testing.T, sim *simulator.Simulator, password string) []exchange {
	t.Helper()
	return loginWith(t, sim, client.Config{Password: password})
}

// loginWith is login with a config of the client's own.
func loginWith(t *testing.T, sim *simulator.Simulator, cfg client.Config) []exchange {
	t.Helper()
	rec := &recorder{next: sim.Transport()}
	cfg.Username, cfg.Transport, cfg.Timeout = simulator.DemoUsername, rec, 5*time.Second
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c.Me(ctx)
	return rec.got
}

// conform checks each exchange against the flow's step at the same place.
func conform(t *testing.T, flow []*conformance.Step, got []exchange) {
	t.Helper()
	if len(got) != len(flow) {
		t.Errorf("%d exchanges with the auth hosts, want %d as in the transcript", len(got), len(flow))
	}
	for i := range min(len(got), len(flow)) {
		step, x := flow[i], got[i]
		for _, p := range step.CheckResponseShape(x.resp, x.respBody) {
			t.Error(p)
		}
		if step.Request.Host != x.req.URL.Hostname() || step.Request.Path != x.req.URL.Path {
			t.Errorf("exchange %d: %s%s, want %s%s", i, x.req.URL.Hostname(), x.req.URL.Path, step.Request.Host, step.Request.Path)
		}
	}
}

// rejectedLogin posts the credentials with the authorize state in place of the transaction's,
// as the homebridge client's first live run did (which the client no longer can), and returns
// what it exchanged.
func rejectedLogin(t *testing.T, sim *simulator.Simulator) []exchange {
	t.Helper()
	rec := &recorder{next: sim.Transport()}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Transport: rec, Jar: jar, Timeout: 5 * time.Second}
	verifier := "a-verifier-of-the-length-pkce-wants-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {simulator.DefaultClientID}, "audience": {simulator.DefaultAudience},
		"scope": {client.DefaultScope}, "response_type": {"code"}, "response_mode": {"query"},
		"redirect_uri": {simulator.DefaultRedirectURI}, "state": {"the-authorize-state"}, "nonce": {"a-nonce"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"auth0Client": {client.DefaultAuth0Client}}
	resp, err := hc.Get(sim.AuthURL() + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	body, _ := json.Marshal(map[string]string{"client_id": simulator.DefaultClientID, "redirect_uri": simulator.DefaultRedirectURI,
		"tenant": "peloton-prod", "response_type": "code", "scope": client.DefaultScope, "audience": simulator.DefaultAudience,
		"_csrf": "x", "state": "the-authorize-state", "_intstate": "deprecated", "nonce": "a-nonce", "username": simulator.DemoUsername,
		"password": simulator.DemoPassword, "connection": "pelo-user-password", "code_challenge": q.Get("code_challenge"), "code_challenge_method": "S256"})
	req, _ := http.NewRequest(http.MethodPost, sim.AuthURL()+"/usernamepassword/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", sim.AuthURL())
	req.Header.Set("Referer", resp.Request.URL.String())
	req.Header.Set("Auth0-Client", client.DefaultAuth0Client)
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return rec.got
}

func startSim(t *testing.T, cfg simulator.Config) *simulator.Simulator {
	t.Helper()
	sim, err := simulator.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// Every flow of the transcript, each from the simulator in the mode that produces it.
func TestSimulatorConformsToTheLiveExchange(t *testing.T) {
	tr, err := conformance.Load()
	if err != nil {
		t.Fatal(err)
	}
	sim := startSim(t, simulator.Config{Workouts: 10})
	covered := map[string]bool{}
	run := func(flow string, f func(t *testing.T) []exchange) {
		covered[flow] = true
		t.Run(flow, func(t *testing.T) { conform(t, tr.Flow(flow), f(t)) })
	}

	run("success", func(t *testing.T) []exchange { return login(t, sim, simulator.DemoPassword) })
	run("older_body", func(t *testing.T) []exchange {
		return login(t, startSim(t, simulator.Config{Workouts: 10, LoginPageWithoutConfig: true}), simulator.DemoPassword)
	})
	run("wrong_password", func(t *testing.T) []exchange { return login(t, sim, "wrong-password") })
	run("request_rejected", func(t *testing.T) []exchange { return rejectedLogin(t, sim) })
	run("verification", func(t *testing.T) []exchange {
		return login(t, startSim(t, simulator.Config{Workouts: 10, VerifyLogins: true}), simulator.DemoPassword)
	})
	run("ip_throttled", func(t *testing.T) []exchange {
		sim := startSim(t, simulator.Config{Workouts: 10, IPThrottleAfter: 2})
		login(t, sim, "wrong-password")
		login(t, sim, "wrong-password")
		return login(t, sim, simulator.DemoPassword)
	})
	run("authorize_error", func(t *testing.T) []exchange {
		return loginWith(t, sim, client.Config{Password: simulator.DemoPassword, Audience: "https://api.onepeloton.com/v2/"})
	})
	run("account_blocked", func(t *testing.T) []exchange {
		// Each new client risks one login; ten refusals from this IP block the account.
		for i := 0; i < 9; i++ { // one refusal above already
			login(t, sim, "wrong-password")
		}
		return login(t, sim, simulator.DemoPassword)
	})
	for flow := range tr.Flows {
		if !covered[flow] {
			t.Errorf("the simulator is not held to the transcript's flow %s", flow)
		}
	}
}
