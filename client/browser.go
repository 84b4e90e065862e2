package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-kit/log"

	"github.com/peloton-exporter/peloton_exporter/internal/atomicfile"
)

// Browser sign-in, for when a headless login cannot get through (a bot check, MFA, a changed
// login page, a blocked account being unblocked): the member signs in in any browser with an
// authorize URL that carries the exporter's own PKCE challenge, and pastes the URL the browser
// lands on (https://members.onepeloton.com/callback?code=…&state=…); the exporter checks the
// state and exchanges the code with its verifier. Several clients offer this (homebridge-
// peloton SPEC.md 4.1 "Browser sign-in"; the members web app does not consume the code first).
//
// Starting and finishing may be two runs of `peloton_exporter login`, so the pending verifier
// and state are kept beside the state file (<state>.signin.json, mode 0600) until the sign-in
// is finished or signInLifetime has passed. They are not in the state file itself: a running
// exporter rewrites that from memory and would drop them. The authorize URL's nonce is not
// kept: it would only be checked in the id_token, which the exporter does not use, and the
// code is bound to this sign-in by the PKCE verifier and the state.

// signInLifetime is how long a started sign-in can be finished. Auth0's login transaction
// outlives a member's sign-in by far; codes are short-lived, which is why the URL is best
// pasted at once.
const signInLifetime = 30 * time.Minute

// pendingSignIn is a browser sign-in waiting for its callback URL.
type pendingSignIn struct {
	Verifier    string `json:"code_verifier"`
	State       string `json:"state"`
	Created     int64  `json:"created"` // Unix seconds
	AuthURL     string `json:"auth_url"`
	ClientID    string `json:"client_id"`
	RedirectURI string `json:"redirect_uri"`
}

// ErrNoSignIn means there is no browser sign-in to finish.
var ErrNoSignIn = errors.New("no browser sign-in is waiting to be finished (or it is older than 30 minutes): run peloton_exporter login to start one")

// SignInFile is where a pending browser sign-in is kept: beside the state file, named after it.
func SignInFile(stateFile string) string {
	if stateFile == "" {
		return ""
	}
	return strings.TrimSuffix(stateFile, filepath.Ext(stateFile)) + ".signin.json"
}

// StartBrowserSignIn makes a PKCE pair, a state and a nonce, keeps them for FinishBrowserSignIn
// and returns the authorize URL for the member's browser.
func (c *Client) StartBrowserSignIn() (string, error) {
	path := SignInFile(c.cfg.StateFile)
	if path == "" {
		return "", errors.New("browser sign-in needs a state file (--peloton.state-file) to keep the tokens in")
	}
	p := newPKCE()
	pending := pendingSignIn{Verifier: p.verifier, State: randomString(16), Created: c.cfg.Now().Unix(),
		AuthURL: c.cfg.AuthURL, ClientID: c.cfg.ClientID, RedirectURI: c.cfg.RedirectURI}
	b, err := json.Marshal(pending)
	if err == nil {
		err = atomicfile.Write(path, b, false) // a symlink there is followed only to a missing file
	}
	if err != nil {
		return "", fmt.Errorf("keeping the sign-in beside the state file: %w", err)
	}
	return c.cfg.AuthURL + "/authorize?" + c.authorizeQuery(p, pending.State, randomString(16)).Encode(), nil
}

// FinishBrowserSignIn takes the URL the browser landed on, checks it against the pending
// sign-in, exchanges its code and saves the tokens in the state file. A running exporter with
// the same state file takes them the next time it needs new tokens. A sign-in also lifts any
// stop of password logins (refused credentials, a blocked account, a verification step): the
// member has acted (see loginStop.afterSignIn).
func (c *Client) FinishBrowserSignIn(ctx context.Context, callbackURL string) error {
	path := SignInFile(c.cfg.StateFile)
	if path == "" {
		return errors.New("browser sign-in needs a state file (--peloton.state-file) to keep the tokens in")
	}
	pending, err := c.loadSignIn(path)
	if err != nil {
		return err
	}
	u, err := parseCallbackURL(callbackURL, c)
	if err != nil {
		return err
	}
	code, err := codeFromCallback(u, pending.State)
	if err != nil {
		return err
	}
	tr, err := c.exchangeCode(ctx, c.http, code, pending.Verifier)
	if err != nil {
		if errors.Is(err, errTokenRefused) {
			_ = os.Remove(path)
			return fmt.Errorf("%w: Peloton refused the code (codes are single-use and short-lived): run peloton_exporter login again and paste the address at once", err)
		}
		return err // an outage: the same URL may be tried again
	}
	c.tokens.signedIn(tr)
	_ = os.Remove(path)
	return nil
}

