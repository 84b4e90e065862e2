package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"

	"golang.org/x/net/publicsuffix"
)

// The password login drives Auth0's hosted login page without a browser, as the live service
// wants it (peloton-api.md 1.2; homebridge-peloton SPEC.md 4.1, checked against
// peloton-to-garmin's PelotonAuthApiClient.cs). One function a step:
//
//  1. openLoginPage: GET /authorize with a fresh PKCE pair, state and nonce, redirected to /login
//  2. credentialsBody: what the page's script posts, from its window.injectedConfig
//  3. postCredentials: POST /usernamepassword/login; readCredentialsAnswer tells a refusal, a
//     verification step and the hidden form apart (a redirect in the form's place goes to 5)
//  4. postHiddenForm: POST the form to /login/callback
//  5. followToRedirectURI: the redirect chain across Peloton's hosts, up to the redirect URI
//  6. exchangeCode: the code and the PKCE verifier for tokens

// loginFlow is one password login in progress: its secrets, its cookie jar and its trace.
type loginFlow struct {
	c      *Client
	hc     *http.Client // c's client with this login's own jar
	pkce   pkce
	state  string
	nonce  string
	policy hostPolicy
	trace  loginTrace
	// beforePost runs just before the credentials are posted: the refusal budget counts
	// the attempt there (see loginGate).
	beforePost func()
}

func (c *Client) newLoginFlow(beforePost func()) (*loginFlow, error) {
	// A fresh jar per login: no stale Auth0 session. The public suffix list keeps a host from
	// setting cookies for a whole public suffix. The jar gives each host only its own
	// cookies, and each path only the cookies scoped to it.
	jar, err := cookiejar.New(&cookiejar.Options{PublicSuffixList: publicsuffix.List})
	if err != nil {
		return nil, err
	}
	policy, err := newHostPolicy(c.cfg.AuthURL)
	if err != nil {
		return nil, err
	}
	hc := *c.http
	hc.Jar = jar
	return &loginFlow{c: c, hc: &hc, pkce: newPKCE(), state: randomString(16), nonce: randomString(16),
		policy: policy, trace: loginTrace{logger: c.cfg.Logger}, beforePost: beforePost}, nil
}

// login runs the six steps and returns the tokens. beforePost runs just before the credentials
// are posted.
func (c *Client) login(ctx context.Context, beforePost func()) (*tokenResponse, error) {
	if c.cfg.Username == "" || c.cfg.Password == "" {
		return nil, errors.New("no username or password configured")
	}
	f, err := c.newLoginFlow(beforePost)
	if err != nil {
		return nil, err
	}
	page, pageURL, err := f.openLoginPage(ctx) // 1
	if err != nil {
		return nil, err
	}
	body, err := f.credentialsBody(page, pageURL) // 2
	if err != nil {
		return nil, err
	}
	answer, at, err := f.postCredentials(ctx, pageURL, body) // 3
	if err != nil {
		return nil, err
	}
	if answer.location == nil { // the hidden form, as seen live; a redirect in its place goes to step 5 as it is
		form, err := readCredentialsAnswer(answer)
		if err != nil {
			return nil, err
		}
		if answer, at, err = f.postHiddenForm(ctx, form); err != nil { // 4
			return nil, err
		}
	}
	code, err := f.followToRedirectURI(ctx, at, answer) // 5
	if err != nil {
		return nil, err
	}
	return f.exchangeCode(ctx, code) // 6
}

// authorizeQuery is the /authorize query of Peloton's web app with this flow's secrets; the
// browser sign-in uses it too.
func (c *Client) authorizeQuery(p pkce, state, nonce string) url.Values {
	return url.Values{
		"client_id":             {c.cfg.ClientID},
		"audience":              {c.cfg.Audience},
		"scope":                 {c.cfg.Scope},
		"response_type":         {"code"},
		"response_mode":         {"query"},
		"redirect_uri":          {c.cfg.RedirectURI},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {p.challenge},
		"code_challenge_method": {"S256"},
		"auth0Client":           {c.cfg.Auth0Client},
	}
}

// openLoginPage is step 1: /authorize redirects to the login page, which sets the _csrf
// cookie (on the credentials post's path) and carries the transaction.
func (f *loginFlow) openLoginPage(ctx context.Context) (*response, *url.URL, error) {
	req, err := http.NewRequest(http.MethodGet, f.c.cfg.AuthURL+"/authorize?"+f.c.authorizeQuery(f.pkce, f.state, f.nonce).Encode(), nil)
	if err != nil {
		return nil, nil, err
	}
	page, pageURL, err := f.fetch(ctx, req, nil)
	if err != nil {
		return nil, nil, err
	}
	if f.c.isRedirectURI(pageURL) {
		// Sent back before any login page: an error by redirect (an unknown audience is
		// answered ?error=access_denied&error_description=Service not found: …).
		if _, err := codeFromCallback(pageURL, f.state); err != nil {
			return nil, nil, err
		}
		return nil, nil, errors.New("authorize: sent to the redirect URI without a login page")
	}
	if page.status != http.StatusOK {
		return nil, nil, &HTTPError{Endpoint: endpointFor(pageURL, f.policy), Status: page.status, Message: describeBody(page.header.Get("Content-Type"), page.body)}
	}
	return page, pageURL, nil
}

