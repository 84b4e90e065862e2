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
	"time"

	"github.com/go-kit/log/level"
)

// tokenSource hands out a valid access token, renewing it before it expires: with the refresh
// token, else (or when Peloton refuses it) with a password login that the login gate admits.
// It plays the part of golang.org/x/oauth2's reuseTokenSource and tokenRefresher.
//
// Its mutex guards memory only and is never held across network I/O, so a scrape reading the
// expiry never waits for a login. Renewals are single-flight all the same: the first caller
// that needs one runs it, and every caller that comes while it runs waits for its result
// instead of starting another. Two refreshes at once would present one refresh token twice,
// and Auth0 answers reuse by revoking the whole token family.
type tokenSource struct {
	c     *Client
	store *stateStore
	gate  *loginGate

	mu           sync.Mutex
	st           tokenState
	rejected     bool      // the API refused the current access token
	renewAfter   time.Time // after a failed renewal, the old token serves until then
	lastRenewErr string    // logged once per change of cause
	flight       *flight   // the renewal in progress, if any
	// charged is the refusal budget with the credentials post in flight counted. It is what
	// the state file holds until the answer comes (so that a lost answer stays counted across
	// a crash), while st.LoginStop, which the metric reads, does not count it yet.
	charged *loginStop
}

// flight is one renewal; done closes when it ends, and err is its outcome.
type flight struct {
	done chan struct{}
	err  error
}

func newTokenSource(c *Client) *tokenSource {
	ts := &tokenSource{c: c, store: &stateStore{path: c.cfg.StateFile, logger: c.cfg.Logger}}
	ts.gate = newLoginGate(c.cfg)
	ts.st = ts.store.load()
	ts.adoptSuppliedTokens()
	return ts
}

// commit saves the state at once. ts.mu must be held, so that saves keep their order.
func (ts *tokenSource) commit() {
	st := ts.st
	if ts.charged != nil {
		st.LoginStop = ts.charged
	}
	ts.store.save(st)
}

// adoptSuppliedTokens uses tokens given on the command line unless the state file already holds
// their successors: a refresh token rotates, so after a restart the saved one is the live one,
// but a user who supplies different tokens means to replace what was saved.
func (ts *tokenSource) adoptSuppliedTokens() {
	cfg := ts.c.cfg
	if cfg.AccessToken == "" && cfg.RefreshToken == "" {
		return
	}
	sum := sha256.Sum256([]byte(cfg.AccessToken + "\n" + cfg.RefreshToken))
	fp := hex.EncodeToString(sum[:8])
	if ts.st.Supplied == fp {
		return
	}
	stop := ts.st.LoginStop // refused credentials stay refused whatever tokens come
	ts.st = tokenState{Version: stateVersion, Supplied: fp, AccessToken: cfg.AccessToken, RefreshToken: cfg.RefreshToken, LoginStop: stop}
	ts.st.IssuedAt, ts.st.ExpiresAt = jwtTimes(cfg.AccessToken)
	ts.commit()
}

func (ts *tokenSource) expiry() (time.Time, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.st.AccessToken == "" || ts.st.ExpiresAt == 0 {
		return time.Time{}, false
	}
	return time.Unix(ts.st.ExpiresAt, 0), true
}

// loginsStopped: see Client.CredentialsRefused.
func (ts *tokenSource) loginsStopped() bool {
	ts.mu.Lock()
	stop := ts.st.LoginStop
	ts.mu.Unlock()
	return ts.gate.stops(stop)
}

func (ts *tokenSource) userID() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.st.UserID
}

func (ts *tokenSource) setUserID(id string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.st.UserID != id {
		ts.st.UserID = id
		ts.commit()
	}
}

// reject records that the API answered 401 to token, so the next call renews it.
func (ts *tokenSource) reject(token string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.st.AccessToken == token {
		ts.rejected = true
	}
}

