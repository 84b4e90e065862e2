package simulator

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// signInAs runs the whole login as the member who signs in with username and password.
func signInAs(t *testing.T, sim *Simulator, username, password string) tokenResponse {
	t.Helper()
	f := newFlow(t, sim)
	f.authorize()
	resp, page := f.login(password, func(b map[string]string) { b["username"] = username })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login as %s: status %d, body %q", username, resp.StatusCode, page)
	}
	resp, tok, oe := f.exchange(f.callback(page), f.verifier)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token for %s: status %d, %+v", username, resp.StatusCode, oe)
	}
	return tok
}

func TestHouseholdMembersSignInWithTheirOwnCredentials(t *testing.T) {
	sam, kim := DemoMember(1), DemoMember(2)
	sim, _ := startSim(t, Config{Workouts: 120, Household: []Member{sam}})
	if err := sim.AddMember(kim); err != nil { // a profile added while it runs
		t.Fatal(err)
	}
	if err := sim.AddMember(Member{Username: "SAM@peloton.example", Password: "x"}); err == nil {
		t.Error("a second member with the same (case-folded) login was accepted")
	}

	ids := map[string]string{}
	for _, m := range []Member{DemoMember(0), sam, kim} {
		tok := signInAs(t, sim, m.Username, m.Password)
		status, body := apiGet(t, sim, tok.AccessToken, "/api/me", true)
		var me profile
		if status != http.StatusOK || json.Unmarshal(body, &me) != nil {
			t.Fatalf("/api/me as %s: %d %s", m.Username, status, body)
		}
		want, err := sim.UserIDOf(m.Username)
		if err != nil || me.ID != want || me.Email != m.Username {
			t.Errorf("/api/me as %s: id %s email %s, want id %s (%v)", m.Username, me.ID, me.Email, want, err)
		}
		ids[m.Username] = me.ID
		// Each reads its own history, of its own size.
		status, body = apiGet(t, sim, tok.AccessToken, "/api/user/"+me.ID+"/workouts?limit=1", true)
		var pg workoutsPage
		if status != http.StatusOK || json.Unmarshal(body, &pg) != nil || pg.Total == 0 || pg.Data[0].UserID != me.ID {
			t.Errorf("%s's workouts: %d %.200s", m.Username, status, body)
		}
		// The settings follow the member: sam is metric.
		_, body = apiGet(t, sim, tok.AccessToken, "/api/user/"+me.ID+"/settings", true)
		var st settings
		_ = json.Unmarshal(body, &st)
		if want := m.withDefaults(0).DistanceUnit; st.DistanceUnit != want {
			t.Errorf("%s's distance unit %q, want %q", m.Username, st.DistanceUnit, want)
		}
	}
	if len(map[string]bool{ids[DemoUsername]: true, ids[sam.Username]: true, ids[kim.Username]: true}) != 3 {
		t.Fatalf("members share an id: %v", ids)
	}

	// One member's token cannot read another's data.
	access, _, err := sim.IssueTokensFor(sam.Username)
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := apiGet(t, sim, access, "/api/user/"+ids[kim.Username]+"/overview", true); status != http.StatusForbidden {
		t.Errorf("sam's token read kim's overview: %d", status)
	}

	// Another member's password is a wrong password, as is an unknown user.
	for _, c := range []struct{ user, password string }{{sam.Username, kim.Password}, {"nobody@peloton.example", sam.Password}} {
		f := newFlow(t, sim)
		f.authorize()
		resp, body := f.login(c.password, func(b map[string]string) { b["username"] = c.user })
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("login as %s with a password not its own: %d %s", c.user, resp.StatusCode, body)
		}
	}

	ins := sim.SignIns()
	accepted := 0
	for _, in := range ins {
		if in.Accepted {
			accepted++
		}
		if in.At.IsZero() || time.Since(in.At) > time.Minute {
			t.Errorf("sign-in at %v: want the wall clock", in.At)
		}
	}
	if len(ins) != 5 || accepted != 3 {
		t.Errorf("sign-ins recorded: %+v; want 3 accepted and 2 refused", ins)
	}
	for _, m := range []Member{sam, kim} {
		found := false
		for _, s := range sim.Secrets() {
			found = found || s == m.Password
		}
		if !found {
			t.Errorf("Secrets() lacks %s's password", m.Username)
		}
	}
}

// A fault for one member leaves the others' requests alone.
func TestFaultForOneMember(t *testing.T) {
	sam := DemoMember(1)
	sim, _ := startSim(t, Config{Workouts: 50, Household: []Member{sam}})
	sim.InjectFault(EndpointMe, Fault{Member: sam.Username, Status: http.StatusServiceUnavailable, Body: "{}"})
	mine, _ := sim.IssueTokens()
	theirs, _, _ := sim.IssueTokensFor(sam.Username)
	for range 2 {
		if status, _ := apiGet(t, sim, mine, "/api/me", true); status != http.StatusOK {
			t.Errorf("the first member's /api/me: %d, want 200", status)
		}
		if status, _ := apiGet(t, sim, theirs, "/api/me", true); status != http.StatusServiceUnavailable {
			t.Errorf("sam's /api/me: %d, want the fault's 503", status)
		}
	}
}