// credentialsBody is step 2: the JSON the page's own script would post. With the page's
// window.injectedConfig that is its internalOptions verbatim (the _csrf token, the
// transaction state, …) plus the client, the callback, the tenant, the connection and the
// credentials; the challenge and nonce must be ours, or nothing is posted. A page without the
// config gets the older body (the _csrf cookie's value and the login URL's state), which the
// live service takes too (peloton-to-garmin, 2026).
func (f *loginFlow) credentialsBody(page *response, pageURL *url.URL) (map[string]any, error) {
	cfg, err := parseInjectedConfig(page.body)
	if err != nil {
		return nil, fmt.Errorf("login page: %w", err)
	}
	if cfg == nil {
		return f.legacyCredentialsBody(pageURL)
	}
	opts := cfg.InternalOptions
	if jsonString(opts["code_challenge"]) != f.pkce.challenge || jsonString(opts["nonce"]) != f.nonce {
		return nil, errors.New("login page: it does not carry this login's PKCE challenge and nonce; nothing was posted (has Peloton's login page changed?)")
	}
	if jsonString(opts["state"]) == "" {
		return nil, errors.New("login page: its configuration has no transaction state (has Peloton's login page changed?)")
	}
	if cfg.CallbackURL != "" && !f.c.isRedirectURI(mustParse(cfg.CallbackURL)) {
		return nil, errors.New("login page: it names another callback URL than --peloton.redirect-uri; nothing was posted")
	}
	tenant := cfg.Auth0Tenant
	if tenant == "" {
		tenant = auth0Tenant
	}
	body := map[string]any{}
	for k, v := range opts {
		body[k] = v
	}
	body["client_id"] = f.c.cfg.ClientID
	body["redirect_uri"] = f.c.cfg.RedirectURI
	body["tenant"] = tenant
	body["connection"] = auth0Connection
	body["username"] = f.c.cfg.Username
	body["password"] = f.c.cfg.Password
	return body, nil
}

func (f *loginFlow) legacyCredentialsBody(pageURL *url.URL) (map[string]any, error) {
	csrf := ""
	// The cookie is scoped to the path it is posted to: ask the jar for that URL's cookies.
	for _, ck := range f.hc.Jar.Cookies(mustParse(f.c.cfg.AuthURL + "/usernamepassword/login")) {
		if ck.Name == "_csrf" {
			csrf = ck.Value
		}
	}
	if csrf == "" {
		return nil, errors.New("login page: neither a window.injectedConfig nor a _csrf cookie (has Peloton's login page changed?)")
	}
	state := pageURL.Query().Get("state")
	if state == "" {
		return nil, errors.New("login page: its URL has no transaction state (has Peloton's login page changed?)")
	}
	return map[string]any{
		"client_id":             f.c.cfg.ClientID,
		"redirect_uri":          f.c.cfg.RedirectURI,
		"tenant":                auth0Tenant,
		"response_type":         "code",
		"scope":                 f.c.cfg.Scope,
		"audience":              f.c.cfg.Audience,
		"_csrf":                 csrf,
		"state":                 state,
		"_intstate":             "deprecated",
		"nonce":                 f.nonce,
		"username":              f.c.cfg.Username,
		"password":              f.c.cfg.Password,
		"connection":            auth0Connection,
		"code_challenge":        f.pkce.challenge,
		"code_challenge_method": "S256",
	}, nil
}

// postCredentials is step 3: it posts body and returns the answer and the URL it answers.
func (f *loginFlow) postCredentials(ctx context.Context, pageURL *url.URL, body map[string]any) (*response, *url.URL, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequest(http.MethodPost, f.c.cfg.AuthURL+"/usernamepassword/login", bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", f.c.cfg.AuthURL)
	req.Header.Set("Referer", pageURL.String())
	req.Header.Set("Auth0-Client", f.c.cfg.Auth0Client)
	// Whether the post went out decides whether an attempt without an answer counts.
	var wrote atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
	}))
	if f.beforePost != nil {
		f.beforePost()
	}
	r, err := f.send(req.Context(), req, sortedKeys(body))
	if err != nil {
		var limited *RateLimitedError // an answer: Peloton's 429, or our wait for an earlier one
		if wrote.Load() && !errors.As(err, &limited) {
			return nil, nil, &unansweredError{err}
		}
		return nil, nil, err
	}
	return r, req.URL, nil
}