// renewMargin is how long before its expiry the access token is renewed: a quarter of its
// lifetime (12h of Peloton's 48h), so that a token with less left means renewing has failed
// for hours or is impossible, which is what the PelotonAuthExpiringSoon alert watches.
func (ts *tokenSource) renewMargin() time.Duration {
	if ts.st.IssuedAt > 0 && ts.st.ExpiresAt > ts.st.IssuedAt {
		return time.Duration(ts.st.ExpiresAt-ts.st.IssuedAt) * time.Second / 4
	}
	return ts.c.cfg.RefreshMargin
}

// usable says whether the current access token may still be sent, margin before its expiry.
func (ts *tokenSource) usable(margin time.Duration) bool {
	if ts.st.AccessToken == "" || ts.rejected {
		return false
	}
	return ts.st.ExpiresAt == 0 || ts.c.cfg.Now().Add(margin).Before(time.Unix(ts.st.ExpiresAt, 0))
}

// fresh says whether the current token is served without a renewal: inside its margin, or
// still valid while a failed renewal waits to be tried again.
func (ts *tokenSource) fresh() bool {
	return ts.usable(ts.renewMargin()) || (ts.usable(0) && ts.c.cfg.Now().Before(ts.renewAfter))
}

// token returns an access token for the API, renewing it renewMargin before it expires. When
// renewing fails the current token is used for as long as it is still valid.
func (ts *tokenSource) token(ctx context.Context) (string, error) {
	ts.mu.Lock()
	if ts.fresh() {
		defer ts.mu.Unlock()
		return ts.st.AccessToken, nil
	}
	if f := ts.flight; f != nil {
		ts.mu.Unlock()
		return ts.await(ctx, f)
	}
	f := &flight{done: make(chan struct{})}
	ts.flight = f
	snap := ts.st
	ts.mu.Unlock()

	res := ts.renew(ctx, snap) // network I/O, without the lock

	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.apply(snap, res)
	f.err = res.err
	ts.flight = nil
	close(f.done)
	if res.err == nil {
		ts.lastRenewErr = ""
		return ts.st.AccessToken, nil
	}
	if !ts.usable(0) {
		return "", res.err
	}
	ts.renewAfter = ts.c.cfg.Now().Add(time.Minute) // one try per refresh, not one per request
	if msg := res.err.Error(); msg != ts.lastRenewErr {
		ts.lastRenewErr = msg
		level.Warn(ts.c.cfg.Logger).Log("msg", "cannot renew the access token; using it until it expires",
			"expires", time.Unix(ts.st.ExpiresAt, 0).UTC().Format(time.RFC3339), "err", res.err)
	}
	return ts.st.AccessToken, nil
}

// await waits for another caller's renewal and takes its outcome.
func (ts *tokenSource) await(ctx context.Context, f *flight) (string, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.usable(0) {
		return ts.st.AccessToken, nil
	}
	if f.err != nil {
		return "", f.err
	}
	return "", ErrNoCredentials
}

// renewal is what a renewal found, applied to the state under the lock.
type renewal struct {
	tokens      *tokenResponse
	signedIn    *tokenState // a browser sign-in's state, saved by another process
	dropRefresh bool        // Peloton refused the refresh token
	stop        *loginStop  // the refusal budget after a password login was considered
	stopSet     bool        // a password login was considered: stop replaces the budget
	err         error
}

// renew gets new tokens for the state snap: a browser sign-in saved meanwhile, else the
// refresh token, else (or when Peloton refuses it) a password login the gate admits. While
// Peloton is merely failing, not refusing, no password login is risked.
func (ts *tokenSource) renew(ctx context.Context, snap tokenState) renewal {
	if disk := ts.store.load(); disk.SignedInAt > snap.SignedInAt && disk.AccessToken != "" {
		level.Info(ts.c.cfg.Logger).Log("msg", "using the tokens of a browser sign-in (peloton_exporter login)")
		return renewal{signedIn: &disk}
	}
	var refreshErr error
	res := renewal{}
	if snap.RefreshToken != "" {
		tr, err := ts.c.refresh(ctx, snap.RefreshToken)
		if err == nil {
			return renewal{tokens: tr}
		}
		if !errors.Is(err, errTokenRefused) {
			return renewal{err: fmt.Errorf("refreshing the access token: %w", err)}
		}
		level.Warn(ts.c.cfg.Logger).Log("msg", "Peloton refused the refresh token; it is dropped", "err", err)
		res.dropRefresh = true
		refreshErr = fmt.Errorf("refreshing the access token: %w", err)
	}
	if ts.c.cfg.Username == "" || ts.c.cfg.Password == "" {
		res.err = ErrNoCredentials
		if refreshErr != nil {
			res.err = fmt.Errorf("%w (%w)", ErrNoCredentials, refreshErr)
		}
		return res
	}
	tr, stop, err := ts.passwordLogin(ctx, snap.LoginStop)
	res.tokens, res.stop, res.stopSet = tr, stop, true
	if err != nil {
		res.err = err
		if refreshErr != nil {
			res.err = fmt.Errorf("%w; then %w", refreshErr, err)
		}
	}
	return res
}

