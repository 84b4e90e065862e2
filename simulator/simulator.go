// Package simulator is a simulated Peloton: an Auth0-style login server, Peloton's SSO host
// and the members API, with a deterministic long-time member and, if asked, the other
// profiles of its household, each with its own login and data (household.go).
//
// It serves Peloton's real host names (auth.onepeloton.com, auth-orca.onepeloton.com,
// api.onepeloton.com) over real TLS on loopback (internal/loophost): a client reaches them
// through Transport, or a child process through ProxyURL and CAPEM, and so runs with its real
// default URLs, host rules and cookie rules. It is as strict as the real services are known
// to be (headers, cookies as Auth0 sets them, one-time values, PKCE, token rotation, brute-
// force blocking, Peloton's error bodies), each behaviour with its evidence in a comment, so
// that a client which works against it has a fair chance against the real thing; the
// conformance test in client/ keeps the two honest against the public record. The client's
// tests and the exporter's --demo mode both use it.
package simulator

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/peloton-exporter/peloton_exporter/internal/loophost"

	// The member's timezone must load even in a scratch container without
	// /usr/share/zoneinfo, where the demo mode is likely to run.
	_ "time/tzdata"
)

// Demo credentials and the Auth0 constants of Peloton's web app.
const (
	DemoUsername       = "demo@peloton.example"
	DemoPassword       = "demo-password"
	DefaultClientID    = "WVoJxVDdPoFx4RNewvvg6ch2mZ7bwnsM"
	DefaultRedirectURI = "https://members.onepeloton.com/callback"
	DefaultAudience    = "https://api.onepeloton.com/"
)

// Endpoint names, identical to the exporter's `endpoint` metric label values.
const (
	EndpointAuthorize   = "authorize"    // GET  {auth}/authorize
	EndpointLoginPage   = "login_page"   // GET  {auth}/login
	EndpointLogin       = "login"        // POST {auth}/usernamepassword/login
	EndpointCallback    = "callback"     // POST {auth}/login/callback and GET {auth}/authorize/resume
	EndpointSSO         = "sso"          // GET  {auth-orca}/sso/login_site and /sso/login_domain
	EndpointContinue    = "continue"     // GET  {auth}/continue
	EndpointToken       = "token"        // POST {auth}/oauth/token
	EndpointMe          = "me"           // GET  {api}/api/me
	EndpointOverview    = "overview"     // GET  {api}/api/user/{id}/overview
	EndpointWorkouts    = "workouts"     // GET  {api}/api/user/{id}/workouts
	EndpointLegacyLogin = "legacy_login" // POST {api}/auth/login, always the retired 403
)

const (
	defaultSeed     = 0x50454c4f // "PELO"
	defaultWorkouts = 1800
	defaultTimezone = "America/Chicago"
	defaultTTL      = 48 * time.Hour
	// shutdownGrace bounds Close: handlers are short or watch s.done, so
	// anything still open after this is cut.
	shutdownGrace = 2 * time.Second
)

// Config sets up a Simulator. The zero value is a working demo.
type Config struct {
	Username, Password              string // default DemoUsername / DemoPassword
	ClientID, RedirectURI, Audience string // defaults are Peloton's web app values
	AccessTokenTTL                  time.Duration
	// Now is the clock for token expiry, code age, streaks and the generated
	// history; tests pass a fake one. Default time.Now.
	Now func() time.Time
	// Seed makes the member deterministic; 0 means a fixed default seed.
	Seed int64
	// Workouts is the number of completed workouts in the history (default 1800).
	Workouts int
	// InProgress puts an IN_PROGRESS workout (end_time null) at the top of the history.
	InProgress bool
	// Timezone is the member's IANA zone (default America/Chicago).
	Timezone string
	// DistanceUnit is the member's setting, "imperial" (default) or "metric".
	DistanceUnit string
	// NoHeartRate is a member who never wore a heart-rate strap; by default one was worn for
	// the last three years of the history.
	NoHeartRate bool
	// ManualFTP sets the FTP by hand (cycling_ftp_source ftp_manual_source); 0 takes the one
	// of the best 20-minute ride.
	ManualFTP int
	// Imports adds that many runs imported from Apple Health over the last year.
	Imports int
	// NoAnnualChallenge is a member who did not join this year's Annual Challenge.
	NoAnnualChallenge bool
	// IPThrottleAfter is Auth0's suspicious IP throttling: after this many failed logins from
	// one IP within 24 hours, whatever the usernames, every further login from it is answered
	// 429 too_many_attempts ("We have detected suspicious login behavior…"), the password
	// unchecked, except one granted every 14.4 minutes. 0 takes Auth0's defaults (100 a day,
	// one granted every 864,000 ms); negative turns it off.
	IPThrottleAfter int
	// LoginPageWithoutConfig serves the login page without its window.injectedConfig line, as
	// in older captures: a client then posts the _csrf cookie's value and the login URL's
	// state (peloton-to-garmin's body), which Auth0 takes too.
	LoginPageWithoutConfig bool
	// VerifyLogins answers the right password with Auth0's verification page (an e-mailed
	// code), which a headless client cannot pass; SignInWithBrowser passes it, as the member
	// would in a browser.
	VerifyLogins bool
	// Household adds the other profiles of the membership, each signing in with its own
	// credentials and with data of its own (DemoMember describes the demo's). The fields above
	// describe the first member, whom the single-member helpers (UserID, SetPassword,
	// AddWorkout, Overview, IssueTokens …) act on.
	Household []Member
	// PlainHTTP serves the login and the API over plain HTTP on 127.0.0.1 ports instead of
	// Peloton's host names, as a member's own stand-in would: one host, no SSO hop. Only the
	// test that such stand-ins keep working uses it.
	PlainHTTP bool
}

