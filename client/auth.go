package client

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log/level"
)

// auth owns the tokens: it hands out a valid access token, refreshing it before it expires,
// and falls back to a (rate-limited) password login only when refreshing is impossible.
// Its mutex is held across the network calls on purpose: one login or refresh at a time.
type auth struct {
	c     *Client
	store *stateStore

	mu            sync.Mutex
	st            tokenState
	rejected      bool      // the API refused the current access token
	nextLogin     time.Time // no password login before this
	loginFailures int
	lastLoginErr  error
	lastRenewErr  string    // logged once per change of cause
	renewAfter    time.Time // after a failed renewal, the old token serves until then

	// expiresAt mirrors st's expiry (Unix seconds, 0 unknown) for readers such as a scrape,
	// which must not wait for a login in progress to read it.
	expiresAt atomic.Int64
}

func newAuth(c *Client) *auth {
	a := &auth{c: c, store: &stateStore{path: c.cfg.StateFile, logger: c.cfg.Logger}}
	a.st = a.store.load()
	a.adoptSuppliedTokens()
	a.publish()
	return a
}

// commit saves the state at once and publishes the expiry of the token now in use.
func (a *auth) commit() {
	a.store.save(a.st)
	a.publish()
}

func (a *auth) publish() {
	exp := a.st.ExpiresAt
	if a.st.AccessToken == "" {
		exp = 0
	}
	a.expiresAt.Store(exp)
}

// adoptSuppliedTokens uses tokens given on the command line unless the state file already holds
// their successors: a refresh token rotates, so after a restart the saved one is the live one,
// but a user who supplies different tokens means to replace what was saved.
func (a *auth) adoptSuppliedTokens() {
	cfg := a.c.cfg
	if cfg.AccessToken == "" && cfg.RefreshToken == "" {
		return
	}
	sum := sha256.Sum256([]byte(cfg.AccessToken + "\n" + cfg.RefreshToken))
	fp := hex.EncodeToString(sum[:8])
	if a.st.Supplied == fp {
		return
	}
	a.st = tokenState{Version: stateVersion, Supplied: fp, AccessToken: cfg.AccessToken, RefreshToken: cfg.RefreshToken}
	a.st.IssuedAt, a.st.ExpiresAt = jwtTimes(cfg.AccessToken)
	a.commit()
}

func (a *auth) expiry() (time.Time, bool) {
	exp := a.expiresAt.Load()
	return time.Unix(exp, 0), exp != 0
}

func (a *auth) userID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.UserID
}

func (a *auth) setUserID(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.UserID != id {
		a.st.UserID = id
		a.commit()
	}
}

// reject records that the API answered 401 to token, so the next call refreshes it.
func (a *auth) reject(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.AccessToken == token {
		a.rejected = true
	}
}

// renewMargin is how long before its expiry the access token is renewed: a quarter of its
// lifetime (12h of Peloton's 48h), so that a token with less left means renewing has failed
// for hours or is impossible, which is what the PelotonAuthExpiringSoon alert watches.
func (a *auth) renewMargin() time.Duration {
	if a.st.IssuedAt > 0 && a.st.ExpiresAt > a.st.IssuedAt {
		return time.Duration(a.st.ExpiresAt-a.st.IssuedAt) * time.Second / 4
	}
	return a.c.cfg.RefreshMargin
}

// usable says whether the current access token may still be sent, margin before its expiry.
func (a *auth) usable(margin time.Duration) bool {
	if a.st.AccessToken == "" || a.rejected {
		return false
	}
	return a.st.ExpiresAt == 0 || a.c.cfg.Now().Add(margin).Before(time.Unix(a.st.ExpiresAt, 0))
}

// token returns an access token for the API, renewing it renewMargin before it expires. When
// renewing fails the current token is used for as long as it is still valid.
func (a *auth) token(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.usable(a.renewMargin()) || (a.usable(0) && a.c.cfg.Now().Before(a.renewAfter)) {
		return a.st.AccessToken, nil
	}
	err := a.renew(ctx)
	if err == nil {
		a.lastRenewErr = ""
		return a.st.AccessToken, nil
	}
	if !a.usable(0) {
		return "", err
	}
	a.renewAfter = a.c.cfg.Now().Add(time.Minute) // one try per refresh, not one per request
	if msg := err.Error(); msg != a.lastRenewErr {
		a.lastRenewErr = msg
		level.Warn(a.c.cfg.Logger).Log("msg", "cannot renew the access token; using it until it expires",
			"expires", time.Unix(a.st.ExpiresAt, 0).UTC().Format(time.RFC3339), "err", err)
	}
	return a.st.AccessToken, nil
}

