package simulator

import (
	"encoding/json"
	"html/template"
	"io"
	"mime"
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
	csrf         string
	created      time.Time
	wresult      string // set once the credentials were accepted
	callbackHit  bool   // set once the hidden form was posted
}

var codeChallengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43,128}$`)

func (s *Simulator) authHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", s.endpoint(EndpointAuthorize, s.handleAuthorize))
	mux.HandleFunc("GET /u/login", s.endpoint(EndpointLoginPage, s.handleLoginPage))
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
	case q.Get("audience") != s.cfg.Audience:
		problem = "Service not found: " + q.Get("audience")
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

	tx := &loginTx{
		id:           randomToken(24),
		origState:    q.Get("state"),
		loginState:   randomToken(32),
		clientID:     q.Get("client_id"),
		redirectURI:  q.Get("redirect_uri"),
		audience:     q.Get("audience"),
		responseType: q.Get("response_type"),
		nonce:        q.Get("nonce"),
		challenge:    q.Get("code_challenge"),
		method:       q.Get("code_challenge_method"),
		scope:        strings.Join(scopes, " "),
		csrf:         randomToken(24),
	}
	s.mu.Lock()
	tx.created = s.cfg.Now()
	s.pruneLocked(tx.created)
	s.txByState[tx.loginState] = tx
	s.noteSecretsLocked(tx.csrf)
	s.mu.Unlock()

	// No Domain and no Secure: the jar must send them back to plain-HTTP
	// 127.0.0.1.
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tx.csrf, Path: "/", HttpOnly: true})
	http.SetCookie(w, &http.Cookie{Name: txCookie, Value: tx.id, Path: "/", HttpOnly: true})
	w.Header().Set("Location", "/u/login?state="+url.QueryEscape(tx.loginState))
	w.WriteHeader(http.StatusFound)
}

func (s *Simulator) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	tx, ok := s.txByState[r.URL.Query().Get("state")]
	ok = ok && tx.wresult == ""
	s.mu.Unlock()
	if !ok {
		authPageError(w, http.StatusBadRequest, "invalid_request", "Invalid state")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	loginPage.Execute(w, map[string]string{"State": tx.loginState})
}

var loginPage = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Log in | Peloton (simulated)</title></head>
<body>
<form method="POST" action="">
<input type="hidden" name="state" value="{{.State}}">
<label>Email or username <input type="text" name="username" autocomplete="username"></label>
<label>Password <input type="password" name="password" autocomplete="current-password"></label>
<button type="submit" name="action" value="default">Log in</button>
</form>
</body></html>
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

func (s *Simulator) handleLogin(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, name, code, description string) {
		writeJSON(w, status, loginError{StatusCode: status, Description: description, Name: name, Code: code})
	}
	// The login page's script always sends these; a client that forgets
	// them looks like a bot to Auth0.
	if r.Header.Get("Origin") != s.authURL ||
		!strings.HasPrefix(r.Header.Get("Referer"), s.authURL+"/u/login") {
		fail(http.StatusForbidden, "AnomalyDetected", "invalid_origin", "Invalid request origin.")
		return
	}
	if r.Header.Get("Auth0-Client") == "" {
		fail(http.StatusBadRequest, "BadRequestError", "invalid_request", "Missing Auth0-Client header.")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		fail(http.StatusBadRequest, "BadRequestError", "invalid_request", "Content-Type must be application/json.")
		return
	}
	var body loginRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&body); err != nil {
		fail(http.StatusBadRequest, "BadRequestError", "invalid_request", "Invalid JSON body.")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	tx, ok := s.txByState[body.State]
	txc, _ := r.Cookie(txCookie)
	if !ok || tx.wresult != "" || txc == nil || txc.Value != tx.id {
		fail(http.StatusForbidden, "AnomalyDetected", "invalid_state", "Invalid state")
		return
	}
	// The _csrf field must match both the cookie and the transaction.
	if csrf, _ := r.Cookie(csrfCookie); csrf == nil || body.CSRF != csrf.Value || csrf.Value != tx.csrf {
		fail(http.StatusForbidden, "AnomalyDetected", "invalid_state", "Invalid _csrf.")
		return
	}
	if problem := loginFieldProblem(&body, tx); problem != "" {
		fail(http.StatusBadRequest, "BadRequestError", "invalid_request", problem)
		return
	}
	// E-mail addresses compare case-insensitively at Auth0; passwords do not.
	if !strings.EqualFold(body.Username, s.cfg.Username) || body.Password != s.password {
		fail(http.StatusUnauthorized, "ValidationError", "invalid_user_password", "Wrong email or password.")
		return
	}

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
	if ok {
		// One use only: a replayed form must fail.
		delete(s.txByWResult, tx.wresult)
		tx.callbackHit = true
	}
	s.mu.Unlock()
	if !ok || r.PostForm.Get("wa") != "wsignin1.0" {
		authPageError(w, http.StatusForbidden, "access_denied", "Invalid or expired login result.")
		return
	}
	w.Header().Set("Location", "/authorize/resume?state="+url.QueryEscape(tx.loginState))
	w.WriteHeader(http.StatusFound)
}

func (s *Simulator) handleResume(w http.ResponseWriter, r *http.Request) {
	txc, _ := r.Cookie(txCookie)
	s.mu.Lock()
	tx, ok := s.txByState[r.URL.Query().Get("state")]
	ok = ok && tx.callbackHit && txc != nil && txc.Value == tx.id
	var code string
	if ok {
		delete(s.txByState, tx.loginState)
		code = randomToken(24)
		s.noteSecretsLocked(code)
		s.codes[code] = &authCode{
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
	u, err := url.Parse(s.cfg.RedirectURI)
	if err != nil {
		authPageError(w, http.StatusInternalServerError, "server_error", "Bad redirect URI configured.")
		return
	}
	q := u.Query()
	q.Set("code", code)
	q.Set("state", tx.origState)
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
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
	writeJSON(w, http.StatusOK, s.issueTokensLocked(ac.scope, ac.nonce, nil))
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
	writeJSON(w, http.StatusOK, s.issueTokensLocked(g.scope, "", g.family))
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
