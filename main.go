// Command peloton_exporter exports a Peloton account's training data as Prometheus metrics.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"
	_ "time/tzdata" // streak weeks need the member's zone even in a scratch container

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/collector"
	"github.com/peloton-exporter/peloton_exporter/history"
	"github.com/peloton-exporter/peloton_exporter/internal/respcache"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

const exporterName = "peloton_exporter"

// defaultPort sits above the 9100-9999 range that the Prometheus wiki's exporter port
// allocations have filled.
const defaultPort = "10070"

// refreshTimeout bounds one refresh from Peloton, and so the longest a scrape waits for one.
const refreshTimeout = 2 * time.Minute

func main() {
	var (
		username     = kingpin.Flag("peloton.username", "Peloton e-mail or username for password logins. The password comes from $PELOTON_PASSWORD or --peloton.password-file.").Envar("PELOTON_USERNAME").String()
		passwordFile = kingpin.Flag("peloton.password-file", "File holding the Peloton password (instead of $PELOTON_PASSWORD).").Envar("PELOTON_PASSWORD_FILE").String()
		accessFile   = kingpin.Flag("peloton.access-token-file", "File holding an access token taken from a browser session (instead of $PELOTON_ACCESS_TOKEN).").Envar("PELOTON_ACCESS_TOKEN_FILE").String()
		refreshFile  = kingpin.Flag("peloton.refresh-token-file", "File holding a refresh token taken from a browser session (instead of $PELOTON_REFRESH_TOKEN).").Envar("PELOTON_REFRESH_TOKEN_FILE").String()
		stateFile    = kingpin.Flag("peloton.state-file", "File where tokens are kept across restarts (mode 0600). Empty keeps them in memory only (always so in --demo).").Default("peloton_exporter.state.json").Envar("PELOTON_STATE_FILE").String()
		apiURL       = kingpin.Flag("peloton.api-url", "Base URL of the Peloton API.").Default(client.DefaultAPIURL).Envar("PELOTON_API_URL").String()
		authURL      = kingpin.Flag("peloton.auth-url", "Base URL of Peloton's Auth0 login.").Default(client.DefaultAuthURL).Envar("PELOTON_AUTH_URL").String()
		clientID     = kingpin.Flag("peloton.client-id", "Auth0 client id of Peloton's web app.").Default(client.DefaultClientID).String()
		audience     = kingpin.Flag("peloton.audience", "Auth0 audience of the Peloton API.").Default(client.DefaultAudience).String()
		scope        = kingpin.Flag("peloton.scope", "Auth0 scopes to request.").Default(client.DefaultScope).String()
		redirectURI  = kingpin.Flag("peloton.redirect-uri", "Auth0 redirect URI of Peloton's web app (never fetched).").Default(client.DefaultRedirectURI).String()
		auth0Client  = kingpin.Flag("peloton.auth0-client", "Auth0-Client header value (base64 JSON naming the login library).").Default(client.DefaultAuth0Client).String()
		cacheTTL     = durationFlag(kingpin.Flag("peloton.cache-ttl", "How long Peloton data is served before a scrape refreshes it.").Default("5m").Envar("PELOTON_CACHE_TTL"))
		timeout      = durationFlag(kingpin.Flag("peloton.timeout", "Timeout of each HTTP request to Peloton.").Default("10s"))
		loginEvery   = durationFlag(kingpin.Flag("peloton.login-interval", "Least time between two full password logins; failed logins back off exponentially from it.").Default("15m"))
		detail       = kingpin.Flag("peloton.workout-detail", "Fetch each workout's detail (distance, calories, heart rate, averages) once, in the background. Turned off, no such request is sent.").Default("true").Bool()
		detailEvery  = durationFlag(kingpin.Flag("peloton.detail-interval", "Least time between two requests for a workout's detail: the first fill of a long history sends one per workout.").Default("1s"))
		streakZone   = kingpin.Flag("streak.timezone", "IANA time zone of streak weeks (e.g. America/Chicago). Default: the member's, from Peloton.").Envar("PELOTON_STREAK_TIMEZONE").String()
		weekStart    = kingpin.Flag("streak.week-start", "First day of a streak week.").Default("monday").Enum("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
		configFile   = kingpin.Flag("config.file", "YAML file of a household's accounts, each served on /probe?target=NAME (see the README). Reloaded on SIGHUP and POST /-/reload. Instead of the single account of --peloton.username and the token flags.").Envar("PELOTON_CONFIG_FILE").String()
		stateDir     = kingpin.Flag("peloton.state-dir", "Directory of the accounts' state files in --config.file mode, <dir>/<name>.json (mode 0600), each with its history beside it. Default: the directory of --peloton.state-file.").Envar("PELOTON_STATE_DIR").String()
		loginSpacing = durationFlag(kingpin.Flag("peloton.login-spacing", "Least time between two password logins of any two accounts in --config.file mode, as they come from one address, which Peloton's login watches.").Default("1m"))
		demo         = kingpin.Flag("demo", "Run against a built-in simulated Peloton: no account needed. With --config.file, a simulated household.").Bool()
		demoWorkouts = kingpin.Flag("demo.workouts", "Completed workouts of the simulated member (for benchmarks).").Hidden().Default("1800").Int()
		metricsPath  = kingpin.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").String()
		logLevel     = kingpin.Flag("log.level", "Only log messages with the given severity or above. One of: [debug, info, warn, error]").Default("info").Enum("debug", "info", "warn", "error")
		logFormat    = kingpin.Flag("log.format", "Output format of log messages. One of: [logfmt, json]").Default("logfmt").Enum("logfmt", "json")
		toolkitFlags = kingpinflag.AddFlags(kingpin.CommandLine, ":"+defaultPort)
		// Serving metrics stays the default command, so every invocation without one works.
		_        = kingpin.Command("serve", "Serve metrics (the default command).").Default()
		loginCmd = kingpin.Command("login", "Sign in to Peloton with a browser and keep the tokens in the state file: "+
			"for when the password login is refused, blocked or asks for a verification step.")
		callbackURL = loginCmd.Flag("callback-url", "The address the browser landed on after signing in, to finish a sign-in "+
			"an earlier `login` started; without it, `login` starts one and reads the address from standard input.").String()
		backfillCmd = kingpin.Command("backfill", "Write the series derived from the workout history, over the whole history, "+
			"as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.")
		backfillOutput = backfillCmd.Flag("output", "File to write (- for standard output).").Required().String()
		backfillLabels = backfillCmd.Flag("label", "A target label NAME=VALUE added to every series; job and instance are required, "+
			"as Prometheus scrapes the exporter. Repeat for more.").Strings()
		backfillUntil = backfillCmd.Flag("until", "Write nothing after this time (RFC 3339) or this long ago (a duration): "+
			"the last hours are Prometheus' head block, which blocks must not overlap.").Default(backfillSafeEdge.String()).String()
		backfillSkipIf = backfillCmd.Flag("skip-if-exists", "Do nothing when this file exists: the mark a one-shot "+
			"backfill leaves once its blocks are made, so that it runs once.").String()
		backfillAccount = backfillCmd.Flag("account", "The account of --config.file whose history to write; "+
			"its name is the instance label unless --label gives one.").String()
		backfillBestEffort = backfillCmd.Flag("best-effort", "When the history cannot be read or written, log why, "+
			"remove --output and exit 0: for a one-shot backfill that must not keep the rest of a deployment from starting.").Bool()
	)
	kingpin.Version(version.Print(exporterName))
	kingpin.HelpFlag.Short('h')
	command := kingpin.Parse()

	// Every flag is checked before anything starts: a mistake is reported as a usage error,
	// before the demo's simulator, a login or any request to Peloton.
	if err := validateTelemetryPath(*metricsPath); err != nil {
		kingpin.Fatalf("--web.telemetry-path: %v", err)
	}
	if err := web.Validate(*toolkitFlags.WebConfigFile); err != nil {
		kingpin.Fatalf("--web.config.file: %v", err)
	}
	if _, _, err := history.Timezone(*streakZone, "", nil); err != nil {
		kingpin.Fatalf("--streak.timezone: %v", err)
	}
	hf := householdFlags{configFile: *configFile, stateDir: *stateDir, loginSpacing: *loginSpacing}
	if err := hf.check(*metricsPath, command == loginCmd.FullCommand(), *username, *passwordFile, *accessFile, *refreshFile); err != nil {
		kingpin.Fatalf("%v", err)
	}
	var bc backfillConfig
	if command == backfillCmd.FullCommand() {
		var err error
		if bc, err = parseBackfillFlags(*backfillOutput, *backfillLabels, *backfillUntil, *backfillAccount, hf.configFile != "", time.Now()); err != nil {
			kingpin.Fatalf("%v", err)
		}
		if *backfillSkipIf != "" {
			if _, err := os.Stat(*backfillSkipIf); err == nil {
				fmt.Fprintf(os.Stderr, "%s exists: backfilled before, nothing to do\n", *backfillSkipIf)
				return
			}
		}
	}

	logger, slogger := newLoggers(*logFormat, *logLevel)
	level.Info(logger).Log("msg", "starting "+exporterName, "version", version.Info(), "build_context", version.BuildContext())
	if *cacheTTL < time.Minute {
		level.Warn(logger).Log("msg", "a cache TTL under a minute polls Peloton often and risks rate limits or account flags", "ttl", *cacheTTL)
	}

	cfg := client.Config{
		APIURL: *apiURL, AuthURL: *authURL, ClientID: *clientID, Audience: *audience, Scope: *scope,
		RedirectURI: *redirectURI, Auth0Client: *auth0Client, Username: *username, StateFile: *stateFile,
		Timeout: *timeout, LoginInterval: *loginEvery, Logger: logger,
		UserAgent: exporterName + "/" + version.Version,
	}
	if command == loginCmd.FullCommand() {
		if *demo {
			kingpin.Fatalf("--demo has no browser sign-in: its simulated Peloton cannot be reached from a browser")
		}
		if err := runLogin(cfg, *callbackURL, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "peloton_exporter login:", err)
			os.Exit(1)
		}
		return
	}
	demoCfg := demoConfig{on: *demo, workouts: *demoWorkouts}
	sc := serveConfig{
		demo: demoCfg, metricsPath: *metricsPath, cacheTTL: *cacheTTL, streakZone: *streakZone,
		weekStart: weekday(*weekStart), toolkitFlags: toolkitFlags, detail: *detail, detailInterval: *detailEvery,
	}
	if !*demo && hf.configFile == "" {
		if err := loadCredentials(&cfg, logger, *passwordFile, *accessFile, *refreshFile); err != nil {
			kingpin.Fatalf("%v", err)
		}
	}
	if command == backfillCmd.FullCommand() {
		bc.streakZone, bc.weekStart, bc.demo, bc.bestEffort = *streakZone, weekday(*weekStart), demoCfg, *backfillBestEffort
		var err error
		if hf.configFile != "" {
			err = runHouseholdBackfill(cfg, bc, hf, logger)
		} else {
			err = runBackfill(cfg, bc, logger)
		}
		if err != nil {
			os.Exit(1) // logged, with the account
		}
		return
	}

	// runExporter and runHousehold return instead of exiting, so that their deferred closes
	// (the demo's simulator, the exporters) run on every way out; only then does the process
	// exit.
	var err error
	if hf.configFile != "" {
		err = runHousehold(cfg, sc, hf, logger, slogger)
	} else {
		err = runExporter(cfg, sc, logger, slogger)
	}
	if err != nil {
		level.Error(logger).Log("msg", "exiting", "err", err)
		os.Exit(1)
	}
	level.Info(logger).Log("msg", "stopped")
}

