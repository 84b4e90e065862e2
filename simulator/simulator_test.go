package simulator

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startSim starts a simulator on a fake clock (a Wednesday afternoon).
func startSim(t *testing.T, cfg Config) (*Simulator, *Clock) {
	t.Helper()
	clk := NewClock(time.Date(2026, 3, 18, 20, 4, 5, 0, time.UTC))
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, clk
}

// loginFlow drives the Auth0 login like a headless client: a cookie jar, no
// following of the final redirect to the redirect URI.
type loginFlow struct {
	t         *testing.T
	sim       *Simulator
	hc        *http.Client
	verifier  string
	challenge string
	state     string
	nonce     string
	pageURL   *url.URL
}

func newFlow(t *testing.T, sim *Simulator) *loginFlow {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	verifier := randomToken(32)
	return &loginFlow{
		t:   t,
		sim: sim,
		hc: &http.Client{Jar: jar, Timeout: 5 * time.Second, Transport: sim.Transport(),
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if strings.HasPrefix(req.URL.String(), DefaultRedirectURI) || len(via) > 12 {
					return http.ErrUseLastResponse
				}
				return nil
			}},
		verifier:  verifier,
		challenge: pkceChallenge(verifier),
		state:     randomToken(16),
		nonce:     randomToken(16),
	}
}

func (f *loginFlow) authorizeQuery() url.Values {
	return url.Values{
		"client_id":             {DefaultClientID},
		"audience":              {DefaultAudience},
		"scope":                 {defaultScope},
		"response_type":         {"code"},
		"response_mode":         {"query"},
		"redirect_uri":          {DefaultRedirectURI},
		"state":                 {f.state},
		"nonce":                 {f.nonce},
		"code_challenge":        {f.challenge},
		"code_challenge_method": {"S256"},
		"auth0Client":           {base64.StdEncoding.EncodeToString([]byte(`{"name":"auth0.js-ulp","version":"9.14.3"}`))},
	}
}

// authorize lands on the login page and remembers its URL.
func (f *loginFlow) authorize() {
	f.t.Helper()
	resp, body := f.do(http.MethodGet, f.sim.AuthURL()+"/authorize?"+f.authorizeQuery().Encode(), "", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "window.injectedConfig") {
		f.t.Fatalf("authorize: status %d, body %q", resp.StatusCode, body)
	}
	f.pageURL = resp.Request.URL
}

// csrf is the _csrf cookie's value; the cookie belongs to the credentials post's path.
func (f *loginFlow) csrf() string {
	u, _ := url.Parse(f.sim.AuthURL() + "/usernamepassword/login")
	for _, c := range f.hc.Jar.Cookies(u) {
		if c.Name == csrfCookie {
			return c.Value
		}
	}
	return "" // none: the post goes without it, which Auth0 refuses
}

// login posts the credentials; edit may change the body before it is sent.
func (f *loginFlow) login(password string, edit func(map[string]string)) (*http.Response, []byte) {
	f.t.Helper()
	body := map[string]string{
		"client_id":             DefaultClientID,
		"redirect_uri":          DefaultRedirectURI,
		"tenant":                "peloton-prod",
		"response_type":         "code",
		"scope":                 defaultScope,
		"audience":              DefaultAudience,
		"_csrf":                 f.csrf(),
		"state":                 f.pageURL.Query().Get("state"),
		"_intstate":             "deprecated",
		"nonce":                 f.nonce,
		"username":              DemoUsername,
		"password":              password,
		"connection":            "pelo-user-password",
		"code_challenge":        f.challenge,
		"code_challenge_method": "S256",
	}
	if edit != nil {
		edit(body)
	}
	b, _ := json.Marshal(body)
	return f.do(http.MethodPost, f.sim.AuthURL()+"/usernamepassword/login", "application/json", b, http.Header{
		"Origin":       {f.sim.AuthURL()},
		"Referer":      {f.pageURL.String()},
		"Auth0-Client": {"eyJuYW1lIjoiYXV0aDAuanMtdWxwIn0="},
	})
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)
var formAction = regexp.MustCompile(`<form method="post" name="hiddenform" action="([^"]+)">`)

// callback posts the hidden form and returns the code from the final
// redirect.
func (f *loginFlow) callback(page []byte) string {
	f.t.Helper()
	action := formAction.FindSubmatch(page)
	if action == nil {
		f.t.Fatalf("no hidden form in %q", page)
	}
	form := url.Values{}
	for _, m := range hiddenInput.FindAllSubmatch(page, -1) {
		form.Set(string(m[1]), html.UnescapeString(string(m[2])))
	}
	if !json.Valid([]byte(form.Get("wctx"))) {
		f.t.Fatalf("wctx is not JSON: %q", form.Get("wctx"))
	}
	resp, body := f.do(http.MethodPost, html.UnescapeString(string(action[1])), "application/x-www-form-urlencoded",
		[]byte(form.Encode()), nil)
	if resp.StatusCode != http.StatusFound {
		f.t.Fatalf("callback chain: status %d at %s, body %q", resp.StatusCode, resp.Request.URL, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), DefaultRedirectURI) {
		f.t.Fatalf("callback ended at %q", resp.Header.Get("Location"))
	}
	if got := loc.Query().Get("state"); got != f.state {
		f.t.Fatalf("state %q, want the original %q", got, f.state)
	}
	return loc.Query().Get("code")
}

