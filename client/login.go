package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// maxRedirects bounds every redirect chain of the login.
const maxRedirects = 10

// login runs Auth0's authorization-code flow with PKCE the way Peloton's web app does, without
// a browser: authorize, post the credentials, post the hidden form, follow redirects up to the
// redirect URI (never fetching it) and exchange the code for tokens.
func (c *Client) login(ctx context.Context) (*tokenResponse, error) {
	if c.cfg.Username == "" || c.cfg.Password == "" {
		return nil, errors.New("no username or password configured")
	}
	verifier := randomString(32)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	state, nonce := randomString(16), randomString(16)

	jar, _ := cookiejar.New(nil) // a fresh jar per login: no stale Auth0 session cookies
	hc := *c.http
	hc.Jar = jar

	// 1. /authorize redirects to the hosted login page, which sets the _csrf cookie.
	q := url.Values{
		"client_id":             {c.cfg.ClientID},
		"audience":              {c.cfg.Audience},
		"scope":                 {c.cfg.Scope},
		"response_type":         {"code"},
		"response_mode":         {"query"},
		"redirect_uri":          {c.cfg.RedirectURI},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"auth0Client":           {c.cfg.Auth0Client},
	}
	req, _ := http.NewRequest(http.MethodGet, c.cfg.AuthURL+"/authorize?"+q.Encode(), nil)
	page, pageURL, err := c.followRedirects(ctx, &hc, req)
	if err != nil {
		return nil, err
	}
	if page.status != http.StatusOK {
		return nil, &HTTPError{Endpoint: "authorize", Status: page.status, Message: describeBody(page.header.Get("Content-Type"), page.body)}
	}
	csrf := ""
	for _, ck := range jar.Cookies(pageURL) {
		if ck.Name == "_csrf" {
			csrf = ck.Value
		}
	}
	if csrf == "" {
		return nil, errors.New("authorize: the login page set no _csrf cookie (has Peloton's login changed?)")
	}
	loginState := state
	if s := pageURL.Query().Get("state"); s != "" {
		loginState = s // the login page's own transaction state wins
	}

	// 2. Post the credentials as the login page's script would.
	body, _ := json.Marshal(map[string]string{
		"client_id":             c.cfg.ClientID,
		"redirect_uri":          c.cfg.RedirectURI,
		"tenant":                auth0Tenant,
		"response_type":         "code",
		"scope":                 c.cfg.Scope,
		"audience":              c.cfg.Audience,
		"_csrf":                 csrf,
		"state":                 loginState,
		"_intstate":             "deprecated",
		"nonce":                 nonce,
		"username":              c.cfg.Username,
		"password":              c.cfg.Password,
		"connection":            auth0Connection,
		"code_challenge":        challenge,
		"code_challenge_method": "S256",
	})
	req, _ = http.NewRequest(http.MethodPost, c.cfg.AuthURL+"/usernamepassword/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", c.cfg.AuthURL)
	req.Header.Set("Referer", pageURL.String())
	req.Header.Set("Auth0-Client", c.cfg.Auth0Client)
	r, err := c.send(ctx, &hc, "login", req)
	if err != nil {
		return nil, err
	}
	var final *response
	var finalURL *url.URL
	switch {
	case r.status >= 400 && r.status < 500:
		return nil, fmt.Errorf("%w (login: HTTP %d: %s)", ErrCredentialsRefused, r.status, describeBody(r.header.Get("Content-Type"), r.body))
	case r.status == http.StatusOK:
		// 3. The answer is a page whose hidden form carries the result to the callback.
		form, formErr := parseHiddenForm(r.body)
		if formErr != nil {
			return nil, fmt.Errorf("login: %w", formErr)
		}
		action := c.cfg.AuthURL + "/login/callback"
		if form.Action != "" {
			a, err := url.Parse(c.cfg.AuthURL + "/")
			if err == nil {
				a, err = a.Parse(form.Action)
			}
			if err != nil || !sameHost(a, c.cfg.AuthURL) {
				return nil, errors.New("login: the login form posts to an unexpected place")
			}
			action = a.String()
		}
		req, _ = http.NewRequest(http.MethodPost, action, strings.NewReader(form.Fields.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", c.cfg.AuthURL)
		// 4. Follow the redirects until one points at the redirect URI, and take its code.
		final, finalURL, err = c.followRedirects(ctx, &hc, req)
	case r.location != nil:
		final, finalURL, err = c.follow(ctx, &hc, "login", req.URL, r)
	default:
		return nil, &HTTPError{Endpoint: "login", Status: r.status, Message: describeBody(r.header.Get("Content-Type"), r.body)}
	}
	if err != nil {
		return nil, err
	}
	if !c.isRedirectURI(finalURL) {
		return nil, &HTTPError{Endpoint: "callback", Status: final.status, Message: "the login ended without an authorization code"}
	}
	code := finalURL.Query().Get("code")
	if code == "" {
		return nil, errors.New("callback: the redirect carries no authorization code")
	}
	if finalURL.Query().Get("state") != state {
		return nil, errors.New("callback: the redirect's state does not match the one sent (possible login CSRF); ignoring it")
	}

	// 5. Exchange the code for tokens, proving possession of the PKCE verifier.
	body, _ = json.Marshal(map[string]string{
		"grant_type":    "authorization_code",
		"client_id":     c.cfg.ClientID,
		"code_verifier": verifier,
		"code":          code,
		"redirect_uri":  c.cfg.RedirectURI,
	})
	req, _ = http.NewRequest(http.MethodPost, c.cfg.AuthURL+"/oauth/token", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return c.tokenRequest(ctx, &hc, req)
}

// followRedirects sends req and follows its redirects (see follow).
func (c *Client) followRedirects(ctx context.Context, hc *http.Client, req *http.Request) (*response, *url.URL, error) {
	endpoint := authEndpoint(req.URL.Path)
	r, err := c.send(ctx, hc, endpoint, req)
	if err != nil {
		return nil, nil, err
	}
	return c.follow(ctx, hc, endpoint, req.URL, r)
}

// follow follows the redirects of r, the answer from endpoint at u, on the auth host only. It
// stops, without fetching it, at a redirect to the redirect URI and returns that URL;
// otherwise it returns the final answer and its URL.
func (c *Client) follow(ctx context.Context, hc *http.Client, endpoint string, u *url.URL, r *response) (*response, *url.URL, error) {
	for hop := 0; r.location != nil; hop++ {
		if c.isRedirectURI(r.location) {
			return r, r.location, nil
		}
		if !sameHost(r.location, c.cfg.AuthURL) {
			return nil, nil, fmt.Errorf("%s: redirected off the login host to %s", endpoint, r.location.Host)
		}
		if hop == maxRedirects {
			return nil, nil, fmt.Errorf("login: more than %d redirects (a redirect loop?)", maxRedirects)
		}
		u = r.location
		endpoint = authEndpoint(u.Path)
		req, _ := http.NewRequest(http.MethodGet, u.String(), nil)
		var err error
		if r, err = c.send(ctx, hc, endpoint, req); err != nil {
			return nil, nil, err
		}
	}
	return r, u, nil
}

// isRedirectURI tells whether u is the configured redirect URI (plus its query), the end of
// the login that must never be fetched.
func (c *Client) isRedirectURI(u *url.URL) bool {
	want, err := url.Parse(c.cfg.RedirectURI)
	return err == nil && sameHost(u, c.cfg.RedirectURI) &&
		strings.TrimSuffix(u.Path, "/") == strings.TrimSuffix(want.Path, "/")
}

// authEndpoint names an auth path for the request counter.
func authEndpoint(path string) string {
	switch {
	case strings.HasPrefix(path, "/authorize/resume"), strings.HasPrefix(path, "/login/callback"):
		return "callback"
	case strings.HasPrefix(path, "/authorize"):
		return "authorize"
	case strings.HasPrefix(path, "/u/login"):
		return "login_page"
	case strings.HasPrefix(path, "/usernamepassword/login"):
		return "login"
	case strings.HasPrefix(path, "/oauth/token"):
		return "token"
	}
	return "auth_other"
}

func sameHost(u *url.URL, base string) bool {
	b, err := url.Parse(base)
	return err == nil && strings.EqualFold(u.Host, b.Host) && u.Scheme == b.Scheme
}

// HiddenForm is the auto-submitting form Auth0 answers a successful credentials post with.
type HiddenForm struct {
	Action string
	Fields url.Values
}

// parseHiddenForm finds the first form in page and collects its named inputs.
func parseHiddenForm(page []byte) (*HiddenForm, error) {
	z := html.NewTokenizer(bytes.NewReader(page))
	var form *HiddenForm
	for {
		tt := z.Next()
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			t := z.Token()
			switch {
			case t.Data == "form" && form == nil:
				form = &HiddenForm{Action: attr(t, "action"), Fields: url.Values{}}
			case t.Data == "input" && form != nil:
				if name := attr(t, "name"); name != "" {
					form.Fields.Add(name, attr(t, "value"))
				}
			}
			continue
		case html.EndTagToken:
			if form == nil || z.Token().Data != "form" {
				continue
			}
		case html.ErrorToken: // the end of the page, closed form or not
		default:
			continue
		}
		switch {
		case form == nil:
			return nil, errors.New("the answer holds no login form (has Peloton's login changed?)")
		case len(form.Fields) == 0:
			return nil, errors.New("the login form has no fields (has Peloton's login changed?)")
		}
		return form, nil
	}
}

func attr(t html.Token, name string) string {
	for _, a := range t.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