func (c *Client) loadSignIn(path string) (*pendingSignIn, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoSignIn
	}
	if err != nil {
		return nil, fmt.Errorf("reading the pending sign-in: %w", err)
	}
	var p pendingSignIn
	if json.Unmarshal(b, &p) != nil || p.Verifier == "" || p.State == "" {
		return nil, ErrNoSignIn
	}
	if c.cfg.Now().Sub(time.Unix(p.Created, 0)) > signInLifetime {
		_ = os.Remove(path)
		return nil, ErrNoSignIn
	}
	if p.AuthURL != c.cfg.AuthURL || p.ClientID != c.cfg.ClientID || p.RedirectURI != c.cfg.RedirectURI {
		return nil, errors.New("the pending sign-in was started with other --peloton.* settings: start it again with these")
	}
	return &p, nil
}

// parseCallbackURL reads what the member pasted: the whole address, or just its query.
func parseCallbackURL(s string, c *Client) (*url.URL, error) {
	s = strings.TrimSpace(s)
	s = strings.Trim(s, `"'<>`)
	bad := errors.New("that is not the address of Peloton's callback: paste the whole address the browser shows after signing in (it starts with " + c.cfg.RedirectURI + "?code=)")
	u, err := url.Parse(s)
	if err != nil {
		return nil, bad
	}
	if u.Scheme == "" && u.Host == "" { // a bare query: code=…&state=…
		q, err := url.ParseQuery(strings.TrimPrefix(s, "?"))
		if err != nil {
			return nil, bad
		}
		u = mustParse(c.cfg.RedirectURI)
		u.RawQuery = q.Encode()
	}
	if !c.isRedirectURI(u) || (u.Query().Get("code") == "" && u.Query().Get("error") == "") {
		return nil, bad
	}
	return u, nil
}

// signedIn adopts the tokens of a browser sign-in and saves them, marked as such. The state
// file is read again first: this process (the login command) loaded it before the member
// signed in, and a running exporter may have changed it since (a refusal counted, a refresh
// token rotated). Only the tokens and the sign-in's own fields change, and the refusal budget
// as a sign-in changes it.
func (ts *tokenSource) signedIn(tr *tokenResponse) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.st = ts.store.load()
	ts.adoptLocked(tr)
	ts.st.SignedInAt = ts.c.cfg.Now().Unix()
	ts.st.LoginStop = ts.st.LoginStop.afterSignIn()
	ts.gate.signedIn()
	ts.commit()
}

// adoptSignInLocked takes the tokens a browser sign-in saved, in another process: only them
// and the sign-in's time, so that what this process knows and the other may not (a refusal
// counted since it read the file) stands, and the refusal budget changes only as a sign-in
// changes it. ts.mu must be held.
func (ts *tokenSource) adoptSignInLocked(disk tokenState) {
	ts.st.AccessToken, ts.st.RefreshToken = disk.AccessToken, disk.RefreshToken
	ts.st.IssuedAt, ts.st.ExpiresAt, ts.st.SignedInAt = disk.IssuedAt, disk.ExpiresAt, disk.SignedInAt
	ts.st.LoginStop = ts.st.LoginStop.afterSignIn()
	ts.st.Version = stateVersion
	ts.rejected = false
	ts.gate.signedIn()
	ts.commit()
}

// HasSavedTokens tells whether the state file at path holds tokens, such as a browser sign-in
// left there: enough for the exporter to start without other credentials.
func HasSavedTokens(path string) bool {
	st := (&stateStore{path: path, logger: log.NewNopLogger()}).load()
	return st.AccessToken != "" || st.RefreshToken != ""
}