func (f *loginFlow) exchange(code, verifier string) (*http.Response, tokenResponse, oauthError) {
	f.t.Helper()
	b, _ := json.Marshal(map[string]string{
		"grant_type":    "authorization_code",
		"client_id":     DefaultClientID,
		"code_verifier": verifier,
		"code":          code,
		"redirect_uri":  DefaultRedirectURI,
	})
	resp, body := f.do(http.MethodPost, f.sim.AuthURL()+"/oauth/token", "application/json", b, nil)
	var tok tokenResponse
	var oe oauthError
	json.Unmarshal(body, &tok)
	json.Unmarshal(body, &oe)
	return resp, tok, oe
}

// codeFor runs the flow up to the authorization code.
func (f *loginFlow) codeFor() string {
	f.t.Helper()
	f.authorize()
	resp, page := f.login(DemoPassword, nil)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("login: status %d, body %q", resp.StatusCode, page)
	}
	return f.callback(page)
}

// tokens runs the whole happy path.
func (f *loginFlow) tokens() tokenResponse {
	f.t.Helper()
	resp, tok, oe := f.exchange(f.codeFor(), f.verifier)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("token: status %d, %+v", resp.StatusCode, oe)
	}
	return tok
}

func (f *loginFlow) do(method, u, contentType string, body []byte, h http.Header) (*http.Response, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, b
}

// apiGet calls the API as the exporter does; platform false drops the
// Peloton-Platform header.
func apiGet(t *testing.T, sim *Simulator, token, path string, platform bool) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, sim.APIURL()+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if platform {
		req.Header.Set("Peloton-Platform", "web")
	}
	resp, err := sim.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	return resp.StatusCode, b
}

