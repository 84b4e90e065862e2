package client_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/internal/conformance"
	"github.com/peloton-exporter/peloton_exporter/internal/syncbuf"
)

// TestLoginConformsToTheLiveExchange runs the client, with its default URLs, against a replay
// of the live exchange as the public record documents it (internal/conformance), independent
// of the simulator: every request must be what the live service wants, step by step, and
// every answer must be understood as the live one means it.
// errRateLimited stands for a *client.RateLimitedError in the table below, errServiceNotFound
// for the error /authorize sends back for an unknown audience, with its description.
var errRateLimited, errServiceNotFound = errors.New("rate limited"), errors.New("service not found")

func TestLoginConformsToTheLiveExchange(t *testing.T) {
	tr, err := conformance.Load()
	if err != nil {
		t.Fatal(err)
	}
	for flow, want := range map[string]error{
		"success":          nil,
		"older_body":       nil,
		"wrong_password":   client.ErrCredentialsRefused,
		"request_rejected": client.ErrLoginRejected,
		"account_blocked":  client.ErrAccountBlocked,
		"verification":     client.ErrVerificationRequired,
		"ip_throttled":     errRateLimited, // the same code as a blocked account, and no block
		"authorize_error":  errServiceNotFound,
	} {
		t.Run(flow, func(t *testing.T) {
			replay, err := conformance.StartReplay(tr.Flow(flow))
			if err != nil {
				t.Fatal(err)
			}
			defer replay.Close()
			logs := &syncbuf.Buffer{}
			cfg := client.Config{Username: "member@example.com", Password: "correct horse", Transport: replay.Transport(),
				Timeout: 5 * time.Second, Logger: log.NewLogfmtLogger(logs)}
			if errors.Is(want, errServiceNotFound) {
				cfg.Audience = "https://api.onepeloton.com/v2/" // one Peloton's Auth0 does not know
			}
			c, err := client.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Me(ctx(t)) // the API host is not in the replay: after a login, Me fails there
			switch {
			case want == nil:
				if _, ok := c.TokenExpiry(); !ok {
					t.Errorf("no token after the replayed login: %v", err)
				}
				if err == nil || !strings.Contains(err.Error(), "me:") {
					t.Errorf("err = %v, want the API call (not in the replay) to fail", err)
				}
			case errors.Is(want, errServiceNotFound):
				if err == nil || !strings.Contains(err.Error(), "access_denied: Service not found: https://api.onepeloton.com/v2/") {
					t.Errorf("err = %v, want the error sent back with its description", err)
				}
			case errors.Is(want, errRateLimited):
				var rl *client.RateLimitedError
				if !errors.As(err, &rl) || errors.Is(err, client.ErrAccountBlocked) || c.CredentialsRefused() {
					t.Errorf("err = %v (stopped: %v), want a rate limit that lifts by itself", err, c.CredentialsRefused())
				}
			case !errors.Is(err, want):
				t.Errorf("err = %v, want %v", err, want)
			}
			for _, p := range replay.Problems() {
				t.Error(p)
			}
			if strings.Contains(logs.String(), "correct horse") || (err != nil && strings.Contains(err.Error(), "correct horse")) {
				t.Error("the password leaked")
			}
		})
	}
}
