package main

// The household mode: --config.file's accounts, each on /probe?target=NAME (package
// household), the exporter's own metrics on /metrics, and reloads on SIGHUP and POST /-/reload
// (the conventions of blackbox_exporter).

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/collector"
	"github.com/peloton-exporter/peloton_exporter/config"
	"github.com/peloton-exporter/peloton_exporter/household"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// The paths of the household mode, beside --web.telemetry-path.
const (
	probePath  = "/probe"
	reloadPath = "/-/reload"
)

// householdFlags are the flags of the household mode.
type householdFlags struct {
	configFile   string
	stateDir     string
	loginSpacing time.Duration
}

// check refuses what cannot go with --config.file: the single account's credentials (which
// account would they be?), a telemetry path on the household's own paths, the login command,
// which signs in one account by its state file, and a file that does not parse.
func (f householdFlags) check(metricsPath string, login bool, username, passwordFile, accessFile, refreshFile string) error {
	if f.configFile == "" {
		return nil
	}
	var single []string
	for _, s := range []struct{ name, value string }{
		{"--peloton.username (or $PELOTON_USERNAME)", username},
		{"--peloton.password-file (or $PELOTON_PASSWORD_FILE)", passwordFile},
		{"--peloton.access-token-file (or $PELOTON_ACCESS_TOKEN_FILE)", accessFile},
		{"--peloton.refresh-token-file (or $PELOTON_REFRESH_TOKEN_FILE)", refreshFile},
		{"$PELOTON_PASSWORD", os.Getenv("PELOTON_PASSWORD")},
		{"$PELOTON_ACCESS_TOKEN", os.Getenv("PELOTON_ACCESS_TOKEN")},
		{"$PELOTON_REFRESH_TOKEN", os.Getenv("PELOTON_REFRESH_TOKEN")},
	} {
		if s.value != "" {
			single = append(single, s.name)
		}
	}
	switch {
	case len(single) > 0:
		return fmt.Errorf("--config.file serves the accounts its file lists, so it cannot be used with the single account of %s: "+
			"make that account an entry of the file (with password_file or refresh_token_file), or drop --config.file",
			strings.Join(single, ", "))
	case login:
		return errors.New("login signs in one account: for an account of --config.file, name its state file: " +
			"peloton_exporter login --peloton.state-file=<--peloton.state-dir>/<name>.json")
	case metricsPath == probePath || metricsPath == reloadPath:
		return fmt.Errorf("--web.telemetry-path=%s: with --config.file that path serves the accounts' probes and reloads", metricsPath)
	}
	// The file itself, as a usage error before anything starts; its accounts' secrets are
	// read when they start.
	if _, err := config.Load(f.configFile, os.LookupEnv); err != nil {
		return fmt.Errorf("--config.file: %w", err)
	}
	return nil
}

// resolveStateDir is --peloton.state-dir, or the directory of --peloton.state-file.
func resolveStateDir(dir, stateFile string) string {
	if dir != "" || stateFile == "" {
		return dir
	}
	return filepath.Dir(stateFile)
}

