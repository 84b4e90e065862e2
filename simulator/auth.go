package simulator

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

const (
	auth0Tenant     = "peloton-prod"
	auth0Connection = "pelo-user-password"
	// auth0IntState is the fixed _intstate the login page script sends.
	auth0IntState = "deprecated"
	csrfCookie    = "_csrf"
	txCookie      = "auth0" // Auth0's transaction cookie name
	// txLifetime bounds how long a started login can be finished.
	txLifetime = 30 * time.Minute
	// maxBody bounds request bodies; real ones are well under 4 KiB.
	maxBody = 64 << 10
)

// loginTx is one login in progress, from /authorize to /authorize/resume.
type loginTx struct {
	id           string // value of the transaction cookie
	origState    string // the client's state, returned with the code
	loginState   string // the login page's own state, carried by later steps
	clientID     string
	redirectURI  string
	audience     string
	responseType string
	nonce        string
	challenge    string
	method       string // code_challenge_method
	scope        string // whitespace-normalised, in the order asked for
	csrf         string // the _csrf cookie's secret
	created      time.Time
	wresult      string // set once the credentials were accepted
	stage        loginStage
	ssoState     string            // the SSO hops' state
	claimToken   string            // session_claim_token of the SSO hop
	ssoCookies   map[string]string // what login_site set on the SSO host
	userID       string            // the member whose credentials were taken
}

// loginStage is how far a login transaction got after its credentials were accepted.
type loginStage int

const (
	stageCredentials loginStage = iota // not past the hidden form yet
	stageCallback                      // the hidden form was posted
	stageSSO                           // sent to the SSO host
	stageSSODone                       // the SSO host sent it back to /continue
	stageContinued                     // /continue passed it on to the second resume
)

var codeChallengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43,128}$`)

func (s *Simulator) authHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", s.endpoint(EndpointAuthorize, s.handleAuthorize))
	mux.HandleFunc("GET /login", s.endpoint(EndpointLoginPage, s.handleLoginPage))
	mux.HandleFunc("GET /continue", s.endpoint(EndpointContinue, s.handleContinue))
	mux.HandleFunc("POST /usernamepassword/login", s.endpoint(EndpointLogin, s.handleLogin))
	mux.HandleFunc("POST /login/callback", s.endpoint(EndpointCallback, s.handleCallback))
	mux.HandleFunc("GET /authorize/resume", s.endpoint(EndpointCallback, s.handleResume))
	mux.HandleFunc("POST /oauth/token", s.endpoint(EndpointToken, s.handleToken))
	mux.HandleFunc("/", notFound)
	return mux
}

// authPageError is the small HTML error page Auth0 shows for a bad browser
// request.
func authPageError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	errorPage.Execute(w, map[string]string{"Code": code, "Description": description})
}

var errorPage = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html><head><title>Error</title></head>
<body><h1>Oops!, something went wrong</h1><p>{{.Code}}: {{.Description}}</p></body></html>
`))