// renew gets a new access token: with the refresh token, else (or when Peloton refuses it)
// with a rate-limited password login. While Peloton is merely failing, not refusing, no full
// login is risked.
func (a *auth) renew(ctx context.Context) error {
	var refreshErr error
	if a.st.RefreshToken != "" {
		refreshErr = a.refresh(ctx)
		if refreshErr == nil {
			return nil
		}
		if !errors.Is(refreshErr, errTokenRefused) {
			return fmt.Errorf("refreshing the access token: %w", refreshErr)
		}
		level.Warn(a.c.cfg.Logger).Log("msg", "Peloton refused the refresh token; it is dropped", "err", refreshErr)
		a.st.RefreshToken = ""
		a.commit()
		refreshErr = fmt.Errorf("refreshing the access token: %w", refreshErr)
	}
	if a.c.cfg.Password == "" {
		if refreshErr != nil {
			return fmt.Errorf("%w (%w)", ErrNoCredentials, refreshErr)
		}
		return ErrNoCredentials
	}
	if err := a.passwordLogin(ctx); err != nil {
		if refreshErr != nil {
			return fmt.Errorf("%w; then %w", refreshErr, err)
		}
		return err
	}
	return nil
}

func (a *auth) passwordLogin(ctx context.Context) error {
	now := a.c.cfg.Now()
	if now.Before(a.nextLogin) {
		return &LoginBackoffError{Until: a.nextLogin, Cause: a.lastLoginErr}
	}
	tr, err := a.c.login(ctx)
	if err != nil {
		a.loginFailures++
		backoff := a.c.cfg.LoginInterval << min(a.loginFailures-1, 20)
		a.nextLogin = now.Add(min(backoff, a.c.cfg.MaxLoginBackoff))
		a.lastLoginErr = err
		return fmt.Errorf("password login: %w", err)
	}
	a.loginFailures, a.lastLoginErr = 0, nil
	a.nextLogin = now.Add(a.c.cfg.LoginInterval)
	a.adopt(tr)
	level.Info(a.c.cfg.Logger).Log("msg", "logged in to Peloton with username and password")
	return nil
}

// maxTokenLifetime bounds a believable expires_in (Peloton's is 48h); beyond it the JWT's own
// times are used.
const maxTokenLifetime = 10 * 365 * 24 * time.Hour

// tokenResponse is what /oauth/token answers.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    Number `json:"expires_in"`
	TokenType    string `json:"token_type"`
}

// adopt takes new tokens, keeping the old refresh token when none came back, and saves them at
// once: a rotated refresh token that is lost cannot be used again.
func (a *auth) adopt(tr *tokenResponse) {
	a.st.AccessToken = tr.AccessToken
	a.rejected = false
	if tr.RefreshToken != "" {
		a.st.RefreshToken = tr.RefreshToken
	}
	a.st.IssuedAt, a.st.ExpiresAt = jwtTimes(tr.AccessToken)
	if tr.ExpiresIn.Valid && tr.ExpiresIn.Value >= 1 && tr.ExpiresIn.Value <= maxTokenLifetime.Seconds() {
		now := a.c.cfg.Now()
		a.st.IssuedAt, a.st.ExpiresAt = now.Unix(), now.Add(time.Duration(tr.ExpiresIn.Value)*time.Second).Unix()
	}
	a.st.Version = stateVersion
	a.commit()
}

func (a *auth) refresh(ctx context.Context) error {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {a.c.cfg.ClientID},
		"refresh_token": {a.st.RefreshToken},
	}
	req, err := http.NewRequest(http.MethodPost, a.c.cfg.AuthURL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tr, err := a.c.tokenRequest(ctx, a.c.http, req)
	if err != nil {
		return err
	}
	a.adopt(tr)
	level.Debug(a.c.cfg.Logger).Log("msg", "refreshed the Peloton access token")
	return nil
}

// tokenRequest posts to /oauth/token and decodes the answer.
func (c *Client) tokenRequest(ctx context.Context, hc *http.Client, req *http.Request) (*tokenResponse, error) {
	r, err := c.send(ctx, hc, "token", req)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		err := &HTTPError{Endpoint: "token", Status: r.status, Message: describeBody(r.header.Get("Content-Type"), r.body)}
		if isOAuthRefusal(r) {
			return nil, &refusedError{err}
		}
		return nil, err
	}
	var tr tokenResponse
	if err := json.Unmarshal(r.body, &tr); err != nil {
		return nil, fmt.Errorf("token: decoding the answer: %w", err)
	}
	if tr.AccessToken == "" {
		return nil, errors.New("token: the answer holds no access token")
	}
	if tr.TokenType != "" && !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, fmt.Errorf("token: unexpected token type %q", tr.TokenType)
	}
	return &tr, nil
}

// jwtTimes reads the iat and exp claims of a JWT (Unix seconds, 0 when absent) without
// verifying it: the exporter only needs to know when to renew, and the API is the judge of
// validity.
func jwtTimes(token string) (issued, expires int64) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return 0, 0
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return 0, 0
	}
	var claims struct {
		Iat, Exp Number
	}
	if json.Unmarshal(payload, &claims) != nil {
		return 0, 0
	}
	seconds := func(n Number) int64 {
		if !n.Valid || n.Value <= 0 || n.Value > 1e11 {
			return 0
		}
		return int64(n.Value)
	}
	return seconds(claims.Iat), seconds(claims.Exp)
}
