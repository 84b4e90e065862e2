package conformance

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTranscriptLoadsAndEveryStepNamesItsSources(t *testing.T) {
	tr, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range tr.Steps {
		if len(s.Sources) == 0 || s.Response.Status == 0 || s.Request.Method == "" {
			t.Errorf("step %s is incomplete: %+v", name, s)
		}
	}
	if n := len(tr.Flow("success")); n != 10 {
		t.Errorf("the success flow has %d steps, want 10 (six hops after the hidden form)", n)
	}
}

// The checks can fail: a request and an answer that are not the live ones are reported.
func TestChecksReportDifferences(t *testing.T) {
	tr, _ := Load()
	step := tr.Steps["sso_login_domain"]
	req := httptest.NewRequest(http.MethodGet, "https://auth-orca.onepeloton.com/sso/login_domain?state=redacted-sso-state&visited_domain=onepeloton.com", nil)
	req.AddCookie(&http.Cookie{Name: "auth0", Value: "x"}) // another host's, and not its own
	p := strings.Join(step.CheckRequest(req, nil, Vars{}), "\n")
	for _, want := range []string{"cookie peloton_logged_in_user_hash was not sent", "cookie auth0, which another host or path set, was sent"} {
		if !strings.Contains(p, want) {
			t.Errorf("CheckRequest did not report %q:\n%s", want, p)
		}
	}
	rec := httptest.NewRecorder()
	rec.Header().Set("Location", "https://auth.onepeloton.com/continue?state=x")
	rec.Header().Add("Set-Cookie", "peloton_visited_domains=x; Path=/; HttpOnly")
	rec.WriteHeader(http.StatusFound)
	p = strings.Join(step.CheckResponseShape(rec.Result(), nil), "\n")
	for _, want := range []string{"status 302, want 303", "cookies set"} {
		if !strings.Contains(p, want) {
			t.Errorf("CheckResponseShape did not report %q:\n%s", want, p)
		}
	}
}

// The replay judges the scheme by the connection: a request that did not come over TLS is
// reported as sent over http.
func TestReplayReportsARequestOverPlainHTTP(t *testing.T) {
	tr, _ := Load()
	replay, err := StartReplay(tr.Flow("wrong_password"))
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Close()
	req := httptest.NewRequest(http.MethodGet, "http://auth.onepeloton.com/authorize?state=s", nil) // no TLS
	replay.serve(httptest.NewRecorder(), req)
	if p := strings.Join(replay.Problems(), "\n"); !strings.Contains(p, "authorize: sent over http") {
		t.Errorf("a plain-HTTP request was not reported:\n%s", p)
	}
}