func (s *Simulator) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	scopes := strings.Fields(q.Get("scope"))
	var problem string
	switch {
	case q.Get("client_id") != s.cfg.ClientID:
		problem = "Unknown client: " + q.Get("client_id")
	case q.Get("redirect_uri") != s.cfg.RedirectURI:
		problem = "Callback URL mismatch."
	case q.Get("audience") == "":
		problem = "Missing required parameter: audience"
	case !containsAll(scopes, "openid", "offline_access"):
		problem = "scope must include openid and offline_access"
	case q.Get("response_type") != "code":
		problem = "Unsupported response type: " + q.Get("response_type")
	case q.Get("response_mode") != "query":
		problem = "Unsupported response mode: " + q.Get("response_mode")
	case q.Get("state") == "":
		problem = "Missing required parameter: state"
	case q.Get("nonce") == "":
		problem = "Missing required parameter: nonce"
	case !codeChallengeRE.MatchString(q.Get("code_challenge")):
		problem = "code_challenge must be 43-128 base64url characters"
	case q.Get("code_challenge_method") != "S256":
		problem = "code_challenge_method must be S256"
	case q.Get("auth0Client") == "":
		problem = "Missing required parameter: auth0Client"
	}
	if problem != "" {
		authPageError(w, http.StatusBadRequest, "invalid_request", problem)
		return
	}
	if aud := q.Get("audience"); aud != s.cfg.Audience {
		// With the client and the callback known, Auth0 sends this error back to the callback
		// (aws-samples/ask-around-me issue 2, auth0-samples/auth0-python-web-app issue 18).
		u, _ := url.Parse(s.cfg.RedirectURI) // configured: always parses
		u.RawQuery = url.Values{"error": {"access_denied"}, "error_description": {"Service not found: " + aud}, "state": {q.Get("state")}}.Encode()
		w.Header().Set("Location", strings.ReplaceAll(u.String(), "+", "%20"))
		w.WriteHeader(http.StatusFound)
		return
	}

	tx := &loginTx{
		id:           randomToken(24),
		origState:    q.Get("state"),
		loginState:   transactionState(),
		clientID:     q.Get("client_id"),
		redirectURI:  q.Get("redirect_uri"),
		audience:     q.Get("audience"),
		responseType: q.Get("response_type"),
		nonce:        q.Get("nonce"),
		challenge:    q.Get("code_challenge"),
		method:       q.Get("code_challenge_method"),
		scope:        strings.Join(scopes, " "),
		csrf:         randomToken(18),
	}
	s.mu.Lock()
	tx.created = s.cfg.Now()
	s.pruneLocked(tx.created)
	s.txByState[tx.loginState] = tx
	s.noteSecretsLocked(tx.csrf, tx.id)
	s.mu.Unlock()

	// Auth0's device and session cookies, with the attributes of the captures (homebridge
	// fixtures/auth/authorize-redirect.json; peloton-api.md 1.2 step 2): the _compat twins
	// omit SameSite for old browsers. auth0 carries the transaction.
	setAuth0Cookie(w, "did", randomToken(16), cookieExpiry(365*24*time.Hour))
	setAuth0Cookie(w, txCookie, tx.id, cookieExpiry(sessionCookieLife))
	w.Header().Set("Location", "/login?"+url.Values{
		"state":    {tx.loginState},
		"client":   {tx.clientID},
		"protocol": {"oauth2"},
	}.Encode())
	w.WriteHeader(http.StatusFound)
}

// transactionState is a login transaction's state: Auth0's is about 160 characters and is
// not the state the client sent (homebridge-peloton SPEC.md 4.1).
func transactionState() string { return randomToken(120) }

// sessionCookieLife is how long the auth0 session cookie lasts; the live value is not public.
const sessionCookieLife = 3 * 24 * time.Hour

// cookieExpiry is an Expires attribute d from now by the wall clock, not the simulator's
// (possibly fake) clock: cookie jars judge expiry by the client's wall clock.
func cookieExpiry(d time.Duration) time.Time { return time.Now().Add(d) }

// setAuth0Cookie sets name and name_compat as Auth0 does: Path=/, Expires, HttpOnly, Secure,
// SameSite=None on the first only.
func setAuth0Cookie(w http.ResponseWriter, name, value string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Expires: expires, HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
	http.SetCookie(w, &http.Cookie{Name: name + "_compat", Value: value, Path: "/", Expires: expires, HttpOnly: true, Secure: true})
}

// txCookieOK tells whether the request carries the transaction cookie of tx (either twin).
func txCookieOK(r *http.Request, tx *loginTx) bool {
	for _, name := range []string{txCookie, txCookie + "_compat"} {
		if c, err := r.Cookie(name); err == nil && c.Value == tx.id {
			return true
		}
	}
	return false
}

