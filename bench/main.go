// Command bench measures the load the exporter takes and what it costs (issue 6): warm-cache
// scrape throughput and latency against a ceiling (the same response replayed by a plain
// net/http server), requests to Peloton against what the cache TTL implies, and resident
// memory. It builds the exporter, runs it in --demo mode as a child process on 127.0.0.1 and
// scrapes it the way Prometheus does.
//
//	go run ./bench            # full run, a few minutes
//	go run ./bench --quick    # smoke run, under a minute
//
// It is a measurement, not a test: it prints PASS/FAIL per target and exits 0 unless the
// bench itself broke (exit 2), or, with --strict, a target was missed (exit 1).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	scrapes   int
	levels    []int
	repo      string
	quick     bool
	jsonOut   bool
	strict    bool
	ttlPhase  time.Duration // wall time of the short-TTL upstream phase
	memPhase  time.Duration // wall time of the many-refreshes memory phase
	memSample time.Duration // RSS sampling period in it
	memRate   float64       // scrapes per second in it
	// householdOnly runs the household phase H alone; householdNoDetail runs it without the
	// detail filler.
	householdOnly, householdNoDetail bool
}

func main() {
	var (
		cfg    config
		levels string
		serve  string
	)
	flag.IntVar(&cfg.scrapes, "scrapes", 10000, "measured scrapes per concurrency level (default 10000; 500 with --quick)")
	flag.StringVar(&levels, "levels", "1,10,100", "concurrency levels of the warm-cache load")
	flag.StringVar(&cfg.repo, "repo", "", "module root of the exporter (default: walk up from the working directory to its go.mod)")
	flag.BoolVar(&cfg.quick, "quick", false, "smoke run: 500 scrapes per level, 10 s timed phases")
	flag.BoolVar(&cfg.jsonOut, "json", false, "print the results as JSON on stdout (the table goes to stderr)")
	flag.BoolVar(&cfg.strict, "strict", false, "exit 1 when a target is missed")
	flag.DurationVar(&cfg.ttlPhase, "ttl-phase", 20*time.Second, "duration of the --peloton.cache-ttl=2s phase")
	flag.DurationVar(&cfg.memPhase, "mem-phase", 60*time.Second, "duration of the --peloton.cache-ttl=1s memory phase")
	flag.BoolVar(&cfg.householdOnly, "household-only", false, "run only phase H, the household of 20 accounts")
	flag.BoolVar(&cfg.householdNoDetail, "household-no-detail", false, "phase H without the detail filler (on by default, as in the exporter: every workout's detail fetched at a 1ms pace before the measurements)")
	flag.StringVar(&serve, "serve-ceiling", "", "internal: serve the captured response in `file` on the listener at fd 3")
	flag.Parse()

	if serve != "" {
		if err := serveCeiling(serve); err != nil {
			fmt.Fprintln(os.Stderr, "serve-ceiling:", err)
			os.Exit(1)
		}
		return
	}

	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if cfg.quick {
		if !set["scrapes"] {
			cfg.scrapes = 500
		}
		if !set["ttl-phase"] {
			cfg.ttlPhase = 10 * time.Second
		}
		if !set["mem-phase"] {
			cfg.memPhase = 10 * time.Second
		}
	}
	cfg.memSample = 10 * time.Second
	if cfg.memPhase < time.Minute {
		cfg.memSample = max(cfg.memPhase/5, time.Second)
	}
	cfg.memRate = 20
	for _, s := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1000 {
			fmt.Fprintf(os.Stderr, "--levels: bad concurrency %q (1..1000)\n", s)
			os.Exit(2)
		}
		cfg.levels = append(cfg.levels, n)
	}
	if cfg.scrapes < 1 || cfg.ttlPhase < 2*time.Second || cfg.memPhase < time.Second {
		fmt.Fprintln(os.Stderr, "--scrapes must be at least 1, --ttl-phase at least 2s, --mem-phase at least 1s")
		os.Exit(2)
	}
	os.Exit(run(cfg))
}

var started = time.Now()

// logf reports progress on stderr, so that stdout holds only the results.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%5.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

func run(cfg config) (code int) {
	defer killAll()
	defer func() {
		if r := recover(); r != nil {
			killAll()
			panic(r)
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	goSafe(func() {
		s := <-sig
		logf("%s: stopping", s)
		cancel() // loops end at their next check; run returns and kills the children
		select { // unless it is stuck, or a second signal comes
		case <-sig:
		case <-time.After(15 * time.Second):
		}
		killAll()
		os.Exit(130)
	})

	res, err := measure(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			logf("interrupted: %v", err)
			return 130
		}
		logf("bench broke: %v", err)
		return 2
	}
	res.evaluate()
	out := os.Stdout
	if cfg.jsonOut {
		out = os.Stderr
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			logf("writing JSON: %v", err)
			return 2
		}
	}
	res.print(out)
	if cfg.strict && res.failed() > 0 {
		return 1
	}
	return 0
}

// exporter is one running exporter child and its metrics URL.
type exporter struct {
	*child
	url string
}