// runHousehold serves the accounts of the config file until a signal stops it, or serving
// fails. A config file that does not load at start is an error; later, a reload that fails
// keeps the accounts running.
func runHousehold(cfg client.Config, sc serveConfig, hf householdFlags, logger log.Logger, slogger *slog.Logger) error {
	opts := household.Options{
		Client:       cfg,
		StateDir:     resolveStateDir(hf.stateDir, cfg.StateFile),
		LoginSpacing: hf.loginSpacing,
		Collector: collector.Options{
			TTL: sc.cacheTTL, RefreshTimeout: refreshTimeout, Timezone: sc.streakZone, WeekStart: sc.weekStart,
			DetailInterval: sc.detailInterval, NoDetail: !sc.detail,
		},
		// A single-account exporter serves its build info with its data; so does a probe.
		ProbeCollectors: []prometheus.Collector{versioncollector.NewCollector(exporterName)},
		ErrorLog:        promErrorLogger{logger},
		Logger:          logger,
	}
	serving := make(chan struct{})
	opts.Serving = serving
	opts.Client.StateFile = ""
	if sc.demo.on {
		sim, err := sc.demo.apply(&opts.Client, logger) // each account signs in as a member, below
		if err != nil {
			return err
		}
		defer sim.Close()
		// The demo's tokens die with it, and no account's state file is ever touched.
		opts.StateDir = ""
		opts.Credentials = (&demoHousehold{sim: sim, logger: logger, members: map[string]simulator.Member{}}).credentials
		level.Info(logger).Log("msg", "demo mode: a simulated household on loopback; the accounts of the config file sign in as its members",
			"api", sim.APIURL(), "auth", sim.AuthURL())
	}
	if _, err := client.New(opts.Client); err != nil { // the shared settings; contacts nobody
		return fmt.Errorf("invalid Peloton settings: %w", err)
	}
	if opts.StateDir != "" {
		// A missing directory (an unmounted volume) would lose every account's rotating
		// refresh token at the next restart: better not to start.
		if fi, err := os.Stat(opts.StateDir); err != nil || !fi.IsDir() {
			return fmt.Errorf("--peloton.state-dir %s: not a directory (it must exist: it keeps every account's tokens)", opts.StateDir)
		}
	}
	if opts.LoginSpacing < time.Minute {
		level.Warn(logger).Log("msg", "password logins of the accounts less than a minute apart risk Peloton's login blocking the address", "spacing", opts.LoginSpacing)
	}
	h := household.New(opts)
	defer h.Close()
	if err := h.Load(hf.configFile); err != nil {
		return fmt.Errorf("loading the config file: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		h,
		versioncollector.NewCollector(exporterName),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	landing := &landingPage{metricsPath: sc.metricsPath}
	reload := func(via string) error {
		err := h.Load(hf.configFile)
		if err != nil {
			level.Error(logger).Log("msg", "reloading the config file failed; the accounts of the last good one keep running", "via", via, "err", err)
			return err
		}
		level.Info(logger).Log("msg", "reloaded the config file", "via", via)
		if err := landing.update(h.Names()); err != nil { // the old page, with the old links, stays
			level.Warn(logger).Log("msg", "cannot rebuild the landing page", "err", err)
		}
		return nil
	}
	if err := landing.update(h.Names()); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(sc.metricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: promErrorLogger{logger}}))
	mux.Handle(probePath, h)
	mux.Handle(reloadPath, reloadHandler(reload))
	if sc.metricsPath != "/" {
		mux.Handle("/", landing)
	}

	done := make(chan struct{})
	defer close(done)
	go reloadOnSignal(reload, done)
	return serve(mux, sc.toolkitFlags, logger, slogger, func() { close(serving) })
}

// reloadOnSignal reloads on every SIGHUP until done is closed.
func reloadOnSignal(reload func(string) error, done <-chan struct{}) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			_ = reload("SIGHUP") // logged by reload
		case <-done:
			return
		}
	}
}

// reloadHandler is POST /-/reload: 200 when the file loaded, else 500 with why, as
// blackbox_exporter answers. The answer names files and lines, never a secret.
func reloadHandler(reload func(string) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "this endpoint requires a POST request", http.StatusMethodNotAllowed)
			return
		}
		if err := reload(reloadPath); err != nil {
			http.Error(w, "failed to reload the config file: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "reloaded the config file")
	})
}

// landingPage is exporter-toolkit's landing page with a link to each account's probe, built
// again when a reload changes them.
type landingPage struct {
	metricsPath string
	page        atomic.Pointer[http.Handler]
}

func (l *landingPage) update(names []string) error {
	links := []web.LandingLinks{{Address: l.metricsPath, Text: "Metrics", Description: "the exporter's own, with peloton_account_up for every account"}}
	for _, name := range names {
		links = append(links, web.LandingLinks{Address: probePath + "?target=" + url.QueryEscape(name), Text: "Probe " + name})
	}
	page, err := web.NewLandingPage(web.LandingConfig{
		Name:        "Peloton Exporter",
		Description: "Prometheus exporter for the Peloton accounts of a household: one target per account",
		Version:     version.Info(),
		Links:       links,
	})
	if err != nil {
		return fmt.Errorf("building the landing page: %w", err)
	}
	var h http.Handler = page
	l.page.Store(&h)
	return nil
}

func (l *landingPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*l.page.Load()).ServeHTTP(w, r)
}

// demoHousehold gives the accounts of the config file the credentials of the simulated
// household's members: each account, by name, the next member, the first being the
// simulator's own (DemoUsername). The mapping holds across reloads.
type demoHousehold struct {
	sim    *simulator.Simulator
	logger log.Logger

	mu      sync.Mutex
	members map[string]simulator.Member
}

func (d *demoHousehold) credentials(a config.Account) (household.Credentials, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.members[a.Name]
	if !ok {
		m = simulator.DemoMember(len(d.members))
		if len(d.members) > 0 { // the first is the simulator's own member
			if err := d.sim.AddMember(m); err != nil {
				return household.Credentials{}, err
			}
		}
		d.members[a.Name] = m
		level.Info(d.logger).Log("msg", "demo mode: the account signs in as a simulated member", "account", a.Name, "member", m.Username)
	}
	return household.Credentials{Username: m.Username, Password: m.Password}, nil
}