// handleLoginPage is the hosted login page, /login (homebridge-peloton SPEC.md 4.1: /authorize
// redirects to https://auth.onepeloton.com/login). It sets the _csrf cookie exactly as the
// public Postman captures record it, scoped to the credentials post:
// `_csrf=…; Max-Age=864000; Path=/usernamepassword/login; HttpOnly; Secure` (the path is what
// peloton-to-garmin's PelotonAuthApiClient.cs looks the cookie up by; homebridge's fixture
// says Path=/, but that fixture was synthesised, its README says). The page carries the
// transaction as one window.injectedConfig line of base64 JSON.
func (s *Simulator) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	tx, ok := s.txByState[r.URL.Query().Get("state")]
	ok = ok && tx.wresult == "" && txCookieOK(r, tx)
	s.mu.Unlock()
	if !ok {
		authPageError(w, http.StatusBadRequest, "invalid_request", "Invalid state")
		return
	}
	// Written by hand: net/http would put Path before Max-Age.
	w.Header().Add("Set-Cookie", csrfCookie+"="+tx.csrf+"; Max-Age=864000; Path=/usernamepassword/login; HttpOnly; Secure")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if s.cfg.LoginPageWithoutConfig {
		_, _ = io.WriteString(w, loginPageWithoutConfig)
		return
	}
	cfg, _ := json.Marshal(s.injectedConfig(tx)) // maps of strings always marshal
	loginPage.Execute(w, map[string]string{"Config": base64.StdEncoding.EncodeToString(cfg)})
}

// loginPageWithoutConfig is the login page of older captures: the widget's container only.
const loginPageWithoutConfig = `<!DOCTYPE html>
<html><head><title>Log in | Peloton</title></head><body><div id="lock-container"></div></body></html>
`

// injectedConfig is the JSON of the login page's window.injectedConfig, with the keys the
// homebridge-peloton probe recorded (SPEC.md 4.1, fixtures/auth/login-page.html).
func (s *Simulator) injectedConfig(tx *loginTx) map[string]any {
	options := map[string]string{
		"_csrf":                 csrfToken(tx.csrf),
		"_intstate":             auth0IntState,
		"audience":              tx.audience,
		"code_challenge":        tx.challenge,
		"code_challenge_method": tx.method,
		"nonce":                 tx.nonce,
		"protocol":              "oauth2",
		"response_type":         tx.responseType,
		"scope":                 tx.scope,
		"state":                 tx.loginState,
	}
	return map[string]any{
		"auth0Domain":                strings.TrimPrefix(strings.TrimPrefix(s.authURL, "https://"), "http://"),
		"auth0Tenant":                auth0Tenant,
		"authorizationServer":        map[string]string{"url": s.authURL, "issuer": s.authURL + "/"},
		"callbackOnLocationHash":     false,
		"callbackURL":                tx.redirectURI,
		"cdn":                        "https://cdn.auth0.com",
		"clientConfigurationBaseUrl": s.authURL + "/",
		"clientID":                   tx.clientID,
		"dict":                       map[string]any{"signin": map[string]string{"title": "Peloton"}},
		"extraParams":                options,
		"internalOptions":            options,
		"isThirdPartyClient":         false,
		"widgetUrl":                  "https://cdn.auth0.com/w2/auth0-widget-5.2.min.js",
	}
}

// csrfToken is the page's _csrf for the cookie's secret: a salted hash, so that the body and
// the cookie carry different values (as in homebridge's fixtures, "redacted-page-csrf" against
// "redacted-csrf"). Auth0's own derivation is not public; this is the scheme of the csrf
// library Express apps use (salt-hash(salt-secret)).
func csrfToken(secret string) string {
	b := make([]byte, 6)
	rand.Read(b)                  // never fails since Go 1.24
	salt := hex.EncodeToString(b) // no "-" in it: the token splits at the first one
	return salt + "-" + csrfHash(salt, secret)
}