// serveConfig is what runExporter needs of the flags besides the client's settings.
type serveConfig struct {
	demo         demoConfig
	metricsPath  string
	cacheTTL     time.Duration
	streakZone   string
	weekStart    time.Weekday
	toolkitFlags *web.FlagConfig

	detail         bool
	detailInterval time.Duration
}

// demoConfig is --demo: a simulated Peloton in-process, and the size of its member.
type demoConfig struct {
	on       bool
	workouts int
}

// apply points cfg at the demo's simulated Peloton, which it starts, when the demo is on (the
// caller closes it); else it returns nil.
func (d demoConfig) apply(cfg *client.Config, logger log.Logger) (*simulator.Simulator, error) {
	if !d.on {
		return nil, nil
	}
	sim, err := simulator.Start(simulator.Config{Workouts: d.workouts, Imports: 6})
	if err != nil {
		return nil, fmt.Errorf("starting the demo Peloton: %w", err)
	}
	// The simulator serves Peloton's own host names over TLS on loopback; its transport
	// dials them there, so the demo runs the client with its real URLs and host rules.
	cfg.APIURL, cfg.AuthURL, cfg.Transport = sim.APIURL(), sim.AuthURL(), sim.Transport()
	cfg.Username, cfg.Password = simulator.DemoUsername, simulator.DemoPassword
	// The demo's tokens die with it, and a real account's state file is never touched.
	cfg.StateFile = ""
	level.Info(logger).Log("msg", "demo mode: using a simulated Peloton on loopback", "api", cfg.APIURL, "auth", cfg.AuthURL,
		"api_addr", sim.HostAddr(simulator.APIHost), "auth_addr", sim.HostAddr(simulator.AuthHost))
	return sim, nil
}

