// Package client talks to Peloton: the Auth0 login (PKCE), token refresh and persistence, and
// the JSON API. It knows HTTP, auth and JSON, and nothing of Prometheus.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// Today's values used by Peloton's web app; every one is configurable because Peloton may
// change them without notice.
const (
	DefaultAPIURL      = "https://api.onepeloton.com"
	DefaultAuthURL     = "https://auth.onepeloton.com"
	DefaultClientID    = "WVoJxVDdPoFx4RNewvvg6ch2mZ7bwnsM"
	DefaultAudience    = "https://api.onepeloton.com/"
	DefaultScope       = "offline_access openid peloton-api.members:default"
	DefaultRedirectURI = "https://members.onepeloton.com/callback"
	// DefaultAuth0Client is base64 of {"name":"auth0.js-ulp","version":"9.14.3"}.
	DefaultAuth0Client = "eyJuYW1lIjoiYXV0aDAuanMtdWxwIiwidmVyc2lvbiI6IjkuMTQuMyJ9"
	auth0Tenant        = "peloton-prod"
	auth0Connection    = "pelo-user-password"
)

// Config says where Peloton is and how to authenticate. Zero values take the defaults.
type Config struct {
	APIURL, AuthURL                                     string
	ClientID, Audience, Scope, RedirectURI, Auth0Client string

	// Username and Password enable full logins. AccessToken and RefreshToken are tokens taken
	// from a browser session; either way of getting in may be used alone or both together.
	Username, Password        string
	AccessToken, RefreshToken string
	StateFile                 string        // where tokens survive restarts; "" keeps them in memory only
	Timeout                   time.Duration // per HTTP request (default 10s)
	UserAgent                 string
	LoginInterval             time.Duration // least time between password logins (default 15m)
	// LoginSpacer, shared by several accounts' clients, spaces their password logins (nil:
	// this client's own LoginInterval is the only limit).
	LoginSpacer     *LoginSpacer
	MaxLoginBackoff time.Duration // ceiling of the back-off after failed logins (default 8h)
	RefreshMargin   time.Duration // renew a token of unknown lifetime this long before it expires (default 1h)
	MaxBodyBytes    int64         // largest response body read (default 16 MiB)
	Logger          log.Logger
	Now             func() time.Time
	// Transport carries every request to Peloton (default http.DefaultTransport, which
	// honours HTTPS_PROXY). Tests and --demo pass the simulator's, which dials Peloton's host
	// names on loopback.
	Transport http.RoundTripper
}

func (c *Config) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.APIURL, DefaultAPIURL)
	def(&c.AuthURL, DefaultAuthURL)
	def(&c.ClientID, DefaultClientID)
	def(&c.Audience, DefaultAudience)
	def(&c.Scope, DefaultScope)
	def(&c.RedirectURI, DefaultRedirectURI)
	def(&c.Auth0Client, DefaultAuth0Client)
	def(&c.UserAgent, "peloton_exporter")
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	c.AuthURL = strings.TrimRight(c.AuthURL, "/")
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.LoginInterval <= 0 {
		c.LoginInterval = 15 * time.Minute
	}
	if c.MaxLoginBackoff <= 0 {
		c.MaxLoginBackoff = 8 * time.Hour
	}
	if c.RefreshMargin <= 0 {
		c.RefreshMargin = time.Hour
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 16 << 20
	}
	if c.Logger == nil {
		c.Logger = log.NewNopLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Client is safe for concurrent use.
type Client struct {
	cfg    Config
	http   *http.Client
	tokens *tokenSource

	mu     sync.Mutex
	counts map[RequestCount]uint64
	// retryAfter is, by host, until when a 429 asked us to wait: a login throttled on the
	// auth host must not stop API calls that have a valid token, nor the API's 429 a login.
	retryAfter map[string]time.Time
	authHost   string // as retryAfter keys it
}

// RequestCount names one (endpoint, code) pair of the request counter; code is the HTTP status
// or "error" when no answer came.
type RequestCount struct {
	Endpoint, Code string
	Count          uint64
}

// New builds a client and loads the state file. A damaged state file is logged and ignored.
func New(cfg Config) (*Client, error) {
	cfg.setDefaults()
	for _, u := range []string{cfg.APIURL, cfg.AuthURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("invalid URL %q: want http(s)://host[:port]", u)
		}
	}
	auth, _ := url.Parse(cfg.AuthURL) // checked above
	c := &Client{
		cfg: cfg,
		http: &http.Client{
			Transport: cfg.Transport,
			// Redirects are followed by hand: the login must stop at the redirect URI and
			// must not wander off Peloton's hosts.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		counts:     map[RequestCount]uint64{},
		retryAfter: map[string]time.Time{},
		authHost:   strings.ToLower(auth.Host),
	}
	c.tokens = newTokenSource(c)
	return c, nil
}

// Stats returns how many requests went to each endpoint, by answer code, sorted.
func (c *Client) Stats() []RequestCount {
	c.mu.Lock()
	out := make([]RequestCount, 0, len(c.counts))
	for k, v := range c.counts {
		k.Count = v
		out = append(out, k)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Endpoint != out[j].Endpoint {
			return out[i].Endpoint < out[j].Endpoint
		}
		return out[i].Code < out[j].Code
	})
	return out
}