func (c Config) withDefaults() Config {
	if c.Username == "" {
		c.Username = DemoUsername
	}
	if c.Password == "" {
		c.Password = DemoPassword
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.RedirectURI == "" {
		c.RedirectURI = DefaultRedirectURI
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.AccessTokenTTL <= 0 {
		c.AccessTokenTTL = defaultTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Seed == 0 {
		c.Seed = defaultSeed
	}
	if c.Workouts <= 0 {
		c.Workouts = defaultWorkouts
	}
	if c.Timezone == "" {
		c.Timezone = defaultTimezone
	}
	if c.DistanceUnit == "" {
		c.DistanceUnit = "imperial"
	}
	if c.IPThrottleAfter == 0 {
		c.IPThrottleAfter = ipThrottleDefault
	}
	return c
}

// Simulator is a running simulated Peloton. It is safe for concurrent use.
type Simulator struct {
	cfg        Config
	authURL    string
	apiURL     string
	orcaURL    string          // "" in PlainHTTP mode, which has no SSO host
	hosts      *loophost.Hosts // nil in PlainHTTP mode
	servers    []*http.Server
	signingKey []byte
	person     string        // the header value by which SignInWithBrowser passes a verification step
	done       chan struct{} // closed by Close, ends fault delays
	closeOnce  sync.Once
	clientOnce sync.Once
	client     *http.Client

	mu           sync.Mutex
	members      []*member // the first is Config's own; the rest come from Household
	requests     map[string]int
	faults       map[string][]Fault
	txByState    map[string]*loginTx // keyed by the login-page state
	txByWResult  map[string]*loginTx
	txBySSO      map[string]*loginTx // keyed by the SSO hop's state
	failedLogins map[string]int      // consecutive refused passwords by user and IP
	ipFailures   map[string]*ipFailures

	codes          map[string]*authCode
	access         map[string]*accessGrant
	refresh        map[string]*refreshGrant
	overviewJSON   []byte
	streakOverride *int
	secrets        []string // every credential value handed out, for leak tests
	signIns        []SignIn
}

// Start generates the member and serves the auth and API hosts on two
// ephemeral 127.0.0.1 ports, as the real service has two hosts.
func Start(cfg Config) (*Simulator, error) {
	cfg = cfg.withDefaults()
	key := make([]byte, 32)
	rand.Read(key) // never fails since Go 1.24
	s := &Simulator{
		cfg:          cfg,
		signingKey:   key,
		person:       randomToken(16),
		done:         make(chan struct{}),
		requests:     map[string]int{},
		faults:       map[string][]Fault{},
		txByState:    map[string]*loginTx{},
		txByWResult:  map[string]*loginTx{},
		txBySSO:      map[string]*loginTx{},
		failedLogins: map[string]int{},
		ipFailures:   map[string]*ipFailures{},
		codes:        map[string]*authCode{},
		access:       map[string]*accessGrant{},
		refresh:      map[string]*refreshGrant{},
	}
	for _, p := range append([]Member{cfg.primaryMember()}, cfg.Household...) {
		m, err := s.buildMember(p)
		if err != nil {
			return nil, err
		}
		s.members = append(s.members, m)
	}

	if err := s.listen(); err != nil {
		return nil, err
	}
	return s, nil
}

// Peloton's host names, served by the simulator.
const (
	AuthHost = "auth.onepeloton.com"
	SSOHost  = "auth-orca.onepeloton.com"
	APIHost  = "api.onepeloton.com"
)

// listen serves the three hosts on loopback over TLS under their real names, or the login
// and the API on two plain-HTTP ports in PlainHTTP mode.
func (s *Simulator) listen() error {
	handlers := map[string]http.Handler{AuthHost: s.authHandler(), APIHost: s.apiHandler(), SSOHost: s.ssoHandler()}
	listeners := map[string]net.Listener{}
	if s.cfg.PlainHTTP {
		for _, name := range []string{AuthHost, APIHost} {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				for _, l := range listeners {
					l.Close()
				}
				return fmt.Errorf("simulator: listener: %w", err)
			}
			listeners[name] = ln
		}
		s.authURL = "http://" + listeners[AuthHost].Addr().String()
		s.apiURL = "http://" + listeners[APIHost].Addr().String()
	} else {
		h, err := loophost.New(AuthHost, SSOHost, APIHost)
		if err != nil {
			return fmt.Errorf("simulator: %w", err)
		}
		s.hosts = h
		for name := range handlers {
			listeners[name] = h.Listener(name)
		}
		s.authURL, s.orcaURL, s.apiURL = "https://"+AuthHost, "https://"+SSOHost, "https://"+APIHost
	}
	for name, ln := range listeners {
		srv := &http.Server{Handler: handlers[name], ReadHeaderTimeout: 10 * time.Second}
		s.servers = append(s.servers, srv)
		go serve(srv, ln)
	}
	return nil
}

func serve(srv *http.Server, ln net.Listener) {
	// ErrServerClosed is the normal end; any other error also just ends the
	// server, and the caller sees it as refused connections.
	_ = srv.Serve(ln)
}

// AuthURL is the base URL of the login host: https://auth.onepeloton.com, the client's
// default (http://127.0.0.1:PORT in PlainHTTP mode).
func (s *Simulator) AuthURL() string { return s.authURL }

// APIURL is the base URL of the API host: https://api.onepeloton.com, the client's default
// (http://127.0.0.1:PORT in PlainHTTP mode).
func (s *Simulator) APIURL() string { return s.apiURL }

// Transport reaches the simulated hosts, and nothing else: Peloton's names are dialled at
// the loopback listeners and only the simulator's CA is trusted. Each call returns a new
// transport, which a test may adjust. In PlainHTTP mode it dials loopback addresses only.
func (s *Simulator) Transport() *http.Transport {
	if s.hosts == nil {
		return &http.Transport{Proxy: nil, DialContext: loopbackOnly}
	}
	return s.hosts.Transport()
}

// HTTPClient is one shared http.Client on Transport that follows no redirects, for tests
// that call the simulator directly.
func (s *Simulator) HTTPClient() *http.Client {
	s.clientOnce.Do(func() {
		s.client = &http.Client{Transport: s.Transport(), Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	})
	return s.client
}

// HostAddr is the loopback address that serves one of the host names (AuthHost, SSOHost,
// APIHost), for a test that puts something between the client and it; "" in PlainHTTP mode.
func (s *Simulator) HostAddr(name string) string {
	if s.hosts == nil {
		return ""
	}
	return s.hosts.Addr(name)
}

// ProxyURL is an HTTP CONNECT proxy to the simulated hosts, for a child process's
// HTTPS_PROXY; "" in PlainHTTP mode.
func (s *Simulator) ProxyURL() string {
	if s.hosts == nil {
		return ""
	}
	return s.hosts.ProxyURL()
}

// CAPEM is the certificate of the CA that signed the simulated hosts' certificates, for a
// child process's SSL_CERT_FILE; nil in PlainHTTP mode.
func (s *Simulator) CAPEM() []byte {
	if s.hosts == nil {
		return nil
	}
	return s.hosts.CAPEM()
}

func loopbackOnly(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("simulator: %s is not a loopback address", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Close stops every server. It returns within a few seconds even with
// requests in flight.
func (s *Simulator) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		var wg sync.WaitGroup
		for _, srv := range s.servers {
			wg.Go(func() {
				if err := srv.Shutdown(ctx); err != nil {
					srv.Close()
				}
			})
		}
		wg.Wait()
		if s.client != nil {
			s.client.CloseIdleConnections()
		}
		if s.hosts != nil {
			s.hosts.Close()
		}
	})
}

// UserID is the first member's id (32 lowercase hex characters).
func (s *Simulator) UserID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.primary().userID
}

// Requests reports how many requests reached the endpoint, including those a
// fault answered.
func (s *Simulator) Requests(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[endpoint]
}

// IssueTokens returns a fresh access and refresh token of the first member, as a user would
// copy them out of a logged-in browser (the exporter's token-only mode).
func (s *Simulator) IssueTokens() (access, refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.issueTokensLocked(defaultScope, "", nil, s.primary())
	return t.AccessToken, t.RefreshToken
}

// RevokeAccessTokens makes every access token issued so far answer 401.
func (s *Simulator) RevokeAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.access {
		g.revoked = true
	}
}