// passwordLogin logs in if the gate admits it, and tells the gate how it went. The attempt is
// counted and saved just before the credentials are posted, and given back unless Peloton
// refused them or never answered. It returns the refusal budget as it stands afterwards.
func (ts *tokenSource) passwordLogin(ctx context.Context, stop *loginStop) (*tokenResponse, *loginStop, error) {
	stop, err := ts.gate.admit(stop)
	if err != nil {
		return nil, stop, err
	}
	var charged *loginStop
	tr, err := ts.c.login(ctx, func() {
		ts.gate.releaseSlot()
		charged = ts.gate.charge(stop)
		ts.mu.Lock()
		defer ts.mu.Unlock()
		ts.charged = charged
		ts.commit()
	})
	stop = ts.gate.record(stop, charged, err)
	if err != nil {
		return nil, stop, fmt.Errorf("password login: %w", err)
	}
	level.Info(ts.c.cfg.Logger).Log("msg", "logged in to Peloton with username and password")
	return tr, stop, nil
}

// apply takes what a renewal of snap found. ts.mu must be held.
func (ts *tokenSource) apply(snap tokenState, res renewal) {
	changed := false
	if res.signedIn != nil {
		ts.adoptSignInLocked(*res.signedIn)
		return
	}
	if res.dropRefresh && ts.st.RefreshToken == snap.RefreshToken {
		ts.st.RefreshToken = ""
		changed = true
	}
	if res.stopSet {
		changed = changed || res.stop != ts.st.LoginStop || ts.charged != nil
		ts.st.LoginStop, ts.charged = res.stop, nil
	}
	if res.tokens != nil {
		ts.adoptLocked(res.tokens)
		changed = true
	}
	if changed {
		ts.st.Version = stateVersion
		ts.commit()
	}
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

// adoptLocked takes new tokens, keeping the old refresh token when none came back. The caller
// saves them at once: a rotated refresh token that is lost cannot be used again.
func (ts *tokenSource) adoptLocked(tr *tokenResponse) {
	ts.st.AccessToken = tr.AccessToken
	ts.rejected = false
	if tr.RefreshToken != "" {
		ts.st.RefreshToken = tr.RefreshToken
	}
	ts.st.IssuedAt, ts.st.ExpiresAt = jwtTimes(tr.AccessToken)
	if tr.ExpiresIn.Valid && tr.ExpiresIn.Value >= 1 && tr.ExpiresIn.Value <= maxTokenLifetime.Seconds() {
		now := ts.c.cfg.Now()
		ts.st.IssuedAt, ts.st.ExpiresAt = now.Unix(), now.Add(time.Duration(tr.ExpiresIn.Value)*time.Second).Unix()
	}
	ts.st.Version = stateVersion
}

// refresh trades a refresh token for new tokens.
func (c *Client) refresh(ctx context.Context, refreshToken string) (*tokenResponse, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {c.cfg.ClientID},
		"refresh_token": {refreshToken},
	}
	req, err := http.NewRequest(http.MethodPost, c.cfg.AuthURL+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tr, err := c.tokenRequest(ctx, c.http, req)
	if err == nil {
		level.Debug(c.cfg.Logger).Log("msg", "refreshed the Peloton access token")
	}
	return tr, err
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