func startExporter(ctx context.Context, dir, bin, name string, extra ...string) (*exporter, exporterState, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, exporterState{}, err
	}
	args := append([]string{"--demo", "--web.listen-address=" + addr, "--log.level=warn"}, extra...)
	ch, err := startChild("exporter "+name, bin, args, filepath.Join(dir, "exporter-"+name+".log"), nil)
	if err != nil {
		return nil, exporterState{}, err
	}
	e := &exporter{child: ch, url: "http://" + addr + "/metrics"}
	st, err := waitUp(ctx, e.url, ch, 60*time.Second)
	if err != nil {
		return nil, exporterState{}, err
	}
	flags := strings.Join(extra, " ")
	if flags == "" {
		flags = "default TTL"
	}
	logf("exporter %s up on %s (pid %d, %s)", name, addr, ch.pid(), flags)
	return e, st, nil
}

// warmupScrapes is the unmeasured run before each measured one: enough to open every
// keep-alive connection and let both servers reach a steady state.
func warmupScrapes(conc, n int) int { return max(2*conc, min(n/10, 1000)) }

func measure(ctx context.Context, cfg config) (*results, error) {
	root := cfg.repo
	if root != "" {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
			return nil, fmt.Errorf("--repo: %w", err)
		}
	} else {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if root, err = findRepo(wd); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp("", "peloton-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	defer killAll() // before the directory goes: the children write their logs there

	res := &results{
		Started: time.Now().UTC(), GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH,
		CPUs: runtime.NumCPU(), Repo: root, Revision: gitRevision(ctx, root), Scrapes: cfg.scrapes,
		Accept: promAccept, UserAgent: promUserAgent,
	}
	bin := filepath.Join(tmp, "peloton_exporter")
	logf("building the exporter in %s", root)
	if err := buildExporter(ctx, root, bin); err != nil {
		return nil, err
	}
	if cfg.householdOnly {
		res.HouseholdOnly = true
		if res.Household, err = measureHousehold(ctx, cfg, tmp, bin); err != nil {
			return nil, err
		}
		return res, nil
	}

	// --- Exporter A: default TTL (5m). Warm-cache load against the ceiling. ---
	exA, upA, err := startExporter(ctx, tmp, bin, "A")
	if err != nil {
		return nil, err
	}
	res.Startup = startupRequests(upA)
	res.Memory.AfterStart = rssOf(exA.child)
	if _, err := drive(ctx, exA.url, driveOpts{conc: 1, scrapes: warmupScrapes(1, cfg.scrapes)}, 0); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	res.Memory.AfterWarmup = rssOf(exA.child)

	capA, err := capture(ctx, exA.url)
	if err != nil {
		return nil, err
	}
	res.Response = capA.summary()
	ceiling, ceilURL, err := startCeiling(tmp, capA)
	if err != nil {
		return nil, err
	}
	capC, err := capture(ctx, ceilURL)
	if err != nil {
		return nil, fmt.Errorf("ceiling: %w\n%s", err, ceiling.logTail(10))
	}
	if err := sameResponse(capA, capC); err != nil {
		return nil, fmt.Errorf("the ceiling does not replay the exporter's response: %w", err)
	}
	logf("ceiling up on %s (pid %d), replaying %d bytes", strings.TrimSuffix(strings.TrimPrefix(ceilURL, "http://"), "/metrics"), ceiling.pid(), len(capA.Body))

	before, err := readExporter(ctx, exA.url)
	if err != nil {
		return nil, err
	}
	scrapesA := 0
	for _, conc := range cfg.levels {
		// Exporter and ceiling alternate per level, so that drift in the machine's load
		// (other processes, thermal) hits both sides of a ratio alike.
		var lv level
		lv.Concurrency = conc
		for _, side := range []struct {
			name string
			url  string
			pid  int
			out  *loadStats
		}{{"exporter", exA.url, exA.pid(), &lv.Exporter}, {"ceiling", ceilURL, ceiling.pid(), &lv.Ceiling}} {
			w := warmupScrapes(conc, cfg.scrapes)
			if _, err := drive(ctx, side.url, driveOpts{conc: conc, scrapes: w}, 0); err != nil {
				return nil, fmt.Errorf("%s warm-up at concurrency %d: %w", side.name, conc, err)
			}
			st, err := drive(ctx, side.url, driveOpts{conc: conc, scrapes: cfg.scrapes}, side.pid)
			if err != nil {
				return nil, fmt.Errorf("%s at concurrency %d: %w", side.name, conc, err)
			}
			*side.out = st
			if side.name == "exporter" {
				scrapesA += w + st.Scrapes + st.Errors
			}
			logf("%-8s c=%-3d %8.0f scrapes/s  p50 %s  p99 %s  errors %d", side.name, conc, st.PerSec, ms(st.P50), ms(st.P99), st.Errors)
		}
		res.Levels = append(res.Levels, lv)
	}
	after, err := readExporter(ctx, exA.url)
	if err != nil {
		return nil, err
	}
	res.Upstream = append(res.Upstream, checkUpstream(
		"A: warm-cache load, default TTL 5m", 5*time.Minute, before, after, scrapesA+1, true))
	res.Memory.AfterLoad = rssOf(exA.child)
	res.Memory.Ceiling = rssOf(ceiling)
	exA.stop()
	ceiling.stop()

	// --- Exporter B: TTL 2s, continuous scraping at concurrency 10 for a fixed time. ---
	const ttlB = 2 * time.Second
	exB, upB, err := startExporter(ctx, tmp, bin, "B", "--peloton.cache-ttl="+ttlB.String())
	if err != nil {
		return nil, err
	}
	if before, err = readExporter(ctx, exB.url); err != nil {
		return nil, err
	}
	logf("exporter B: %s of scraping at concurrency 10", cfg.ttlPhase)
	stB, err := drive(ctx, exB.url, driveOpts{conc: 10, dur: cfg.ttlPhase}, 0)
	if err != nil {
		return nil, err
	}
	if after, err = readExporter(ctx, exB.url); err != nil {
		return nil, err
	}
	chk := checkUpstream(fmt.Sprintf("B: TTL %s, %s at concurrency 10", ttlB, cfg.ttlPhase), ttlB, before, after, stB.Scrapes+stB.Errors+1, true)
	chk.Startup = startupRequests(upB)
	res.Upstream = append(res.Upstream, chk)
	res.Phases = append(res.Phases, phase{"B", stB})
	res.Memory.ShortTTL2s = rssOf(exB.child)
	exB.stop()

	// --- Exporter C: TTL 1s, a modest steady rate, RSS sampled across many refreshes. ---
	const ttlC = time.Second
	exC, _, err := startExporter(ctx, tmp, bin, "C", "--peloton.cache-ttl="+ttlC.String())
	if err != nil {
		return nil, err
	}
	if _, err := drive(ctx, exC.url, driveOpts{conc: 1, scrapes: 100}, 0); err != nil {
		return nil, fmt.Errorf("warm-up of C: %w", err)
	}
	if before, err = readExporter(ctx, exC.url); err != nil {
		return nil, err
	}
	logf("exporter C: %s at %.0f scrapes/s, RSS every %s", cfg.memPhase, cfg.memRate, cfg.memSample)
	stC, samples, err := driveSampling(ctx, exC, driveOpts{conc: 1, dur: cfg.memPhase, interval: time.Duration(float64(time.Second) / cfg.memRate)}, cfg.memSample)
	if err != nil {
		return nil, err
	}
	if after, err = readExporter(ctx, exC.url); err != nil {
		return nil, err
	}
	chk = checkUpstream(fmt.Sprintf("C: TTL %s, %s at %.0f scrapes/s", ttlC, cfg.memPhase, cfg.memRate), ttlC, before, after, stC.Scrapes+stC.Errors+1, true)
	res.Upstream = append(res.Upstream, chk)
	res.Phases = append(res.Phases, phase{"C", stC})
	res.Memory.TTL = ttlC
	res.Memory.Samples = samples
	res.Memory.Refreshes = chk.ByEndpoint[refreshEndpoints[0]]
	exC.stop()

	// --- Exporter D: the first fill of the workout detail of 2,000 workouts. ---
	logf("exporter D: the first fill of %d workouts' detail", fillWorkouts)
	if res.Fill, err = measureFill(ctx, tmp, bin); err != nil {
		return nil, err
	}

	// --- The backfill of members of 500, 2,000 and 10,000 workouts. ---
	if res.Backfill, err = measureBackfill(ctx, tmp, bin); err != nil {
		return nil, err
	}

	// --- H: a household of twenty accounts in one exporter. ---
	if res.Household, err = measureHousehold(ctx, cfg, tmp, bin); err != nil {
		return nil, err
	}
	return res, nil
}

// driveSampling runs a timed load on e and samples its RSS at 0, every, 2*every … to the end.
func driveSampling(ctx context.Context, e *exporter, o driveOpts, every time.Duration) (loadStats, []rssSample, error) {
	type out struct {
		st  loadStats
		err error
	}
	done := make(chan out, 1)
	start := time.Now()
	goSafe(func() {
		st, err := drive(ctx, e.url, o, 0)
		done <- out{st, err}
	})
	samples := []rssSample{{0, rssOf(e.child)}}
	for i := 1; i <= int(o.dur/every); i++ {
		select {
		case <-time.After(time.Until(start.Add(time.Duration(i) * every))):
		case <-ctx.Done():
			r := <-done
			return r.st, samples, errors.Join(ctx.Err(), r.err)
		}
		samples = append(samples, rssSample{time.Since(start).Round(100 * time.Millisecond), rssOf(e.child)})
	}
	r := <-done
	return r.st, samples, r.err
}

func rssOf(c *child) int64 {
	v, err := rss(c.pid())
	if err != nil {
		return 0 // reported as n/a: no /proc here
	}
	return v
}

// gitRevision names the measured source, for comparing runs; "" outside a git checkout.
func gitRevision(ctx context.Context, root string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
