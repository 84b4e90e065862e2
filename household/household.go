// Package household runs the accounts of a --config.file side by side in one exporter, each
// served on /probe?target=NAME with exactly the series a single-account exporter serves: its
// own Peloton client and state file, workout history and detail filler, TTL cache with
// single-flight refresh and last good data, and encoded-answer cache. What the accounts share
// is only what politeness to Peloton requires: their password logins take turns (one per
// --peloton.login-spacing for the whole process) and their detail requests keep to one pace,
// because they all come from one home address.
//
// The running set follows the file: Load starts added accounts, stops removed ones (their
// cache goes with them) and keeps unchanged ones as they are, tokens, cache and all; a file
// that does not load keeps the running set and says why.
package household

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/collector"
	"github.com/peloton-exporter/peloton_exporter/config"
	"github.com/peloton-exporter/peloton_exporter/history"
	"github.com/peloton-exporter/peloton_exporter/internal/respcache"
)

// Options are the settings every account shares.
type Options struct {
	// Client holds the shared client settings (URLs, timeouts, login interval, transport,
	// user agent, logger); credentials, the state file and the login spacer are per account.
	Client client.Config
	// Collector holds the shared collector settings (TTL, refresh timeout, detail interval,
	// NoDetail, logger); Timezone and WeekStart are the defaults an account may override.
	Collector collector.Options
	// StateDir keeps each account's tokens in <StateDir>/<name>.json and its history beside
	// it; "" keeps both in memory.
	StateDir string
	// LoginSpacing is the least time between two password logins of any accounts (default 1m).
	LoginSpacing time.Duration
	// ProbeCollectors are served on every probe besides the account's own series (the build
	// info, which a single-account exporter serves too).
	ProbeCollectors []prometheus.Collector
	// Credentials gives an account's credentials (default: ReadCredentials, from its files and
	// environment variables). The demo gives the simulated members' instead.
	Credentials func(config.Account) (Credentials, error)
	// Lookup resolves ${VAR} in the config file (default os.LookupEnv).
	Lookup func(string) (string, bool)
	// WarmupGap spaces the first refreshes of the accounts that start together (default 1s),
	// and WarmupPoll is how often an account that is not up yet tries again within its retry
	// schedule (default 5s), so that it logs in at its turn even before Prometheus scrapes it.
	WarmupGap, WarmupPoll time.Duration
	// Serving is closed once the exporter serves: no warm-up contacts Peloton before, so that
	// an exporter that cannot serve does not log in on every restart of a crash loop. Nil:
	// at once.
	Serving  <-chan struct{}
	ErrorLog promhttp.Logger
	Logger   log.Logger
	Now      func() time.Time
}

// Credentials are what an account signs in with; any of them may be empty.
type Credentials struct {
	Username, Password, AccessToken, RefreshToken string
}

func (c Credentials) any() bool {
	return c.Password != "" || c.AccessToken != "" || c.RefreshToken != ""
}

// warmupFor bounds how long an account keeps trying on its own to come up; after that the
// scrapes drive its refreshes, as always.
const warmupFor = time.Hour

// Household is the running set of accounts. It is safe for concurrent use.
type Household struct {
	opts       Options
	spacer     *client.LoginSpacer
	detailPace *rate.Limiter
	descs      descs

	reload sync.Mutex // one Load at a time

	mu         sync.RWMutex
	accounts   map[string]*Account
	order      []string // as in the file
	reloadOK   bool
	reloadedAt time.Time // of the last successful load
	closed     bool
}

// Account is one running account.
type Account struct {
	Name        string
	StateFile   string // "" in memory
	HistoryFile string
	Client      *client.Client
	Exporter    *collector.Exporter

	settings config.Account // as loaded, without its line: what a reload compares
	creds    Credentials
	handler  http.Handler
	stop     context.CancelFunc // ends the warm-up
	warmed   chan struct{}      // closed when the warm-up has ended
}