func postToken(t *testing.T, sim *Simulator, form url.Values) (int, tokenResponse, oauthError) {
	t.Helper()
	resp, err := sim.HTTPClient().PostForm(sim.AuthURL()+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tok tokenResponse
	var oe oauthError
	json.Unmarshal(b, &tok)
	json.Unmarshal(b, &oe)
	return resp.StatusCode, tok, oe
}

const notLoggedIn = `{"status":401,"error_code":3020,"subcode":null,"message":"Not logged in","details":null}`

func TestLoginHappyPath(t *testing.T) {
	sim, clk := startSim(t, Config{Workouts: 50})
	tok := newFlow(t, sim).tokens()
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.IDToken == "" {
		t.Fatalf("missing tokens: %+v", tok)
	}
	if tok.ExpiresIn != 172800 || tok.TokenType != "Bearer" {
		t.Errorf("expires_in %d token_type %q", tok.ExpiresIn, tok.TokenType)
	}
	// The client reads exp from the JWT's payload.
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWT: %q", tok.AccessToken)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Exp int64 `json:"exp"`
		Sub string
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(48 * time.Hour).Unix(); claims.Exp != want {
		t.Errorf("exp %d, want %d", claims.Exp, want)
	}

	status, body := apiGet(t, sim, tok.AccessToken, "/api/me", true)
	var me struct {
		ID            string
		TotalWorkouts int            `json:"total_workouts"`
		WorkoutCounts []WorkoutCount `json:"workout_counts"`
	}
	if err := json.Unmarshal(body, &me); status != 200 || err != nil {
		t.Fatalf("me: %d %v %s", status, err, body)
	}
	if me.ID != sim.UserID() || len(me.ID) != 32 || me.TotalWorkouts != 50 || len(me.WorkoutCounts) != len(disciplines) {
		t.Errorf("me: %+v", me)
	}
	for _, p := range []string{"/overview", "/workouts?page=0&limit=10&sort_by=-created&joins=ride"} {
		if status, body := apiGet(t, sim, tok.AccessToken, "/api/user/"+me.ID+p, true); status != 200 {
			t.Errorf("%s: %d %s", p, status, body)
		}
	}
	if status, _ := apiGet(t, sim, tok.AccessToken, "/api/user/"+strings.Repeat("a", 32)+"/overview", true); status != 403 {
		t.Errorf("someone else's overview: %d, want 403", status)
	}
	want := map[string]int{EndpointAuthorize: 1, EndpointLoginPage: 1, EndpointLogin: 1, EndpointCallback: 3, EndpointSSO: 2, EndpointContinue: 1, EndpointToken: 1, EndpointMe: 1}
	for ep, n := range want {
		if got := sim.Requests(ep); got != n {
			t.Errorf("Requests(%s) = %d, want %d", ep, got, n)
		}
	}
}

func TestAuthorizeRejectsBadRequests(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	for _, tc := range []struct{ key, value string }{
		{"client_id", "someone-else"},
		{"redirect_uri", "https://evil.example/cb"},
		{"audience", ""},
		{"scope", "openid"},
		{"response_type", "token"},
		{"response_mode", "fragment"},
		{"state", ""},
		{"nonce", ""},
		{"code_challenge", "short"},
		{"code_challenge_method", "plain"},
		{"auth0Client", ""},
	} {
		f := newFlow(t, sim)
		q := f.authorizeQuery()
		q.Set(tc.key, tc.value)
		resp, _ := f.do(http.MethodGet, sim.AuthURL()+"/authorize?"+q.Encode(), "", nil, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s=%q: status %d, want 400", tc.key, tc.value, resp.StatusCode)
		}
	}
}

func TestLoginRefusals(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	for _, tc := range []struct {
		name     string
		password string
		edit     func(map[string]string)
		status   int
		code     string
	}{
		{"wrong password", "nope", nil, 401, "invalid_user_password"},
		{"csrf mismatch", DemoPassword, func(b map[string]string) { b["_csrf"] = "forged" }, 403, "access_denied"},
		{"unknown state", DemoPassword, func(b map[string]string) { b["state"] = "forged" }, 403, "access_denied"},
		{"wrong tenant", DemoPassword, func(b map[string]string) { b["tenant"] = "x" }, 400, "invalid_request"},
		{"other challenge", DemoPassword, func(b map[string]string) { b["code_challenge"] = pkceChallenge("x") }, 400, "invalid_request"},
	} {
		f := newFlow(t, sim)
		f.authorize()
		resp, body := f.login(tc.password, tc.edit)
		var le loginError
		json.Unmarshal(body, &le)
		if resp.StatusCode != tc.status || le.Code != tc.code || le.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, body, tc.status, tc.code)
		}
	}
	want := `{"statusCode":401,"description":"Wrong email or password.","name":"ValidationError","code":"invalid_user_password"}` // key order: the simulator's
	f := newFlow(t, sim)
	f.authorize()
	if _, body := f.login("nope", nil); string(body) != want {
		t.Errorf("wrong password body %s, want %s", body, want)
	}
	// A wrong password can be retried with the same transaction.
	if resp, body := f.login(DemoPassword, nil); resp.StatusCode != 200 {
		t.Errorf("retry after wrong password: %d %s", resp.StatusCode, body)
	}

	// The login page's script always sends Origin and Referer.
	f = newFlow(t, sim)
	f.authorize()
	resp, _ := f.do(http.MethodPost, sim.AuthURL()+"/usernamepassword/login", "application/json", []byte(`{}`),
		http.Header{"Referer": {f.pageURL.String()}, "Auth0-Client": {"x"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("no Origin: status %d, want 403", resp.StatusCode)
	}
	sim.SetPassword("changed")
	f = newFlow(t, sim)
	f.authorize()
	if resp, _ := f.login(DemoPassword, nil); resp.StatusCode != 401 {
		t.Errorf("old password after SetPassword: %d, want 401", resp.StatusCode)
	}
}

// TestLoginChecksTransaction: every field of the posted login must agree with
// the transaction /authorize started; the refusal names the field and never
// echoes a value.
func TestLoginChecksTransaction(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	const del = "\x00delete" // marks a field to leave out
	for _, tc := range []struct {
		field, value string
		status       int
		description  string
	}{
		{"client_id", "someone-else", 400, "Invalid client_id."},
		{"client_id", del, 400, "Missing required parameter: client_id"},
		{"redirect_uri", "https://evil.example/cb", 400, "Invalid redirect_uri."},
		{"redirect_uri", del, 400, "Missing required parameter: redirect_uri"},
		{"response_type", "token", 400, "Invalid response_type."},
		{"response_type", del, 400, "Missing required parameter: response_type"},
		{"scope", "openid offline_access", 400, "Invalid scope."},
		{"scope", defaultScope + " email", 400, "Invalid scope."},
		{"scope", del, 400, "Missing required parameter: scope"},
		{"audience", "https://api.elsewhere.example/", 400, "Invalid audience."},
		{"audience", del, 400, "Missing required parameter: audience"},
		{"nonce", "some-other-nonce-value", 400, "Invalid nonce."},
		{"nonce", del, 400, "Missing required parameter: nonce"},
		{"code_challenge", pkceChallenge("another verifier"), 400, "Invalid code_challenge."},
		{"code_challenge", del, 400, "Missing required parameter: code_challenge"},
		{"code_challenge_method", "plain", 400, "Invalid code_challenge_method."},
		{"code_challenge_method", del, 400, "Missing required parameter: code_challenge_method"},
		{"tenant", "another-tenant", 400, "Invalid tenant."},
		{"tenant", del, 400, "Missing required parameter: tenant"},
		{"connection", "Username-Password-Authentication", 400, "Invalid connection."},
		{"connection", del, 400, "Missing required parameter: connection"},
		{"_intstate", "not-deprecated", 400, "Invalid _intstate."},
		{"_intstate", del, 400, "Missing required parameter: _intstate"},
		{"state", "forged-state-value", 403, "Invalid state"},
		{"state", del, 403, "Invalid state"},
		{"_csrf", "forged-csrf-value", 403, "Invalid state"},
		{"_csrf", del, 403, "Invalid state"},
		{"protocol", "saml", 400, "Invalid protocol."},
	} {
		name := tc.field + "=" + tc.value
		if tc.value == del {
			name = "no " + tc.field
		}
		t.Run(name, func(t *testing.T) {
			f := newFlow(t, sim)
			f.authorize()
			csrf, state := f.csrf(), f.pageURL.Query().Get("state")
			resp, body := f.login(DemoPassword, func(b map[string]string) {
				if tc.value == del {
					delete(b, tc.field)
				} else {
					b[tc.field] = tc.value
				}
			})
			var le loginError
			if err := json.Unmarshal(body, &le); err != nil {
				t.Fatalf("not JSON: %s", body)
			}
			wantName, wantCode := "BadRequestError", "invalid_request"
			if tc.status == 403 {
				wantName, wantCode = "AnomalyDetected", "access_denied"
			}
			if resp.StatusCode != tc.status || le.StatusCode != tc.status || le.Description != tc.description ||
				le.Name != wantName || le.Code != wantCode {
				t.Errorf("got %d %s, want %d %q", resp.StatusCode, body, tc.status, tc.description)
			}
			for _, secret := range []string{f.nonce, f.challenge, f.verifier, csrf, state, DemoPassword, tc.value} {
				if strings.Contains(string(body), secret) {
					t.Errorf("the refusal echoes a value: %s", body)
				}
			}
			// The refusal does not spend the transaction: the right body
			// still logs in.
			if resp, body := f.login(DemoPassword, nil); resp.StatusCode != 200 {
				t.Errorf("correct login after the refusal: %d %s", resp.StatusCode, body)
			}
		})
	}

	// The state must name a live transaction of this browser: not one
	// whose credentials were already accepted, and not without the
	// transaction cookie that /authorize set.
	f := newFlow(t, sim)
	f.authorize()
	if resp, body := f.login(DemoPassword, nil); resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.login(DemoPassword, nil); resp.StatusCode != 403 || !strings.Contains(string(body), `"Invalid state"`) {
		t.Errorf("second login on a finished transaction: %d %s", resp.StatusCode, body)
	}
	f = newFlow(t, sim)
	f.authorize()
	f.hc.Jar.SetCookies(f.pageURL, []*http.Cookie{{Name: txCookie, Value: "forged", Path: "/"}, {Name: txCookie + "_compat", Value: "forged", Path: "/"}})
	if resp, body := f.login(DemoPassword, nil); resp.StatusCode != 403 || !strings.Contains(string(body), `"Invalid state"`) {
		t.Errorf("wrong transaction cookie: %d %s", resp.StatusCode, body)
	}

	// Only runs of whitespace in the scope may differ.
	f = newFlow(t, sim)
	f.authorize()
	if resp, body := f.login(DemoPassword, func(b map[string]string) {
		b["scope"] = "  " + strings.ReplaceAll(defaultScope, " ", "  ") + " "
	}); resp.StatusCode != 200 {
		t.Errorf("scope with extra whitespace: %d %s", resp.StatusCode, body)
	}
}

func TestCodeExchangeRefusals(t *testing.T) {
	sim, clk := startSim(t, Config{Workouts: 10})

	f := newFlow(t, sim)
	code := f.codeFor()
	resp, _, oe := f.exchange(code, randomToken(32))
	if resp.StatusCode != 403 || oe.Error != "invalid_grant" {
		t.Errorf("wrong verifier: %d %+v", resp.StatusCode, oe)
	}
	// The wrong verifier burnt the code.
	if resp, _, oe := f.exchange(code, f.verifier); resp.StatusCode != 403 || oe.ErrorDescription != "Invalid authorization code" {
		t.Errorf("burnt code: %d %+v", resp.StatusCode, oe)
	}

	f = newFlow(t, sim)
	code = f.codeFor()
	clk.Advance(61 * time.Second)
	if resp, _, oe := f.exchange(code, f.verifier); resp.StatusCode != 403 || oe.Error != "invalid_grant" {
		t.Errorf("expired code: %d %+v", resp.StatusCode, oe)
	}

	f = newFlow(t, sim)
	code = f.codeFor()
	if resp, _, _ := f.exchange(code, f.verifier); resp.StatusCode != 200 {
		t.Fatalf("exchange: %d", resp.StatusCode)
	}
	if resp, _, oe := f.exchange(code, f.verifier); resp.StatusCode != 403 || oe.Error != "invalid_grant" {
		t.Errorf("reused code: %d %+v", resp.StatusCode, oe)
	}
}

func TestTokenGrantRefusals(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	status, _, oe := postToken(t, sim, url.Values{"grant_type": {"password"}, "client_id": {DefaultClientID},
		"username": {DemoUsername}, "password": {DemoPassword}})
	if status != 403 || oe.Error != "unauthorized_client" ||
		oe.ErrorDescription != "Grant type 'password' not allowed for the client." {
		t.Errorf("password grant: %d %+v", status, oe)
	}
	_, refresh := sim.IssueTokens()
	status, _, oe = postToken(t, sim, url.Values{"grant_type": {"refresh_token"}, "client_id": {"other"}, "refresh_token": {refresh}})
	if status != 401 || oe.Error != "access_denied" || oe.ErrorDescription != "Unauthorized" {
		t.Errorf("wrong client_id: %d %+v", status, oe)
	}
}

// refreshWith presents a refresh token and returns the raw answer too.
func refreshWith(t *testing.T, sim *Simulator, rt string) (int, tokenResponse, string) {
	t.Helper()
	resp, err := sim.HTTPClient().PostForm(sim.AuthURL()+"/oauth/token",
		url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultClientID}, "refresh_token": {rt}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tok tokenResponse
	json.Unmarshal(b, &tok)
	return resp.StatusCode, tok, string(b)
}

const unknownRefresh = `{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}`

func TestRefreshRotates(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	tok := newFlow(t, sim).tokens()
	// A well-behaved client rotates again and again; every step works and
	// the access tokens issued along the way stay valid until they expire.
	cur := tok
	for i := range 5 {
		status, next, body := refreshWith(t, sim, cur.RefreshToken)
		if status != 200 || next.AccessToken == "" || next.AccessToken == cur.AccessToken ||
			next.RefreshToken == "" || next.RefreshToken == cur.RefreshToken {
			t.Fatalf("refresh %d: %d %s", i, status, body)
		}
		cur = next
	}
	for _, a := range []string{tok.AccessToken, cur.AccessToken} {
		if status, body := apiGet(t, sim, a, "/api/me", true); status != 200 {
			t.Errorf("access token after normal rotation: %d %s", status, body)
		}
	}
	if status, _, body := refreshWith(t, sim, "never-issued"); status != 403 || body != unknownRefresh {
		t.Errorf("unknown refresh token: %d %s", status, body)
	}
	// The unknown token touched no family.
	if status, _, body := refreshWith(t, sim, cur.RefreshToken); status != 200 {
		t.Errorf("live refresh token after an unknown one: %d %s", status, body)
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	tok := newFlow(t, sim).tokens()
	otherAccess, otherRefresh := sim.IssueTokens() // a separate family

	status, t1, _ := refreshWith(t, sim, tok.RefreshToken)
	if status != 200 {
		t.Fatalf("first rotation: %d", status)
	}
	status, t2, _ := refreshWith(t, sim, t1.RefreshToken)
	if status != 200 {
		t.Fatalf("second rotation: %d", status)
	}
	family := []string{tok.AccessToken, t1.AccessToken, t2.AccessToken}
	for _, a := range family {
		if status, _ := apiGet(t, sim, a, "/api/me", true); status != 200 {
			t.Fatalf("access token before reuse: %d", status)
		}
	}

	// t1's refresh token was rotated away: presenting it again is reuse.
	if status, _, body := refreshWith(t, sim, t1.RefreshToken); status != 403 || body != unknownRefresh {
		t.Errorf("reused refresh token: %d %s, want 403 %s", status, body, unknownRefresh)
	}
	// The family's live refresh token is revoked too, and so is its ancestor.
	for name, rt := range map[string]string{"live": t2.RefreshToken, "first": tok.RefreshToken, "reused again": t1.RefreshToken} {
		if status, _, body := refreshWith(t, sim, rt); status != 403 || body != unknownRefresh {
			t.Errorf("%s refresh token after reuse: %d %s", name, status, body)
		}
	}
	// Every access token issued from the family answers 401.
	for i, a := range family {
		if status, body := apiGet(t, sim, a, "/api/me", true); status != 401 || string(body) != notLoggedIn {
			t.Errorf("access token %d of the revoked family: %d %s", i, status, body)
		}
	}

	// Other families are untouched, and a fresh login starts a new one.
	if status, _ := apiGet(t, sim, otherAccess, "/api/me", true); status != 200 {
		t.Errorf("other family's access token: %d", status)
	}
	if status, _, body := refreshWith(t, sim, otherRefresh); status != 200 {
		t.Errorf("other family's refresh token: %d %s", status, body)
	}
	again := newFlow(t, sim).tokens()
	if status, _ := apiGet(t, sim, again.AccessToken, "/api/me", true); status != 200 {
		t.Errorf("new login after the revocation: %d", status)
	}
	if status, _, body := refreshWith(t, sim, again.RefreshToken); status != 200 {
		t.Errorf("new login's refresh token: %d %s", status, body)
	}
}

func TestAPIAuth(t *testing.T) {
	sim, clk := startSim(t, Config{Workouts: 10})
	access, refresh := sim.IssueTokens()
	if status, body := apiGet(t, sim, access, "/api/me", false); status != 403 {
		t.Errorf("no Peloton-Platform: %d %s", status, body)
	}
	if status, body := apiGet(t, sim, "", "/api/me", true); status != 401 || string(body) != notLoggedIn {
		t.Errorf("no token: %d %s", status, body)
	}
	if status, _ := apiGet(t, sim, access, "/api/me", true); status != 200 {
		t.Fatalf("fresh token: %d", status)
	}
	clk.Advance(48*time.Hour + time.Second)
	if status, body := apiGet(t, sim, access, "/api/me", true); status != 401 || string(body) != notLoggedIn {
		t.Errorf("expired token: %d %s", status, body)
	}

	access, _ = sim.IssueTokens()
	sim.RevokeAccessTokens()
	if status, _ := apiGet(t, sim, access, "/api/me", true); status != 401 {
		t.Errorf("revoked token: %d", status)
	}
	sim.RevokeRefreshTokens()
	if status, _, oe := postToken(t, sim, url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultClientID},
		"refresh_token": {refresh}}); status != 403 || oe.Error != "invalid_grant" {
		t.Errorf("revoked refresh token: %d %+v", status, oe)
	}
	access, _ = sim.IssueTokens()
	if status, _ := apiGet(t, sim, access, "/api/me", true); status != 200 {
		t.Errorf("token issued after revocation: %d", status)
	}
	if status, _ := apiGet(t, sim, access, "/api/nothing", true); status != 404 {
		t.Errorf("unknown path: %d", status)
	}
}

