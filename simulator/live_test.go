package simulator

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/peloton-exporter/peloton_exporter/internal/conformance"
)

// Tests that the simulator answers as the live service is publicly known to (peloton-api.md
// 1.2, homebridge-peloton SPEC.md 4.1 and fixtures/auth, peloton-to-garmin): the details a
// client that is wrong about Peloton would trip over.

// TestLoginPageIsAuth0s: /authorize redirects to /login, which sets _csrf on the credentials
// post's path only and carries the transaction as window.injectedConfig.
func TestLoginPageIsAuth0s(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	f := newFlow(t, sim)
	c := sim.HTTPClient() // no redirects followed: every hop is looked at
	req, _ := http.NewRequest(http.MethodGet, sim.AuthURL()+"/authorize?"+f.authorizeQuery().Encode(), nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Path != "/login" || loc.Query().Get("protocol") != "oauth2" ||
		loc.Query().Get("client") != DefaultClientID || loc.Query().Get("state") == f.state {
		t.Fatalf("authorize: %d to %s", resp.StatusCode, loc)
	}
	cookieRE := regexp.MustCompile(`^(did|did_compat|auth0|auth0_compat)=[^;]+; Path=/; Expires=[^;]+ GMT; HttpOnly; Secure(; SameSite=None)?$`)
	names := map[string]bool{}
	for _, sc := range resp.Header.Values("Set-Cookie") {
		m := cookieRE.FindStringSubmatch(sc)
		if m == nil || (m[2] != "") == strings.HasSuffix(m[1], "_compat") {
			t.Errorf("authorize Set-Cookie %q is not as Auth0 sends it", sc)
			continue
		}
		names[m[1]] = true
	}
	if len(names) != 4 {
		t.Errorf("authorize set %v, want did, did_compat, auth0 and auth0_compat", names)
	}

	f.authorize()
	var csrf []string
	resp, body := f.do(http.MethodGet, f.pageURL.String(), "", nil, nil)
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "_csrf=") {
			csrf = append(csrf, sc)
		}
	}
	if len(csrf) != 1 || !regexp.MustCompile(`^_csrf=[A-Za-z0-9_-]+; Max-Age=864000; Path=/usernamepassword/login; HttpOnly; Secure$`).MatchString(csrf[0]) {
		t.Errorf("login page _csrf cookie %q, want exactly the captured attributes", csrf)
	}
	for _, c := range f.hc.Jar.Cookies(f.pageURL) {
		if c.Name == csrfCookie {
			t.Error("the jar gives the login page's own URL the _csrf cookie: it must be scoped to /usernamepassword/login")
		}
	}

	m := regexp.MustCompile(`(?m)^\s*window\.injectedConfig = window\.injectedConfig \|\| "([A-Za-z0-9+/=]+)";$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no injectedConfig line in the login page:\n%s", body)
	}
	raw, err := base64.StdEncoding.DecodeString(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Auth0Tenant     string            `json:"auth0Tenant"`
		CallbackURL     string            `json:"callbackURL"`
		ClientID        string            `json:"clientID"`
		InternalOptions map[string]string `json:"internalOptions"`
		ExtraParams     map[string]string `json:"extraParams"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	io := cfg.InternalOptions
	if cfg.Auth0Tenant != "peloton-prod" || cfg.CallbackURL != DefaultRedirectURI || cfg.ClientID != DefaultClientID ||
		io["nonce"] != f.nonce || io["code_challenge"] != f.challenge || io["state"] != f.pageURL.Query().Get("state") ||
		len(io["state"]) < 150 || io["_intstate"] != "deprecated" || io["protocol"] != "oauth2" || io["_csrf"] == "" ||
		io["_csrf"] == f.csrf() || cfg.ExtraParams["state"] != io["state"] {
		t.Errorf("injectedConfig %s", raw)
	}

	// What the page's script posts: internalOptions verbatim and the page's fields.
	post := map[string]string{}
	for k, v := range io {
		post[k] = v
	}
	post["client_id"], post["redirect_uri"], post["tenant"] = cfg.ClientID, cfg.CallbackURL, cfg.Auth0Tenant
	post["connection"], post["username"], post["password"] = "pelo-user-password", DemoUsername, DemoPassword
	if resp, body := f.login(DemoPassword, func(b map[string]string) { clear(b); copyInto(b, post) }); resp.StatusCode != 200 ||
		!strings.Contains(string(body), `name="hiddenform"`) {
		t.Errorf("the page script's body: %d %s", resp.StatusCode, body)
	}
}

func copyInto(dst, src map[string]string) {
	for k, v := range src {
		dst[k] = v
	}
}

// TestCredentialsNeedTheCSRFCookieAndTheTransactionState: without the _csrf cookie, or with
// the authorize state instead of the transaction's, Auth0 answers 403 AnomalyDetected.
func TestCredentialsNeedTheCSRFCookieAndTheTransactionState(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	want := `{"statusCode":403,"description":"Invalid state","name":"AnomalyDetected","code":"access_denied"}`
	tr, err := conformance.Load()
	if err != nil {
		t.Fatal(err)
	}
	rejected := tr.Steps["credentials_request_rejected"] // the live answer, from the public record

	f := newFlow(t, sim)
	f.authorize()
	resp, body := f.login(DemoPassword, func(b map[string]string) { b["state"] = f.state })
	if resp.StatusCode != 403 || string(body) != want {
		t.Errorf("authorize state posted: %d %s", resp.StatusCode, body)
	}
	for _, p := range rejected.CheckResponseShape(resp, body) {
		t.Error(p)
	}
	csrf := f.csrf()
	u, _ := url.Parse(sim.AuthURL() + "/usernamepassword/login")
	f.hc.Jar.SetCookies(u, []*http.Cookie{{Name: csrfCookie, Value: "", Path: "/usernamepassword/login", MaxAge: -1}})
	resp, body = f.login(DemoPassword, func(b map[string]string) { b["_csrf"] = csrf })
	if resp.StatusCode != 403 || string(body) != want {
		t.Errorf("no _csrf cookie: %d %s", resp.StatusCode, body)
	}
	for _, p := range rejected.CheckResponseShape(resp, body) {
		t.Error(p)
	}
}