// RevokeRefreshTokens makes /oauth/token refuse every refresh token issued
// so far; tokens issued later work.
func (s *Simulator) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.refresh)
}

// SetPassword changes the first member's password, e.g. to simulate a password
// change that makes stored credentials wrong. Like Auth0's, it lifts the
// member's brute-force block (auth0/docs brute-force-protection-triggers-
// actions.md: "The user changes their password").
func (s *Simulator) SetPassword(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.primary()
	m.password = p
	for key := range s.failedLogins {
		if strings.HasPrefix(key, strings.ToLower(m.login)+"|") {
			delete(s.failedLogins, key)
		}
	}
}

// SetOverviewJSON makes the overview endpoint serve exactly raw to the first member (which may
// be malformed on purpose); nil goes back to the generated overview.
func (s *Simulator) SetOverviewJSON(raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overviewJSON = slices.Clone(raw)
}

// SetWeeklyStreak overrides streaks.current_weekly in the first member's overview;
// 0 is a broken streak (its start date becomes null). A negative value goes
// back to the streak computed from the history.
func (s *Simulator) SetWeeklyStreak(current int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if current < 0 {
		s.streakOverride = nil
		return
	}
	s.streakOverride = &current
}

// AddWorkout adds w as the first member's newest workout. Empty fields get plausible
// defaults (id, times ending now, COMPLETE, the member's timezone, a ride);
// the overview's counts, streaks and records follow.
func (s *Simulator) AddWorkout(w Workout) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.primary().add(w, s.cfg.Now())
}