// readCredentialsAnswer reads step 3's answer: a refusal, a verification step (a page of its
// own: the credentials were taken, but a headless login cannot go on), or the hidden form.
func readCredentialsAnswer(r *response) (*HiddenForm, error) {
	if err := credentialsRefusal(r); err != nil {
		return nil, err
	}
	form, err := parseHiddenForm(r.body)
	if err != nil || form.Fields.Get("wresult") == "" {
		return nil, ErrVerificationRequired
	}
	return form, nil
}

// credentialsRefusal tells the credentials post's refusals apart (bodies from Auth0's
// documentation and public captures; the status in the body may differ from HTTP's):
// wrong credentials, a request of the wrong shape, a blocked account, anything else.
func credentialsRefusal(r *response) error {
	if r.status == http.StatusOK {
		return nil
	}
	le := parseLoginError(r)
	switch {
	case isAccountBlocked(r):
		return ErrAccountBlocked
	case le.Code == "invalid_user_password",
		r.status == http.StatusUnauthorized && le.Code == "",
		le.Code == "access_denied" && strings.Contains(strings.ToLower(le.Description), "wrong email or password"):
		return ErrCredentialsRefused
	case r.status == http.StatusForbidden && (le.Name == "AnomalyDetected" || le.Code == "access_denied" || le.Code == "invalid_state"):
		return ErrLoginRejected
	}
	return &HTTPError{Endpoint: "login", Status: r.status, Message: describeBody(r.header.Get("Content-Type"), r.body)}
}

// postHiddenForm is step 4: the form goes to its action, which must be the auth host itself.
// It returns the answer, the start of the redirect chain, and the URL it answers.
func (f *loginFlow) postHiddenForm(ctx context.Context, form *HiddenForm) (*response, *url.URL, error) {
	base := mustParse(f.c.cfg.AuthURL + "/")
	action := mustParse(f.c.cfg.AuthURL + "/login/callback")
	if form.Action != "" {
		a, err := base.Parse(form.Action)
		if err != nil || !sameOrigin(a, base) {
			return nil, nil, errors.New("login: the login form posts to an unexpected place")
		}
		action = a
	}
	req, err := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(form.Fields.Encode()))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.c.cfg.AuthURL)
	r, err := f.send(ctx, req, sortedKeys(form.Fields))
	if err != nil {
		return nil, nil, err
	}
	return r, req.URL, nil
}

// followToRedirectURI is step 5: it follows the redirects of r, the answer for from (see
// follow), and takes the code from the redirect to the redirect URI, checking our state.
func (f *loginFlow) followToRedirectURI(ctx context.Context, from *url.URL, r *response) (string, error) {
	final, finalURL, err := f.follow(ctx, from, r)
	if err != nil {
		return "", err
	}
	if !f.c.isRedirectURI(finalURL) {
		return "", &HTTPError{Endpoint: endpointFor(finalURL, f.policy), Status: final.status, Message: "the login ended without an authorization code"}
	}
	return codeFromCallback(finalURL, f.state)
}

// codeFromCallback reads the authorization code from the redirect URI, or the error Auth0
// sent back by redirect instead (?error=…&error_description=…).
func codeFromCallback(u *url.URL, state string) (string, error) {
	q := u.Query()
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("callback: Peloton's login answered %s: %s", printable(e, 60), printable(q.Get("error_description"), 200))
	}
	if q.Get("state") != state {
		return "", errors.New("callback: the redirect's state does not match the one sent (possible login CSRF, or the URL of another sign-in); ignoring it")
	}
	code := q.Get("code")
	if code == "" {
		return "", errors.New("callback: the redirect carries no authorization code")
	}
	return code, nil
}

// exchangeCode is step 6: the code and the PKCE verifier buy the tokens.
func (f *loginFlow) exchangeCode(ctx context.Context, code string) (*tokenResponse, error) {
	return f.c.exchangeCode(ctx, f.hc, code, f.pkce.verifier)
}

func (c *Client) exchangeCode(ctx context.Context, hc *http.Client, code, verifier string) (*tokenResponse, error) {
	b, _ := json.Marshal(map[string]string{
		"grant_type":    "authorization_code",
		"client_id":     c.cfg.ClientID,
		"code_verifier": verifier,
		"code":          code,
		"redirect_uri":  c.cfg.RedirectURI,
	})
	req, err := http.NewRequest(http.MethodPost, c.cfg.AuthURL+"/oauth/token", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.tokenRequest(ctx, hc, req)
}

// isRedirectURI tells whether u is the configured redirect URI (any query), the end of the
// login that is never fetched: scheme, host and path equal, a trailing slash tolerated.
func (c *Client) isRedirectURI(u *url.URL) bool {
	want, err := url.Parse(c.cfg.RedirectURI)
	return err == nil && u != nil && sameOrigin(u, want) &&
		strings.TrimSuffix(u.Path, "/") == strings.TrimSuffix(want.Path, "/")
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// mustParse parses a URL built from validated configuration; a bad one yields an empty URL,
// which matches nothing.
func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		return &url.URL{}
	}
	return u
}