// TokenExpiry is the expiry of the access token in use, if known. It never waits for a login
// or refresh in progress.
func (c *Client) TokenExpiry() (time.Time, bool) { return c.tokens.expiry() }

// ReleaseLoginTurn gives up the client's place among the accounts that share its LoginSpacer,
// for a client that is done with.
func (c *Client) ReleaseLoginTurn() {
	if sp := c.cfg.LoginSpacer; sp != nil {
		sp.release(c.tokens.gate, c.cfg.Now())
	}
}

// CredentialsRefused tells whether password logins are stopped because Peloton refused the
// configured credentials (the refusal budget is spent) or blocked the account. It never
// waits for a login in progress.
func (c *Client) CredentialsRefused() bool { return c.tokens.loginsStopped() }

// response is a fully read HTTP answer.
type response struct {
	status   int
	header   http.Header
	body     []byte
	location *url.URL // resolved Location of a redirect, or nil
}

// send performs one request with the per-request timeout, counts it, reads the body within the
// size limit and turns a 429 into a wait that later requests to the same host honour without
// calling Peloton.
func (c *Client) send(ctx context.Context, hc *http.Client, endpoint string, req *http.Request) (*response, error) {
	host := strings.ToLower(req.URL.Host)
	c.mu.Lock()
	wait := c.retryAfter[host]
	c.mu.Unlock()
	if c.cfg.Now().Before(wait) {
		return nil, &RateLimitedError{Endpoint: endpoint, Until: wait}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req = req.WithContext(ctx)
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	resp, err := hc.Do(req)
	if err != nil {
		c.count(endpoint, "error")
		return nil, fmt.Errorf("%s: %w", endpoint, unwrapURLError(err))
	}
	defer resp.Body.Close()
	c.count(endpoint, strconv.Itoa(resp.StatusCode))
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: the answer did not finish within %s: timed out", endpoint, c.cfg.Timeout)
		}
		return nil, fmt.Errorf("%s: reading the answer: %w", endpoint, unwrapURLError(err))
	}
	if int64(len(body)) > c.cfg.MaxBodyBytes {
		return nil, fmt.Errorf("%s: answer larger than the %d byte limit", endpoint, c.cfg.MaxBodyBytes)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: body}
	// A blocked account is no rate limit: waiting does not lift it, and the API goes on
	// working with the tokens there are. The login step tells the member. Auth0's throttling
	// of this IP is one, and lifts by itself (isAccountBlocked).
	if resp.StatusCode == http.StatusTooManyRequests && !isAccountBlocked(r) {
		wait, reason := time.Minute, ""
		throttled := isIPThrottled(r)
		if throttled {
			wait, reason = ipThrottleWait, "Auth0 throttles logins from this IP after many failed ones; it lifts by itself"
		}
		until := c.cfg.Now().Add(retryWait(resp.Header, c.cfg.Now(), wait))
		// The throttle is on the address: the accounts that share it wait too.
		if sp := c.cfg.LoginSpacer; throttled && host == c.authHost && sp != nil && sp.blockUntil(until, c.cfg.Now()) {
			level.Warn(c.cfg.Logger).Log("msg", "Auth0 throttles logins from this IP address: no account logs in with its password until it lifts",
				"until", until.UTC().Format(time.RFC3339))
		}
		c.mu.Lock()
		if until.After(c.retryAfter[host]) {
			c.retryAfter[host] = until
		}
		c.mu.Unlock()
		return nil, &RateLimitedError{Endpoint: endpoint, Until: until, Reason: reason}
	}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if u, err := req.URL.Parse(loc); err == nil {
			r.location = u
		}
	}
	return r, nil
}

func (c *Client) count(endpoint, code string) {
	c.mu.Lock()
	c.counts[RequestCount{Endpoint: endpoint, Code: code}]++
	c.mu.Unlock()
}

