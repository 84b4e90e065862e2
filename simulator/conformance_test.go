package simulator_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
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
	rec := &recorder{next: sim.Transport()}
	c, err := client.New(client.Config{Username: simulator.DemoUsername, Password: password, Transport: rec, Timeout: 5 * time.Second})
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

func TestSimulatorConformsToTheLiveExchange(t *testing.T) {
	tr, err := conformance.Load()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := simulator.Start(simulator.Config{Workouts: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	t.Run("success", func(t *testing.T) { conform(t, tr.Flow("success"), login(t, sim, simulator.DemoPassword)) })
	t.Run("wrong password", func(t *testing.T) { conform(t, tr.Flow("wrong_password"), login(t, sim, "wrong-password")) })
	t.Run("ip throttled", func(t *testing.T) {
		sim, err := simulator.Start(simulator.Config{Workouts: 10, IPThrottleAfter: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer sim.Close()
		login(t, sim, "wrong-password")
		login(t, sim, "wrong-password")
		conform(t, tr.Flow("ip_throttled"), login(t, sim, simulator.DemoPassword))
	})
	t.Run("account blocked", func(t *testing.T) {
		// Each new client risks one login; ten refusals from this IP block the account.
		for i := 0; i < 9; i++ { // one refusal above already
			login(t, sim, "wrong-password")
		}
		conform(t, tr.Flow("account_blocked"), login(t, sim, simulator.DemoPassword))
	})
}