func csrfHash(salt, secret string) string {
	sum := sha256.Sum256([]byte(salt + "-" + secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// csrfValid accepts the page's token for the cookie's secret, or the cookie's value itself,
// which older clients post and which the live service takes too (peloton-to-garmin, 2026;
// peloton-api.md 1.2 step 3).
func csrfValid(posted, secret string) bool {
	if posted == secret {
		return true
	}
	salt, hash, ok := strings.Cut(posted, "-")
	return ok && hmac.Equal([]byte(hash), []byte(csrfHash(salt, secret)))
}

var loginPage = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Log in | Peloton</title>
</head>
<body>
  <div class="auth0-lock-container"></div>
  <script src="https://cdn.auth0.com/w2/auth0-widget-5.2.min.js"></script>
  <script>
    window.injectedConfig = window.injectedConfig || "{{.Config}}";
    var config = JSON.parse(decodeURIComponent(escape(window.atob(window.injectedConfig))));
  </script>
</body>
</html>
`))

// loginRequest is what Auth0's login page script posts.
type loginRequest struct {
	ClientID            string `json:"client_id"`
	RedirectURI         string `json:"redirect_uri"`
	Tenant              string `json:"tenant"`
	ResponseType        string `json:"response_type"`
	Scope               string `json:"scope"`
	Audience            string `json:"audience"`
	CSRF                string `json:"_csrf"`
	State               string `json:"state"`
	IntState            string `json:"_intstate"`
	Nonce               string `json:"nonce"`
	Username            string `json:"username"`
	Password            string `json:"password"`
	Connection          string `json:"connection"`
	CodeChallenge       string `json:"code_challenge"`
	CodeChallengeMethod string `json:"code_challenge_method"`
	Protocol            string `json:"protocol"` // sent by the page's script; older clients omit it
}

// loginFieldProblem checks the posted login against the transaction that
// /authorize started, as Auth0 does, and describes the first mismatch by the
// field's name only: the values may be secrets (nonce, code_challenge).
func loginFieldProblem(b *loginRequest, tx *loginTx) string {
	for _, f := range []struct{ name, got, want string }{
		{"client_id", b.ClientID, tx.clientID},
		{"redirect_uri", b.RedirectURI, tx.redirectURI},
		{"tenant", b.Tenant, auth0Tenant},
		{"response_type", b.ResponseType, tx.responseType},
		// The page script sends the transaction's scope back as it was
		// asked for; only runs of whitespace may differ.
		{"scope", strings.Join(strings.Fields(b.Scope), " "), tx.scope},
		{"audience", b.Audience, tx.audience},
		{"_intstate", b.IntState, auth0IntState},
		{"nonce", b.Nonce, tx.nonce},
		{"connection", b.Connection, auth0Connection},
		{"code_challenge", b.CodeChallenge, tx.challenge},
		{"code_challenge_method", b.CodeChallengeMethod, tx.method},
	} {
		switch {
		case f.got == "":
			return "Missing required parameter: " + f.name
		case f.got != f.want:
			return "Invalid " + f.name + "."
		}
	}
	if b.Protocol != "" && b.Protocol != "oauth2" {
		return "Invalid protocol."
	}
	if b.Username == "" || b.Password == "" {
		return "Missing username or password."
	}
	return ""
}

// loginError is the JSON error of /usernamepassword/login.
type loginError struct {
	StatusCode  int    `json:"statusCode"`
	Description string `json:"description"`
	Name        string `json:"name"`
	Code        string `json:"code"`
}

// Auth0's answers to a credentials post that is not a success. The bodies are those of the
// public record: the wrong password (homebridge fixtures/auth/credentials-failure.json,
// peloton-api.md 1.2), a request of the wrong shape (credentials-anomaly.json: "Sending the
// authorize state in the body instead of the transaction state is rejected with HTTP 403",
// SPEC.md 4.1) and a blocked account (auth0/lock issue 327: after 10 invalid logins,
// too_many_attempts with this text).
var (
	errWrongPassword = loginError{http.StatusUnauthorized, "Wrong email or password.", "ValidationError", "invalid_user_password"}
	errInvalidState  = loginError{http.StatusForbidden, "Invalid state", "AnomalyDetected", "access_denied"}
	errBlocked       = loginError{http.StatusTooManyRequests, "Your account has been blocked after multiple consecutive login attempts. We’ve sent you an email with instructions on how to unblock it.", "AnomalyDetected", "too_many_attempts"}
	// errIPThrottled is suspicious IP throttling's answer: the same code as a blocked account,
	// but a block that lifts by itself (Auth0 docs, "Suspicious IP Throttling"; the text as
	// Auth0's Custom Token Exchange attack-protection page and Universal Login's ip-blocked
	// message give it).
	errIPThrottled = loginError{http.StatusTooManyRequests, "We have detected suspicious login behavior and further attempts will be blocked. Please contact the administrator.", "AnomalyDetected", "too_many_attempts"}
)

// Suspicious IP throttling's defaults: 100 failed logins from one IP a day, then one more
// attempt granted every 864,000 ms (Management API, suspicious-ip-throttling, stage
// pre-login: max_attempts 100, rate 864000; auth0/docs brute-force-protection-triggers-
// actions.md: "approximately 1 additional attempt every 15 minutes").
const (
	ipThrottleDefault = 100
	ipThrottleWindow  = 24 * time.Hour
	ipThrottleRate    = 864 * time.Second
)

// ipFailures are the failed logins from one IP, whatever the usernames.
type ipFailures struct {
	count int
	since time.Time // the first failure of the window
	next  time.Time // a throttled IP's next granted attempt
}

// ipThrottledLocked tells whether a login from ip is throttled now; a granted attempt is
// used up by asking. s.mu must be held.
func (s *Simulator) ipThrottledLocked(ip string, now time.Time) bool {
	f := s.ipFailures[ip]
	switch {
	case f == nil || s.cfg.IPThrottleAfter < 0:
		return false
	case now.Sub(f.since) >= ipThrottleWindow:
		delete(s.ipFailures, ip)
		return false
	case f.count < s.cfg.IPThrottleAfter:
		return false
	case now.Before(f.next):
		return true
	}
	f.next = now.Add(ipThrottleRate)
	return false
}

// noteIPFailureLocked counts a failed login from ip. s.mu must be held.
func (s *Simulator) noteIPFailureLocked(ip string, now time.Time) {
	f := s.ipFailures[ip]
	if f == nil {
		f = &ipFailures{since: now}
		s.ipFailures[ip] = f
	}
	if f.count++; f.count == s.cfg.IPThrottleAfter {
		f.next = now.Add(ipThrottleRate)
	}
}

// bruteForceLimit is Auth0's default brute-force threshold: 10 failed logins for one user
// from one IP block that pair until the member unblocks it (Auth0 docs, "Brute-Force
// Protection"; its Management API default max_attempts is 10, mode
// count_per_identifier_and_ip).
const bruteForceLimit = 10

func (s *Simulator) handleLogin(w http.ResponseWriter, r *http.Request) {
	fail := func(e loginError) { writeJSON(w, e.StatusCode, e) }
	badRequest := func(description string) {
		fail(loginError{http.StatusBadRequest, description, "BadRequestError", "invalid_request"})
	}
	// The login page's script always sends these; a client that forgets
	// them looks like a bot to Auth0.
	if r.Header.Get("Origin") != s.authURL || !strings.HasPrefix(r.Header.Get("Referer"), s.authURL+"/login?") {
		fail(loginError{http.StatusForbidden, "Invalid request origin.", "AnomalyDetected", "access_denied"})
		return
	}
	if r.Header.Get("Auth0-Client") == "" {
		badRequest("Missing Auth0-Client header.")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		badRequest("Content-Type must be application/json.")
		return
	}
	var body loginRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&body); err != nil {
		badRequest("Invalid JSON body.")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	tx, ok := s.txByState[body.State]
	if !ok || tx.wresult != "" || !txCookieOK(r, tx) {
		fail(errInvalidState)
		return
	}
	// The _csrf cookie must come with the post (the jar sends it only to its path) and the
	// body's _csrf must belong to it. Auth0's answer to a bad csrf is not in the public
	// record; the request-shape answer above is assumed.
	if c, err := r.Cookie(csrfCookie); err != nil || c.Value != tx.csrf || !csrfValid(body.CSRF, tx.csrf) {
		fail(errInvalidState)
		return
	}
	if problem := loginFieldProblem(&body, tx); problem != "" {
		badRequest(problem)
		return
	}
	ip, now := clientIP(r), s.cfg.Now()
	if s.ipThrottledLocked(ip, now) {
		fail(errIPThrottled) // the password unchecked, and not counted against the user
		return
	}
	key := strings.ToLower(body.Username) + "|" + ip
	if s.failedLogins[key] >= bruteForceLimit {
		fail(errBlocked) // even with the right password: the block is on the user and IP
		return
	}
	// Every profile of a membership signs in with its own credentials (peloton-api.md,
	// "Household"). E-mail addresses compare case-insensitively at Auth0; passwords do not. An
	// unknown user gets the same answer as a wrong password.
	m := s.memberByLogin(body.Username)
	if m == nil || body.Password != m.password {
		s.failedLogins[key]++
		s.noteIPFailureLocked(ip, now)
		s.noteSignInLocked(body.Username, false)
		fail(errWrongPassword)
		return
	}
	if s.cfg.VerifyLogins && r.Header.Get(personHeader) != s.person {
		// The password step is passed, the verification is not: neither a failure nor a
		// success for the count. The page is that of the transcript (synthesised, as
		// homebridge-peloton's fixtures/auth/verification-required.html is).
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		verificationPage.Execute(w, map[string]string{"State": randomToken(24)})
		return
	}
	// Auth0 counts failures "consecutively" (docs, "User/Password Authentication Rate
	// Limits"): a success resets the count.
	delete(s.failedLogins, key)
	s.noteSignInLocked(body.Username, true)
	tx.userID = m.userID

	tx.wresult = randomToken(48)
	s.txByWResult[tx.wresult] = tx
	s.noteSecretsLocked(tx.wresult)
	wctx, _ := json.Marshal(map[string]any{
		"strategy":      "auth0",
		"auth0Client":   "",
		"tenant":        auth0Tenant,
		"connection":    auth0Connection,
		"client_id":     s.cfg.ClientID,
		"response_type": "code",
		"response_mode": "query",
		"scope":         tx.scope,
		"protocol":      "oauth2",
		"redirect_uri":  s.cfg.RedirectURI,
		"state":         tx.loginState,
		"nonce":         tx.nonce,
		"audience":      s.cfg.Audience,
	})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	hiddenForm.Execute(w, map[string]string{
		"Action":  s.authURL + "/login/callback",
		"WResult": tx.wresult,
		"WCtx":    string(wctx),
	})
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// UnblockAccount lifts the brute-force block of every IP, as the member's click on Auth0's
// unblock e-mail does.
func (s *Simulator) UnblockAccount() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.failedLogins)
}

// personHeader carries Simulator.person: SignInWithBrowser's mark of a member at a browser,
// who passes a verification step.
const personHeader = "X-Simulated-Person"

var verificationPage = template.Must(template.New("verify").Parse(`<!DOCTYPE html>
<html lang="en">
<head><title>Verify your identity</title></head>
<body>
  <main>
    <h1>Verify your identity</h1>
    <p>We have sent a verification code to your email. Enter the code below to continue.</p>
    <form method="post" action="/u/mfa-email-challenge?state={{.State}}">
      <input type="hidden" name="state" value="{{.State}}">
      <input type="text" name="code" inputmode="numeric" autocomplete="one-time-code">
      <button type="submit">Continue</button>
    </form>
  </main>
</body>
</html>
`))

// hiddenForm is the page Auth0 answers a successful login with; a browser's
// script posts it on, a headless client must do the same.
var hiddenForm = template.Must(template.New("form").Parse(`<form method="post" name="hiddenform" action="{{.Action}}">
    <input type="hidden" name="wa" value="wsignin1.0">
    <input type="hidden" name="wresult" value="{{.WResult}}">
    <input type="hidden" name="wctx" value="{{.WCtx}}">
    <noscript>
        <p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit">
    </noscript>
</form>
<script type="text/javascript">window.setTimeout(function(){document.forms[0].submit();},0);</script>
`))

// handleCallback takes the hidden form: 302 to /authorize/resume with a new session in the
// auth0 cookies (homebridge SPEC.md 4.1 step 5.1, fixtures/auth/callback-resume-redirect.json).
func (s *Simulator) handleCallback(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		authPageError(w, http.StatusBadRequest, "invalid_request", "Expected a form post.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		authPageError(w, http.StatusBadRequest, "invalid_request", "Invalid form.")
		return
	}
	s.mu.Lock()
	tx, ok := s.txByWResult[r.PostForm.Get("wresult")]
	ok = ok && txCookieOK(r, tx)
	if ok {
		// One use only: a replayed form must fail.
		delete(s.txByWResult, tx.wresult)
		tx.stage = stageCallback
		tx.id = randomToken(24) // the session cookie changes here
		s.noteSecretsLocked(tx.id)
	}
	s.mu.Unlock()
	if !ok || r.PostForm.Get("wa") != "wsignin1.0" {
		authPageError(w, http.StatusForbidden, "access_denied", "Invalid or expired login result.")
		return
	}
	setAuth0Cookie(w, txCookie, tx.id, cookieExpiry(sessionCookieLife))
	w.Header().Set("Location", "/authorize/resume?state="+url.QueryEscape(tx.loginState))
	w.WriteHeader(http.StatusFound)
}

// handleResume is /authorize/resume, reached twice in the live chain (SPEC.md 4.1 step 5):
// after the callback it sends the browser to Peloton's SSO host, and after /continue it
// issues the code to the redirect URI. In PlainHTTP mode, which has no SSO host, the first
// visit issues the code at once (the single-hop shape, still accepted by clients).
func (s *Simulator) handleResume(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	tx, ok := s.txByState[r.URL.Query().Get("state")]
	ok = ok && txCookieOK(r, tx) && (tx.stage == stageCallback || tx.stage == stageContinued)
	toSSO := ok && tx.stage == stageCallback && s.orcaURL != ""
	var code string
	switch {
	case toSSO:
		tx.stage = stageSSO
		tx.ssoState = randomToken(24)
		tx.claimToken = randomToken(24)
		s.txBySSO[tx.ssoState] = tx
		s.noteSecretsLocked(tx.claimToken)
	case ok:
		delete(s.txByState, tx.loginState)
		delete(s.txBySSO, tx.ssoState)
		code = randomToken(24)
		s.noteSecretsLocked(code)
		s.codes[code] = &authCode{
			userID:      tx.userID,
			challenge:   tx.challenge,
			redirectURI: s.cfg.RedirectURI,
			scope:       tx.scope,
			nonce:       tx.nonce,
			issued:      s.cfg.Now(),
		}
	}
	s.mu.Unlock()
	if !ok {
		authPageError(w, http.StatusForbidden, "access_denied", "Invalid state")
		return
	}
	if toSSO {
		// SPEC.md 4.1 step 5.2, fixtures/auth/resume-sso-redirect.json.
		w.Header().Set("Location", s.orcaURL+"/sso/login_site?"+url.Values{
			"visited_site":        {"https://members.onepeloton.com"},
			"user_id":             {tx.userID},
			"client_name":         {"Members"},
			"session_claim_token": {tx.claimToken},
			"state":               {tx.ssoState},
		}.Encode())
		w.WriteHeader(http.StatusFound)
		return
	}
	u, err := url.Parse(s.cfg.RedirectURI)
	if err != nil {
		authPageError(w, http.StatusInternalServerError, "server_error", "Bad redirect URI configured.")
		return
	}
	q := u.Query()
	q.Set("code", code)
	q.Set("state", tx.origState)
	u.RawQuery = q.Encode()
	setAuth0Cookie(w, txCookie, tx.id, cookieExpiry(sessionCookieLife)) // resume-callback-redirect.json
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

// handleContinue is auth's /continue, where the SSO host sends the browser back: 302 to
// /authorize/resume (SPEC.md 4.1 step 5.5, fixtures/auth/continue-redirect.json).
func (s *Simulator) handleContinue(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	tx, ok := s.txByState[r.URL.Query().Get("state")]
	ok = ok && txCookieOK(r, tx) && tx.stage == stageSSODone
	if ok {
		tx.stage = stageContinued
	}
	s.mu.Unlock()
	if !ok {
		authPageError(w, http.StatusForbidden, "access_denied", "Invalid state")
		return
	}
	w.Header().Set("Location", "/authorize/resume?state="+url.QueryEscape(tx.loginState))
	w.WriteHeader(http.StatusFound)
}

// oauthError is the error shape of /oauth/token.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorURI         string `json:"error_uri,omitempty"`
}

func (s *Simulator) handleToken(w http.ResponseWriter, r *http.Request) {
	p, ok := tokenParams(w, r)
	if !ok {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "Invalid request body.", ""})
		return
	}
	if p["client_id"] != s.cfg.ClientID {
		writeJSON(w, http.StatusUnauthorized, oauthError{"access_denied", "Unauthorized", ""})
		return
	}
	switch gt := p["grant_type"]; gt {
	case "authorization_code":
		s.codeGrant(w, p)
	case "refresh_token":
		s.refreshGrant(w, p)
	case "password":
		writeJSON(w, http.StatusForbidden, oauthError{"unauthorized_client",
			"Grant type 'password' not allowed for the client.",
			"https://auth0.com/docs/clients/client-grant-types"})
	case "":
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "Missing required parameter: grant_type", ""})
	default:
		writeJSON(w, http.StatusForbidden, oauthError{"unsupported_grant_type", "Unsupported grant type: " + gt, ""})
	}
}

// tokenParams reads the token request's parameters; Auth0 takes JSON and
// form-encoded bodies alike.
func tokenParams(w http.ResponseWriter, r *http.Request) (map[string]string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	p := map[string]string{}
	switch mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt {
	case "application/json":
		var raw map[string]any
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			return nil, false
		}
		for k, v := range raw {
			if s, ok := v.(string); ok {
				p[k] = s
			}
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, false
		}
		for k := range r.PostForm {
			p[k] = r.PostForm.Get(k)
		}
	default:
		return nil, false
	}
	return p, true
}

func (s *Simulator) codeGrant(w http.ResponseWriter, p map[string]string) {
	invalid := func(description string) {
		writeJSON(w, http.StatusForbidden, oauthError{"invalid_grant", description, ""})
	}
	if p["code"] == "" {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "Missing required parameter: code", ""})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ac, ok := s.codes[p["code"]]
	if !ok || s.cfg.Now().Sub(ac.issued) >= codeLifetime {
		delete(s.codes, p["code"])
		invalid("Invalid authorization code")
		return
	}
	if p["redirect_uri"] != ac.redirectURI {
		invalid("The redirect_uri does not match the one of the authorization request.")
		return
	}
	if p["code_verifier"] == "" || pkceChallenge(p["code_verifier"]) != ac.challenge {
		// A wrong verifier burns the code, so it cannot be guessed at.
		delete(s.codes, p["code"])
		invalid("Failed to verify code verifier")
		return
	}
	delete(s.codes, p["code"])
	m := s.memberByID(ac.userID)
	if m == nil { // a member cannot leave the membership: a programming error
		invalid("Invalid authorization code")
		return
	}
	writeJSON(w, http.StatusOK, s.issueTokensLocked(ac.scope, ac.nonce, nil, m))
}

func (s *Simulator) refreshGrant(w http.ResponseWriter, p map[string]string) {
	if p["refresh_token"] == "" {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "Missing required parameter: refresh_token", ""})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	unknown := oauthError{"invalid_grant", "Unknown or invalid refresh token.", ""}
	g, ok := s.refresh[p["refresh_token"]]
	if !ok || g.family.revoked {
		writeJSON(w, http.StatusForbidden, unknown)
		return
	}
	if !g.used.IsZero() {
		// Reuse of a rotated token means it leaked (or the client lost
		// track): Auth0 refuses it and revokes the whole family, so the
		// live refresh token and the access tokens issued along it stop
		// working too. No reuse interval is configured, as is Auth0's
		// default.
		s.revokeFamilyLocked(g.family)
		writeJSON(w, http.StatusForbidden, unknown)
		return
	}
	// Rotation: the old refresh token is spent, but remembered so that its
	// reuse can be detected.
	g.used = s.cfg.Now()
	m := s.memberByID(g.userID)
	if m == nil {
		writeJSON(w, http.StatusForbidden, unknown)
		return
	}
	writeJSON(w, http.StatusOK, s.issueTokensLocked(g.scope, "", g.family, m))
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