// unwrapURLError drops the URL that net/http puts in its errors: a login URL's query carries
// values that do not belong in logs.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(ue.Err, context.DeadlineExceeded) {
			return fmt.Errorf("%s timed out", ue.Op)
		}
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// retryWait is how long a 429 asks to wait: Retry-After, else Auth0's x-ratelimit-reset (the
// epoch second when the limit resets: Auth0's rate-limit policy; the auth0 Ruby SDK reads it
// as Time.at), else otherwise. Never more than a day.
func retryWait(h http.Header, now time.Time, otherwise time.Duration) time.Duration {
	if v := h.Get("Retry-After"); v != "" {
		return parseRetryAfter(v, now)
	}
	if reset, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-Ratelimit-Reset")), 10, 64); err == nil && reset > 0 {
		return min(max(time.Unix(reset, 0).Sub(now), time.Second), 24*time.Hour)
	}
	return otherwise
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date. Without a usable value it waits
// a minute; it never waits more than a day, whatever a CDN says.
func parseRetryAfter(v string, now time.Time) time.Duration {
	const most = 24 * time.Hour
	d := time.Minute
	if digits := strings.TrimPrefix(strings.TrimSpace(v), "+"); digits != "" && strings.Trim(digits, "0123456789") == "" {
		d = most // however many digits: a huge number must not overflow into a short wait
		if secs, err := strconv.Atoi(digits); err == nil && secs < int(most/time.Second) {
			d = time.Duration(secs) * time.Second
		}
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, time.Second), most)
}

// getJSON fetches an API path with the bearer token. An API 401 gets one token refresh and one
// retry; anything but 200 is an error.
func (c *Client) getJSON(ctx context.Context, endpoint, path string, query url.Values, out any) error {
	u := c.cfg.APIURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var r *response
	for attempt := 0; attempt < 2; attempt++ {
		token, err := c.tokens.token(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Peloton-Platform", "web")
		req.Header.Set("Accept", "application/json")
		if r, err = c.send(ctx, c.http, endpoint, req); err != nil {
			return err
		}
		if r.status != http.StatusUnauthorized {
			break
		}
		c.tokens.reject(token)
	}
	if r.status != http.StatusOK {
		return apiError(endpoint, r)
	}
	if len(strings.TrimSpace(string(r.body))) == 0 {
		return fmt.Errorf("%s: empty answer", endpoint)
	}
	if err := json.Unmarshal(r.body, out); err != nil {
		return fmt.Errorf("%s: decoding the answer: %w", endpoint, err)
	}
	return nil
}

func apiError(endpoint string, r *response) error {
	if r.status == http.StatusForbidden && strings.Contains(string(r.body), "Endpoint no longer accepting requests") {
		return fmt.Errorf("%s: %w", endpoint, ErrLegacyLoginRetired)
	}
	return &HTTPError{Endpoint: endpoint, Status: r.status, Message: describeBody(r.header.Get("Content-Type"), r.body)}
}

// Me fetches the profile of the logged-in member. The id is read on its own first, so that a
// profile whose other fields drift still identifies the member for the other endpoints.
func (c *Client) Me(ctx context.Context) (*Me, error) {
	var raw json.RawMessage
	if err := c.getJSON(ctx, "me", "/api/me", nil, &raw); err != nil {
		return nil, err
	}
	var id struct {
		ID Text `json:"id"`
	}
	if json.Unmarshal(raw, &id) != nil || id.ID == "" {
		return nil, errors.New("me: the profile has no id")
	}
	c.tokens.setUserID(string(id.ID))
	var me Me
	if err := json.Unmarshal(raw, &me); err != nil {
		return nil, fmt.Errorf("me: decoding the answer: %w", err)
	}
	return &me, nil
}

// UserID is the member's id, from the state file or else from /api/me.
func (c *Client) UserID(ctx context.Context) (string, error) {
	if id := c.tokens.userID(); id != "" {
		return id, nil
	}
	me, err := c.Me(ctx)
	if err != nil {
		return "", err
	}
	return string(me.ID), nil
}

// Overview fetches the member's account overview.
func (c *Client) Overview(ctx context.Context) (*Overview, error) {
	id, err := c.UserID(ctx)
	if err != nil {
		return nil, err
	}
	var ov Overview
	if err := c.getJSON(ctx, "overview", "/api/user/"+url.PathEscape(id)+"/overview", url.Values{"version": {"1"}}, &ov); err != nil {
		return nil, err
	}
	return &ov, nil
}

// Workouts fetches one page (0-based) of the workout history, newest first; Peloton allows at
// most 100 workouts a page.
func (c *Client) Workouts(ctx context.Context, page, limit int) (*WorkoutPage, error) {
	id, err := c.UserID(ctx)
	if err != nil {
		return nil, err
	}
	q := url.Values{
		"page":    {strconv.Itoa(page)},
		"limit":   {strconv.Itoa(limit)},
		"sort_by": {"-created"},
		// The class and its instructor come with each workout (peloton-to-garmin's paged call).
		"joins": {"ride,ride.instructor"},
	}
	var wp WorkoutPage
	if err := c.getJSON(ctx, "workouts", "/api/user/"+url.PathEscape(id)+"/workouts", q, &wp); err != nil {
		return nil, err
	}
	return &wp, nil
}
