package simulator

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// SignInWithBrowser does what a member's browser does with an authorize URL of the browser
// sign-in: it loads the login page, posts the credentials as the page's script would, submits
// the hidden form and follows every redirect, and returns the address it lands on (the
// redirect URI with code and state), which it does not fetch. Tests of `peloton_exporter
// login` use it in place of a person.
func (s *Simulator) SignInWithBrowser(ctx context.Context, authorizeURL, username, password string) (string, error) {
	jar, _ := cookiejar.New(nil)
	var landed string
	hc := &http.Client{Transport: s.Transport(), Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), s.cfg.RedirectURI) {
			landed = req.URL.String()
			return http.ErrUseLastResponse
		}
		if len(via) > 12 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	// do returns the status, the URL answered from (after redirects) and the body.
	do := func(req *http.Request) (int, *url.URL, []byte, error) {
		resp, err := hc.Do(req.WithContext(ctx))
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, resp.Request.URL, b, err
	}
	req, _ := http.NewRequest(http.MethodGet, authorizeURL, nil)
	status, pageURL, page, err := do(req)
	if err != nil {
		return "", err
	}
	if landed != "" {
		return landed, nil // an error sent back at once
	}
	m := regexp.MustCompile(`window\.injectedConfig = window\.injectedConfig \|\| "([^"]+)"`).FindSubmatch(page)
	if status != http.StatusOK || m == nil {
		return "", fmt.Errorf("browser: no login page (HTTP %d)", status)
	}
	raw, _ := base64.StdEncoding.DecodeString(string(m[1]))
	var cfg struct {
		CallbackURL     string         `json:"callbackURL"`
		ClientID        string         `json:"clientID"`
		Auth0Tenant     string         `json:"auth0Tenant"`
		InternalOptions map[string]any `json:"internalOptions"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return "", fmt.Errorf("browser: login page config: %w", err)
	}
	body := cfg.InternalOptions
	body["client_id"], body["redirect_uri"], body["tenant"] = cfg.ClientID, cfg.CallbackURL, cfg.Auth0Tenant
	body["connection"], body["username"], body["password"] = auth0Connection, username, password
	b, _ := json.Marshal(body)
	req, _ = http.NewRequest(http.MethodPost, s.authURL+"/usernamepassword/login", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", s.authURL)
	req.Header.Set("Referer", pageURL.String())
	req.Header.Set("Auth0-Client", "eyJuYW1lIjoiYXV0aDAuanMtdWxwIiwidmVyc2lvbiI6IjkuMTQuMyJ9")
	req.Header.Set(personHeader, s.person) // a member passes a verification step
	status, _, page, err = do(req)
	if err != nil {
		return "", err
	}
	action := regexp.MustCompile(`<form method="post" name="hiddenform" action="([^"]+)">`).FindSubmatch(page)
	if status != http.StatusOK || action == nil {
		return "", fmt.Errorf("browser: the credentials were not taken (HTTP %d)", status)
	}
	form := url.Values{}
	for _, f := range regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`).FindAllSubmatch(page, -1) {
		form.Set(string(f[1]), html.UnescapeString(string(f[2])))
	}
	req, _ = http.NewRequest(http.MethodPost, html.UnescapeString(string(action[1])), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, _, _, err := do(req); err != nil {
		return "", err
	}
	if landed == "" {
		return "", errors.New("browser: the sign-in did not end at the redirect URI")
	}
	return landed, nil
}