// Overview is the first member's generated overview as the API would serve it now (ignoring
// SetOverviewJSON), for tests to compare against.
func (s *Simulator) Overview() Overview {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overviewLocked(s.primary())
}

// overviewLocked is m's overview, with the first member's overrides. s.mu must be held.
func (s *Simulator) overviewLocked(m *member) Overview {
	o := m.overview(s.cfg.Now())
	if s.streakOverride != nil && m == s.primary() {
		n := *s.streakOverride
		st := &o.Streaks
		switch {
		case n == 0:
			st.StartDateOfCurrentWeekly = nil
		case st.StartDateOfCurrentWeekly == nil:
			// The history has no live streak to take a date from: start
			// it on the Monday n-1 weeks before this one.
			start := mondayOf(s.cfg.Now(), m.loc).AddDate(0, 0, -7*(n-1)).Unix()
			st.StartDateOfCurrentWeekly = &start
		}
		st.CurrentWeekly = n
	}
	return o
}

// writeJSON answers with v as JSON; every API and token answer goes through it.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own types are marshalled, so this is a programming error.
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(body)
}

// Secrets lists every secret the simulator has handed out or accepted so far: the members'
// passwords, csrf values, login results, authorization codes, access, refresh and id tokens.
// Tests search the exporter's output for them.
func (s *Simulator) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.members {
		out = append(out, m.password)
	}
	return append(out, s.secrets...)
}

// noteSecretsLocked remembers secrets for Secrets, the newest thousand only, so that a demo
// that runs for months does not grow. s.mu must be held.
func (s *Simulator) noteSecretsLocked(v ...string) {
	s.secrets = append(s.secrets, v...)
	if over := len(s.secrets) - 1000; over > 0 {
		s.secrets = append(s.secrets[:0], s.secrets[over:]...)
	}
}

// randomToken is an unguessable URL-safe string for states, cookies, codes
// and refresh tokens.
func randomToken(nbytes int) string {
	b := make([]byte, nbytes)
	rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}