func TestLegacyLoginRetired(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	resp, err := sim.HTTPClient().Post(sim.APIURL()+"/auth/login", "application/json",
		strings.NewReader(`{"username_or_email":"a","password":"b"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `{"message":"Access forbidden. Endpoint no longer accepting requests.","status":403}`
	if resp.StatusCode != 403 || string(body) != want {
		t.Errorf("legacy login: %d %s", resp.StatusCode, body)
	}
}

type page struct {
	Data []struct {
		ID                string
		CreatedAt         int64  `json:"created_at"`
		StartTime         int64  `json:"start_time"`
		EndTime           *int64 `json:"end_time"`
		Status            string
		FitnessDiscipline string `json:"fitness_discipline"`
		Ride              *Ride
	}
	Limit, Page, Total, Count int
	PageCount                 int  `json:"page_count"`
	ShowNext                  bool `json:"show_next"`
	ShowPrevious              bool `json:"show_previous"`
}

// allWorkouts pages through the history as the exporter would.
func allWorkouts(t *testing.T, sim *Simulator, token string, limit int) []page {
	t.Helper()
	var pages []page
	for n := 0; ; n++ {
		status, body := apiGet(t, sim, token,
			"/api/user/"+sim.UserID()+"/workouts?sort_by=-created&joins=ride&limit="+itoa(limit)+"&page="+itoa(n), true)
		var p page
		if err := json.Unmarshal(body, &p); status != 200 || err != nil {
			t.Fatalf("page %d: %d %v %s", n, status, err, body)
		}
		pages = append(pages, p)
		if !p.ShowNext {
			return pages
		}
		if n > 1000 {
			t.Fatal("paging does not end")
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestPagingCoversHistory(t *testing.T) {
	sim, clk := startSim(t, Config{InProgress: true})
	access, _ := sim.IssueTokens()
	pages := allWorkouts(t, sim, access, 100)
	seen := map[string]bool{}
	var prev int64 = 1 << 62
	for i, p := range pages {
		if p.Page != i || p.Limit != 100 || p.Count != len(p.Data) || p.Total != 1801 || p.PageCount != 19 ||
			p.ShowPrevious != (i > 0) {
			t.Errorf("page %d header: %+v", i, p)
		}
		for _, w := range p.Data {
			if seen[w.ID] || len(w.ID) != 32 {
				t.Errorf("bad or duplicate id %q", w.ID)
			}
			seen[w.ID] = true
			if w.CreatedAt > prev {
				t.Errorf("not newest first at %s", w.ID)
			}
			prev = w.CreatedAt
			if w.Ride == nil || w.Ride.Duration < 300 || w.Ride.Duration > 5400 {
				t.Errorf("workout %s ride %+v", w.ID, w.Ride)
			}
		}
	}
	if len(seen) != 1801 {
		t.Errorf("%d workouts, want 1801", len(seen))
	}
	if last := pages[len(pages)-1]; last.ShowNext {
		t.Error("show_next on the last page")
	}
	top := pages[0].Data[0]
	if top.Status != "IN_PROGRESS" || top.EndTime != nil {
		t.Errorf("top workout %+v, want IN_PROGRESS with null end_time", top)
	}
	// The newest completed workout is from today or yesterday.
	newest := time.Unix(pages[0].Data[1].StartTime, 0)
	if age := clk.Now().Sub(newest); age < 0 || age > 24*time.Hour {
		t.Errorf("newest completed workout is %v old", age)
	}

	for _, q := range []string{"limit=101", "limit=0", "page=-1", "limit=x", "joins=nope", "sort_by=name"} {
		status, body := apiGet(t, sim, access, "/api/user/"+sim.UserID()+"/workouts?"+q, true)
		if status != 400 || !strings.Contains(string(body), `"message":"Request was invalid"`) {
			t.Errorf("%s: %d %s", q, status, body)
		}
	}
	// Past the end: an empty page, not an error.
	status, body := apiGet(t, sim, access, "/api/user/"+sim.UserID()+"/workouts?limit=100&page=99", true)
	if status != 200 || !strings.Contains(string(body), `"data":[]`) {
		t.Errorf("past the end: %d %.200s", status, body)
	}
}

func TestOverviewAgreesWithHistory(t *testing.T) {
	sim, clk := startSim(t, Config{})
	access, _ := sim.IssueTokens()
	status, body := apiGet(t, sim, access, "/api/user/"+sim.UserID()+"/overview", true)
	var o Overview
	if err := json.Unmarshal(body, &o); status != 200 || err != nil {
		t.Fatalf("overview: %d %v", status, err)
	}
	counts := map[string]int{}
	loc, _ := time.LoadLocation(defaultTimezone)
	weeks := map[time.Time]bool{}
	for _, p := range allWorkouts(t, sim, access, 100) {
		for _, w := range p.Data {
			counts[w.FitnessDiscipline]++
			weeks[mondayOf(time.Unix(w.StartTime, 0), loc)] = true
		}
	}
	if o.WorkoutCounts.TotalWorkouts != 1800 {
		t.Errorf("total_workouts %d", o.WorkoutCounts.TotalWorkouts)
	}
	for _, c := range o.WorkoutCounts.Workouts {
		if c.Count != counts[c.Slug] {
			t.Errorf("%s: overview %d, history %d", c.Slug, c.Count, counts[c.Slug])
		}
		if (c.Slug == "caesar_bootcamp" || c.Slug == "circuit") != (c.Count == 0) {
			t.Errorf("%s count %d", c.Slug, c.Count)
		}
	}

	// Recount the weekly streak independently: whole Monday-start weeks.
	// The current week may still be empty without breaking the streak.
	streak := 0
	wk := mondayOf(clk.Now(), loc)
	if !weeks[wk] {
		wk = wk.AddDate(0, 0, -7)
	}
	for ; weeks[wk]; wk = wk.AddDate(0, 0, -7) {
		streak++
	}
	st := o.Streaks
	if st.CurrentWeekly != streak || streak < 40 || streak > 60 || st.BestWeekly >= st.CurrentWeekly ||
		st.StartDateOfCurrentWeekly == nil {
		t.Errorf("streaks %+v, recounted %d", st, streak)
	}
	if (st.CurrentDaily == 0) != (st.StartDateOfCurrentDaily == nil) {
		t.Errorf("daily streak %+v", st)
	}

	if len(o.PersonalRecords) != 2 || o.PersonalRecords[0].Slug != "cycling" || len(o.PersonalRecords[0].Records) != 9 {
		t.Fatalf("personal records: %+v", o.PersonalRecords)
	}
	micro := 0
	for _, r := range o.PersonalRecords[0].Records {
		if r.Unit != "kj" || r.Value != float64(int(r.RawValue/1000+0.5)) {
			t.Errorf("record %+v", r)
		}
		if strings.Contains(r.WorkoutDate, ".") {
			micro++
		}
		if _, err := time.Parse("2006-01-02T15:04:05", strings.Split(r.WorkoutDate, ".")[0]); err != nil {
			t.Errorf("record date %q", r.WorkoutDate)
		}
	}
	if micro == 0 || micro == 9 {
		t.Errorf("%d of 9 record dates have microseconds, want some", micro)
	}
	if ac := o.AchievementCounts; len(ac.Achievements) < 200 {
		t.Errorf("%d achievements", len(ac.Achievements))
	}
	slugs := map[string]string{}
	for _, a := range o.AchievementCounts.Achievements {
		if other, dup := slugs[a.Template.Slug]; dup {
			t.Errorf("achievement slug %q names both %q and %q", a.Template.Slug, other, a.Template.Name)
		}
		slugs[a.Template.Slug] = a.Template.Name
	}
	if got := sim.Overview(); got.Streaks.CurrentWeekly != st.CurrentWeekly || got.WorkoutCounts.TotalWorkouts != 1800 {
		t.Errorf("Overview() disagrees with the API: %+v", got.Streaks)
	}
}

func TestDataControls(t *testing.T) {
	sim, clk := startSim(t, Config{Workouts: 100})
	before := sim.Overview()
	sim.AddWorkout(Workout{FitnessDiscipline: "caesar_bootcamp", TotalWork: 0})
	after := sim.Overview()
	if after.WorkoutCounts.TotalWorkouts != before.WorkoutCounts.TotalWorkouts+1 {
		t.Errorf("total %d after AddWorkout", after.WorkoutCounts.TotalWorkouts)
	}
	for _, c := range after.WorkoutCounts.Workouts {
		if c.Slug == "caesar_bootcamp" && c.Count != 1 {
			t.Errorf("caesar_bootcamp count %d", c.Count)
		}
	}
	access, _ := sim.IssueTokens()
	_, body := apiGet(t, sim, access, "/api/user/"+sim.UserID()+"/workouts?limit=1", true)
	var p page
	json.Unmarshal(body, &p)
	if p.Total != 101 || p.Data[0].FitnessDiscipline != "caesar_bootcamp" || p.Data[0].StartTime > clk.Now().Unix() {
		t.Errorf("newest workout %+v", p)
	}
	if p.Data[0].Ride != nil {
		t.Error("ride present without joins=ride")
	}

	sim.SetWeeklyStreak(0)
	if st := sim.Overview().Streaks; st.CurrentWeekly != 0 || st.StartDateOfCurrentWeekly != nil {
		t.Errorf("broken streak %+v", st)
	}
	sim.SetWeeklyStreak(-1)
	if st := sim.Overview().Streaks; st.CurrentWeekly != before.Streaks.CurrentWeekly {
		t.Errorf("streak after clearing override %+v", st)
	}

	sim.SetOverviewJSON([]byte(`{"id":`))
	if status, body := apiGet(t, sim, access, "/api/user/"+sim.UserID()+"/overview", true); status != 200 || string(body) != `{"id":` {
		t.Errorf("raw overview: %d %s", status, body)
	}
	sim.SetOverviewJSON(nil)
	if _, body := apiGet(t, sim, access, "/api/user/"+sim.UserID()+"/overview", true); !json.Valid(body) {
		t.Errorf("generated overview again: %.100s", body)
	}
}

func TestFaults(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	access, _ := sim.IssueTokens()
	sim.InjectFault(EndpointMe, Fault{Status: 429, Body: `{"message":"slow down"}`, Header: http.Header{"Retry-After": {"7"}}, Times: 1})
	req, _ := http.NewRequest(http.MethodGet, sim.APIURL()+"/api/me", nil)
	resp, err := sim.HTTPClient().Do(req) // no auth needed: the fault answers first
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("fault: %d %v", resp.StatusCode, resp.Header)
	}
	if status, _ := apiGet(t, sim, access, "/api/me", true); status != 200 {
		t.Errorf("after a Times=1 fault: %d", status)
	}
	if n := sim.Requests(EndpointMe); n != 2 {
		t.Errorf("Requests(me) = %d, want 2", n)
	}

	// A delay ends with the caller's context.
	sim.InjectFault(EndpointOverview, Fault{Delay: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, sim.APIURL()+"/api/user/"+sim.UserID()+"/overview", nil)
	start := time.Now()
	if _, err := sim.HTTPClient().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("delayed request: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("delay not cut by the context: %v", d)
	}
	sim.ClearFaults()
	if status, _ := apiGet(t, sim, access, "/api/user/"+sim.UserID()+"/overview", true); status != 200 {
		t.Errorf("after ClearFaults: %d", status)
	}
}

func TestCloseIsBounded(t *testing.T) {
	sim, _ := startSim(t, Config{Workouts: 10})
	sim.InjectFault(EndpointToken, Fault{Delay: time.Hour})
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := sim.HTTPClient().PostForm(sim.AuthURL()+"/oauth/token", url.Values{})
		if err == nil {
			resp.Body.Close()
		}
	}()
	for sim.Requests(EndpointToken) == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	sim.Close()
	sim.Close() // idempotent
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	<-done
}

func TestDeterministic(t *testing.T) {
	a, _ := startSim(t, Config{Seed: 7, Workouts: 200})
	b, _ := startSim(t, Config{Seed: 7, Workouts: 200})
	c, _ := startSim(t, Config{Seed: 8, Workouts: 200})
	oa, ob := a.Overview(), b.Overview()
	ja, _ := json.Marshal(oa)
	jb, _ := json.Marshal(ob)
	if a.UserID() != b.UserID() || !bytes.Equal(ja, jb) {
		t.Error("same seed, different member")
	}
	if a.UserID() == c.UserID() {
		t.Error("different seeds, same member")
	}
}

func TestRun(t *testing.T) {
	periods := map[int]int64{1: 10, 2: 20, 3: 30, 6: 60, 7: 70, 9: 90, 10: 100}
	for _, tc := range []struct{ now, current, best int }{
		{10, 2, 3}, // live run 9-10; best of the ended runs is 1-3
		{11, 2, 3}, // the previous period still keeps it alive
		{12, 0, 3}, // broken: every run has ended
	} {
		cur, start, best := run(periods, tc.now)
		if cur != tc.current || best != tc.best || (cur > 0) != (start != nil) {
			t.Errorf("now %d: current %d best %d start %v", tc.now, cur, best, start)
		}
	}
}