// New returns an empty household; Load starts its accounts.
func New(opts Options) *Household {
	if opts.LoginSpacing <= 0 {
		opts.LoginSpacing = time.Minute
	}
	if opts.Lookup == nil {
		opts.Lookup = os.LookupEnv
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.Credentials == nil {
		opts.Credentials = func(a config.Account) (Credentials, error) { return ReadCredentials(a, opts.Lookup, opts.Logger) }
	}
	if opts.WarmupGap <= 0 {
		opts.WarmupGap = time.Second
	}
	if opts.WarmupPoll <= 0 {
		opts.WarmupPoll = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	detailEvery := opts.Collector.DetailInterval
	if detailEvery <= 0 {
		detailEvery = time.Second
	}
	return &Household{
		opts:       opts,
		spacer:     client.NewLoginSpacer(opts.LoginSpacing),
		detailPace: rate.NewLimiter(rate.Every(detailEvery), 1),
		descs:      newDescs(),
		accounts:   map[string]*Account{},
	}
}

// Paths are the state and history files of the account name in stateDir ("" and "" when the
// state is kept in memory).
func Paths(stateDir, name string) (stateFile, historyFile string) {
	if stateDir == "" {
		return "", ""
	}
	stateFile = filepath.Join(stateDir, name+".json")
	return stateFile, history.PathBeside(stateFile)
}

// ClientConfig is the client configuration of an account: the shared settings with its
// credentials and state file. Commands that work on one account (a sign-in, a backfill) build
// its client with it.
func ClientConfig(shared client.Config, name string, creds Credentials, stateDir string) client.Config {
	cfg := shared
	cfg.Username, cfg.Password = creds.Username, creds.Password
	cfg.AccessToken, cfg.RefreshToken = creds.AccessToken, creds.RefreshToken
	cfg.StateFile, _ = Paths(stateDir, name)
	if cfg.Logger != nil {
		cfg.Logger = log.With(cfg.Logger, "account", name)
	}
	return cfg
}

// ReadCredentials reads an account's secrets from its files or environment variables,
// warning about a file that others can read.
func ReadCredentials(a config.Account, lookup func(string) (string, bool), logger log.Logger) (Credentials, error) {
	c := Credentials{Username: a.Username}
	for _, s := range []struct {
		secret config.Secret
		to     *string
	}{{a.Password, &c.Password}, {a.RefreshToken, &c.RefreshToken}, {a.AccessToken, &c.AccessToken}} {
		v, loose, err := s.secret.Read(lookup)
		if err != nil {
			return Credentials{}, err
		}
		if loose {
			level.Warn(logger).Log("msg", "a secret file is readable by other users; chmod 600 it", "account", a.Name, "path", s.secret.File)
		}
		*s.to = v
	}
	return c, nil
}

// Load reads the config file at path and makes the running set follow it. When the file does
// not load, or an account's secrets cannot be read or it has no way in, nothing changes and the
// error says why. An account whose client cannot be built (only a bad shared client setting,
// which main checks at start, can do that) is left out and the error counts it; if it was a
// changed account, its old self has stopped already, since a successor must not read the
// state file while its predecessor may still rotate the tokens in it.
func (h *Household) Load(path string) error {
	h.reload.Lock()
	defer h.reload.Unlock()
	err := h.load(path)
	h.mu.Lock()
	h.reloadOK = err == nil
	if err == nil {
		h.reloadedAt = h.opts.Now()
	}
	h.mu.Unlock()
	return err
}

// pending is an account of the new file, with what it will run as.
type pending struct {
	settings config.Account
	creds    Credentials
	keep     *Account // the running account that stays as it is, if any
}

func (h *Household) load(path string) error {
	cfg, err := config.Load(path, h.opts.Lookup)
	if err != nil {
		return err
	}
	h.mu.RLock()
	closed, running := h.closed, h.accounts
	h.mu.RUnlock()
	if closed {
		return errors.New("the exporter is shutting down")
	}

	// Everything that can fail, before anything changes.
	var next []pending
	for _, a := range cfg.Accounts {
		creds, err := h.opts.Credentials(a)
		if err != nil {
			return fmt.Errorf("account %s (line %d): %w", a.Name, a.Line, err)
		}
		stateFile, _ := Paths(h.opts.StateDir, a.Name)
		if !creds.any() && !client.HasSavedTokens(stateFile) {
			return fmt.Errorf("account %s (line %d) has no way in: set username and password_file, refresh_token_file or "+
				"access_token_file, or sign it in once with a browser: peloton_exporter login --peloton.state-file=%s",
				a.Name, a.Line, orPlaceholder(stateFile))
		}
		a.Line = 0
		p := pending{settings: a, creds: creds}
		if old := running[a.Name]; old != nil && old.settings == a && old.creds == creds {
			p.keep = old
		}
		next = append(next, p)
	}

	// A changed account stops before its successor starts: the two must never share the
	// state file, whose refresh token rotates. Until the swap, probes get its last data.
	accounts := map[string]*Account{}
	var order []string
	started, stopped := 0, 0
	for _, p := range next {
		a := p.keep
		if a == nil {
			if old := running[p.settings.Name]; old != nil {
				level.Info(h.opts.Logger).Log("msg", "account changed in the config file: restarting it", "account", old.Name)
				old.close()
				stopped++
			}
			// The accounts that start together warm up a gap apart.
			if a, err = h.start(p.settings, p.creds, h.opts.WarmupGap*time.Duration(started)); err != nil {
				// Only a client setting can fail here, and main checks those at start.
				level.Error(h.opts.Logger).Log("msg", "cannot start an account", "account", p.settings.Name, "err", err)
				continue
			}
			started++
		}
		accounts[a.Name] = a
		order = append(order, a.Name)
	}
	h.mu.Lock()
	h.accounts, h.order = accounts, order
	h.mu.Unlock()
	for name, old := range running {
		if !slices.ContainsFunc(next, func(p pending) bool { return p.settings.Name == name }) {
			old.close() // removed: its cache goes with it; its state file stays for a return
			stopped++
		}
	}
	level.Info(h.opts.Logger).Log("msg", "config file loaded", "path", path, "accounts", strings.Join(order, ","),
		"started", started, "stopped", stopped)
	if len(order) < len(next) {
		return fmt.Errorf("%d of %d accounts could not start (see the log)", len(next)-len(order), len(next))
	}
	return nil
}

func orPlaceholder(stateFile string) string {
	if stateFile == "" {
		return "<a state file, and --peloton.state-dir>"
	}
	return stateFile
}

// start builds a running account and starts its warm-up after delay, which contacts Peloton.
func (h *Household) start(a config.Account, creds Credentials, delay time.Duration) (*Account, error) {
	ccfg := ClientConfig(h.opts.Client, a.Name, creds, h.opts.StateDir)
	ccfg.LoginSpacer = h.spacer
	c, err := client.New(ccfg)
	if err != nil {
		return nil, err
	}
	logger := log.With(h.opts.Logger, "account", a.Name)
	copts := h.opts.Collector
	stateFile, historyFile := Paths(h.opts.StateDir, a.Name)
	copts.Logger = logger
	copts.History = history.Open(historyFile, logger)
	copts.DetailShared = h.detailPace
	copts.Timezone, copts.WeekStart = a.Streak(copts.Timezone, copts.WeekStart)
	exp := collector.New(c, copts)
	reg := prometheus.NewRegistry()
	reg.MustRegister(exp)
	for _, pc := range h.opts.ProbeCollectors {
		reg.MustRegister(pc)
	}
	cache := respcache.New(reg, promhttp.HandlerOpts{ErrorLog: h.opts.ErrorLog}, exp.Generation, time.Second)
	ctx, stop := context.WithCancel(context.Background())
	acct := &Account{
		Name: a.Name, StateFile: stateFile, HistoryFile: historyFile, Client: c, Exporter: exp,
		settings: a, creds: creds, handler: exp.Handler(cache), stop: stop, warmed: make(chan struct{}),
	}
	go acct.warm(ctx, h.opts.Serving, delay, h.opts.WarmupPoll)
	return acct, nil
}

// warm refreshes a new account once after delay from when serving is closed, then, until it
// is up, whenever its retry schedule allows (and at least every poll): an account waiting for
// its turn to log in logs in at its turn without waiting for a scrape. Bounded by warmupFor
// and by the account's life.
func (a *Account) warm(ctx context.Context, serving <-chan struct{}, delay, poll time.Duration) {
	defer close(a.warmed)
	if serving != nil {
		select {
		case <-serving:
		case <-ctx.Done():
			return
		}
	}
	if !sleep(ctx, delay) {
		return
	}
	for deadline := time.Now().Add(warmupFor); time.Now().Before(deadline); {
		a.Exporter.Refresh(ctx)
		if a.Exporter.Up() {
			return
		}
		wait := poll
		if at, ok := a.Exporter.RetryAt(); ok {
			wait = min(poll, max(time.Until(at), 10*time.Millisecond))
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// close stops the account's warm-up, refresh and filler, and waits for them; its history is
// saved and its cache dropped with it, and its turn to log in goes to the others (a changed
// account's successor queues afresh).
func (a *Account) close() {
	a.stop()
	<-a.warmed
	a.Exporter.Close()
	a.Client.ReleaseLoginTurn()
}

// Account returns the running account of that name.
func (h *Household) Account(name string) (*Account, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	a, ok := h.accounts[name]
	return a, ok
}

// Names are the running accounts, in the order of the file.
func (h *Household) Names() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return slices.Clone(h.order)
}

// Close stops every account; a Load after it fails.
func (h *Household) Close() {
	h.reload.Lock()
	defer h.reload.Unlock()
	h.mu.Lock()
	accounts := h.accounts
	h.accounts, h.order, h.closed = map[string]*Account{}, nil, true
	h.mu.Unlock()
	for _, a := range accounts {
		a.close()
	}
}
