package client_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// Three accounts of one household need a password login at the same moment: the shared spacer
// lets one log in, gives the others turns a spacing apart in the order they asked, and lets
// each in at its turn; no two logins are closer than the spacing.
func TestLoginSpacerGivesTheHouseholdTurns(t *testing.T) {
	members := []simulator.Member{simulator.DemoMember(0), simulator.DemoMember(1), simulator.DemoMember(2)}
	e := newEnv(t, simulator.Config{Workouts: 30, Household: members[1:]})
	const spacing = time.Minute
	spacer := client.NewLoginSpacer(spacing)
	var clients []*client.Client
	for _, m := range members {
		cfg := e.config()
		cfg.Username, cfg.Password = m.Username, m.Password
		cfg.StateFile = filepath.Join(t.TempDir(), "state.json")
		cfg.LoginSpacer = spacer
		clients = append(clients, e.client(cfg))
	}

	// At once: the first logs in, the others are told their turns, a minute apart.
	start := e.clock.Now()
	var turns []time.Time
	for i, c := range clients {
		_, err := c.UserID(ctx(t))
		if i == 0 {
			if err != nil {
				t.Fatalf("the first account could not log in: %v", err)
			}
			continue
		}
		var lb *client.LoginBackoffError
		if !errors.As(err, &lb) || !lb.Turn {
			t.Fatalf("account %d: %v, want to wait for its turn", i, err)
		}
		if !strings.Contains(err.Error(), "--peloton.login-spacing") {
			t.Errorf("the wait does not say why: %v", err)
		}
		turns = append(turns, lb.Until)
	}
	if want := []time.Time{start.Add(spacing), start.Add(2 * spacing)}; !turns[0].Equal(want[0]) || !turns[1].Equal(want[1]) {
		t.Fatalf("turns %v, want %v", turns, want)
	}

	// Asking again early changes nothing; neither does the third coming before the second.
	e.clock.Advance(30 * time.Second)
	if _, err := clients[2].UserID(ctx(t)); err == nil {
		t.Fatal("the third account logged in 30s after the first")
	}
	e.clock.Advance(30 * time.Second) // the second's turn
	if _, err := clients[2].UserID(ctx(t)); err == nil {
		t.Fatal("the third account took the second's turn")
	}
	if _, err := clients[1].UserID(ctx(t)); err != nil {
		t.Fatalf("the second account at its turn: %v", err)
	}
	e.clock.Advance(spacing)
	if _, err := clients[2].UserID(ctx(t)); err != nil {
		t.Fatalf("the third account at its turn: %v", err)
	}
	accepted := 0
	for _, in := range e.sim.SignIns() {
		if in.Accepted {
			accepted++
		}
	}
	if accepted != 3 {
		t.Errorf("%d logins, want one per account: %+v", accepted, e.sim.SignIns())
	}
	// An account with tokens never asks for a turn: a refresh is no login.
	if _, err := clients[0].Overview(ctx(t)); err != nil {
		t.Errorf("the first account, logged in, could not read: %v", err)
	}
}

// A turn that is not taken does not block the accounts behind it, and a late account that
// comes back after its turn still gets in, spaced from the logins before it.
func TestLoginSpacerSkipsAnUntakenTurn(t *testing.T) {
	members := []simulator.Member{simulator.DemoMember(0), simulator.DemoMember(1), simulator.DemoMember(2)}
	e := newEnv(t, simulator.Config{Workouts: 30, Household: members[1:]})
	spacer := client.NewLoginSpacer(time.Minute)
	var clients []*client.Client
	for _, m := range members {
		cfg := e.config()
		cfg.Username, cfg.Password = m.Username, m.Password
		cfg.StateFile = ""
		cfg.LoginSpacer = spacer
		clients = append(clients, e.client(cfg))
	}
	for _, c := range clients {
		_, _ = c.UserID(ctx(t)) // the first logs in; the second gets 1m, the third 2m
	}
	e.clock.Advance(2 * time.Minute) // the second never comes back for its turn
	if _, err := clients[2].UserID(ctx(t)); err != nil {
		t.Fatalf("the third account at its turn, the second's untaken: %v", err)
	}
	e.clock.Advance(10 * time.Second) // the second, late: the slot is a minute after the third's
	_, err := clients[1].UserID(ctx(t))
	var lb *client.LoginBackoffError
	if !errors.As(err, &lb) || !lb.Turn || lb.Until.Sub(e.clock.Now()) != 50*time.Second {
		t.Fatalf("the late second account: %v, want its turn 50s from now", err)
	}
	e.clock.Advance(50 * time.Second)
	if _, err := clients[1].UserID(ctx(t)); err != nil {
		t.Fatalf("the late second account at its new turn: %v", err)
	}
}

// Auth0's Suspicious IP Throttling is on the address: once one account is told, no account
// posts its password until the throttle lifts (logged once), while token refreshes go on.
func TestIPThrottlingStopsEveryAccountsPasswordLogins(t *testing.T) {
	members := []simulator.Member{simulator.DemoMember(0), simulator.DemoMember(1), simulator.DemoMember(2)}
	e := newEnv(t, simulator.Config{Workouts: 30, Household: members[1:], IPThrottleAfter: 1})
	const spacing = time.Minute
	spacer := client.NewLoginSpacer(spacing)
	account := func(m simulator.Member, password string) *client.Client {
		cfg := e.config()
		cfg.Username, cfg.Password, cfg.StateFile, cfg.LoginSpacer = m.Username, password, "", spacer
		return e.client(cfg)
	}
	_, refresh, err := e.sim.IssueTokensFor(members[2].Username)
	if err != nil {
		t.Fatal(err)
	}
	refreshing := e.tokenConfig("", refresh)
	refreshing.StateFile, refreshing.LoginSpacer = "", spacer

	// A wrong password: the address is throttled from here on.
	if _, err := account(members[0], "a-wrong-password").UserID(ctx(t)); !errors.Is(err, client.ErrCredentialsRefused) {
		t.Fatalf("the wrong password: %v", err)
	}
	e.clock.Advance(spacing)
	if _, err := account(members[1], members[1].Password).UserID(ctx(t)); !strings.Contains(fmt.Sprint(err), "throttles logins from this IP") {
		t.Fatalf("the next account at its turn: %v, want Auth0's throttling", err)
	}
	posts := e.sim.Requests(simulator.EndpointLogin)

	// Another account's turn comes: it does not post.
	e.clock.Advance(spacing)
	other := account(members[0], members[0].Password)
	_, err = other.UserID(ctx(t))
	var rl *client.RateLimitedError
	if !errors.As(err, &rl) || rl.Until.Sub(e.clock.Now()) != 14*time.Minute {
		t.Errorf("an account during the throttling: %v, want to wait for its end, 14m from now", err)
	}
	if n := e.sim.Requests(simulator.EndpointLogin) - posts; n != 0 {
		t.Errorf("%d credentials posts while Auth0 throttles the address", n)
	}
	if n := strings.Count(e.logs.String(), "Auth0 throttles logins from this IP address"); n != 1 {
		t.Errorf("the throttling logged %d times, want once:\n%s", n, e.logs)
	}
	// A refresh is no login: it goes on.
	if _, err := e.client(refreshing).UserID(ctx(t)); err != nil {
		t.Errorf("a token refresh during the throttling: %v", err)
	}

	// Once it lifts, logins resume (the simulator grants an attempt every 14.4 minutes).
	e.clock.Advance(14 * time.Minute)
	if _, err := other.UserID(ctx(t)); err != nil {
		t.Errorf("after the throttling: %v", err)
	}
}