// TestLoginCrossesTheSSOHost: after the hidden form, six hops across auth and auth-orca with
// the statuses of the capture, and auth-orca's second hop needs the cookies of its first.
func TestLoginCrossesTheSSOHost(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	f := newFlow(t, sim)
	f.authorize()
	_, page := f.login(DemoPassword, nil)
	action := formAction.FindSubmatch(page)
	form := url.Values{}
	for _, m := range hiddenInput.FindAllSubmatch(page, -1) {
		form.Set(string(m[1]), htmlUnescape(string(m[2])))
	}
	hc := &http.Client{Jar: f.hc.Jar, Transport: sim.Transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, string(action[1]), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	type hop struct {
		status     int
		host, path string
	}
	want := []hop{
		{302, "auth.onepeloton.com", "/authorize/resume"},
		{302, "auth-orca.onepeloton.com", "/sso/login_site"},
		{303, "auth-orca.onepeloton.com", "/sso/login_domain"},
		{303, "auth.onepeloton.com", "/continue"},
		{302, "auth.onepeloton.com", "/authorize/resume"},
		{302, "members.onepeloton.com", "/callback"},
	}
	var domainURL *url.URL
	for i, w := range want {
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		next, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != w.status || next.Host != w.host || next.Path != w.path {
			t.Fatalf("hop %d: %d to %v, want %d to %s%s", i+1, resp.StatusCode, next, w.status, w.host, w.path)
		}
		if next.Path == "/sso/login_domain" {
			domainURL = next
		}
		req, _ = http.NewRequest(http.MethodGet, next.String(), nil)
	}
	if got := req.URL.Query().Get("state"); got != f.state || req.URL.Query().Get("code") == "" {
		t.Errorf("final redirect %s: want our state and a code", req.URL)
	}

	// The same login_domain URL without the cookies login_site set is refused.
	resp, err := sim.HTTPClient().Get(domainURL.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login_domain without auth-orca's cookies: %d, want 403", resp.StatusCode)
	}
}

func htmlUnescape(s string) string {
	r := strings.NewReplacer("&#34;", `"`, "&quot;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#39;", "'")
	return r.Replace(s)
}

// TestBruteForceProtectionBlocksAfterTenFailures: the eleventh attempt of one user from one
// IP gets 429 too_many_attempts, even with the right password, until the member unblocks.
func TestBruteForceProtectionBlocksAfterTenFailures(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	f := newFlow(t, sim)
	f.authorize()
	for i := 1; i <= bruteForceLimit; i++ {
		if resp, body := f.login("wrong-"+itoa(i), nil); resp.StatusCode != 401 {
			t.Fatalf("failure %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := f.login(DemoPassword, nil)
	var le loginError
	json.Unmarshal(body, &le)
	if resp.StatusCode != 429 || le.Code != "too_many_attempts" || le.Name != "AnomalyDetected" ||
		!strings.HasPrefix(le.Description, "Your account has been blocked after multiple consecutive login attempts.") {
		t.Fatalf("after 10 failures: %d %s", resp.StatusCode, body)
	}
	sim.UnblockAccount()
	if resp, body := f.login(DemoPassword, nil); resp.StatusCode != 200 {
		t.Errorf("after the unblock e-mail: %d %s", resp.StatusCode, body)
	}
}

// TestSuspiciousIPThrottling: failed logins from one IP across usernames get it throttled:
// 429 too_many_attempts with the throttling text, not the blocked account's, whatever the
// password, and one attempt is granted again 14.4 minutes later.
func TestSuspiciousIPThrottling(t *testing.T) {
	sim, clk := startSim(t, Config{Workouts: 10, IPThrottleAfter: 3})
	f := newFlow(t, sim)
	f.authorize()
	for i := 1; i <= 3; i++ {
		user := func(b map[string]string) { b["username"] = "someone-" + itoa(i) + "@example.com" }
		if resp, body := f.login("wrong", user); resp.StatusCode != 401 {
			t.Fatalf("failure %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := f.login(DemoPassword, nil)
	var le loginError
	json.Unmarshal(body, &le)
	if resp.StatusCode != 429 || le != errIPThrottled || strings.Contains(le.Description, "account has been blocked") {
		t.Fatalf("after 3 failures from the IP: %d %s", resp.StatusCode, body)
	}
	clk.Advance(ipThrottleRate)
	if resp, body := f.login(DemoPassword, nil); resp.StatusCode != 200 {
		t.Errorf("after %v: %d %s, want the granted attempt", ipThrottleRate, resp.StatusCode, body)
	}
}

// TestPlainHTTPStandIn: the plain-HTTP mode serves a one-host login ending at the redirect URI.
func TestPlainHTTPStandIn(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10, PlainHTTP: true})
	if !strings.HasPrefix(sim.AuthURL(), "http://127.0.0.1:") || sim.ProxyURL() != "" {
		t.Fatalf("plain mode at %s", sim.AuthURL())
	}
	tok := newFlow(t, sim).tokens()
	if status, _ := apiGet(t, sim, tok.AccessToken, "/api/me", true); status != 200 {
		t.Errorf("me: %d", status)
	}
	if n := sim.Requests(EndpointSSO); n != 0 {
		t.Errorf("%d SSO hops in plain mode", n)
	}
}