// runExporter starts the exporter and serves until a signal stops it, or serving fails.
func runExporter(cfg client.Config, sc serveConfig, logger log.Logger, slogger *slog.Logger) error {
	sim, err := sc.demo.apply(&cfg, logger)
	if err != nil {
		return err
	}
	if sim != nil {
		defer sim.Close()
	}
	pelo, err := client.New(cfg) // checks the settings; contacts nobody yet
	if err != nil {
		return fmt.Errorf("invalid Peloton settings: %w", err)
	}
	exporter := collector.New(pelo, collector.Options{
		TTL:            sc.cacheTTL,
		RefreshTimeout: refreshTimeout,
		History:        history.Open(history.PathBeside(cfg.StateFile), logger),
		Timezone:       sc.streakZone,
		WeekStart:      sc.weekStart,
		DetailInterval: sc.detailInterval,
		NoDetail:       !sc.detail,
		Logger:         logger,
	})
	defer exporter.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		exporter,
		versioncollector.NewCollector(exporterName),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux, err := newMux(sc.metricsPath, exporter, reg, logger)
	if err != nil {
		return err
	}

	// The warm-up refresh, so that the first scrape has data, once the server serves.
	return serve(mux, sc.toolkitFlags, logger, slogger, func() { go exporter.Refresh(context.Background()) })
}

// newMux serves the metrics at metricsPath and the landing page at /.
func newMux(metricsPath string, exporter *collector.Exporter, reg prometheus.Gatherer, logger log.Logger) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	// Peloton data changes once per refresh: encode it once, not on every scrape. The Go and
	// process metrics in the same answer are at most a second old.
	metrics := respcache.New(reg, promhttp.HandlerOpts{ErrorLog: promErrorLogger{logger}}, exporter.Generation, time.Second)
	mux.Handle(metricsPath, exporter.Handler(metrics))
	if metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "Peloton Exporter",
			Description: "Prometheus exporter for a Peloton account's training data",
			Version:     version.Info(),
			Links:       []web.LandingLinks{{Address: metricsPath, Text: "Metrics"}},
		})
		if err != nil {
			return nil, fmt.Errorf("building the landing page: %w", err)
		}
		mux.Handle("/", landing)
	}
	return mux, nil
}
