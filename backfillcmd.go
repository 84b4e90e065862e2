package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/peloton-exporter/peloton_exporter/backfill"
	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/collector"
	"github.com/peloton-exporter/peloton_exporter/history"
)

// backfillSafeEdge is the default --until: Prometheus' head block spans the last hours, which
// blocks made by promtool must not overlap (Prometheus docs, "Backfilling from OpenMetrics").
const backfillSafeEdge = 3 * time.Hour

// backfillTimeout bounds the sync of a history that is not on disk yet (a demo also fills in
// each workout's detail from its simulator).
const backfillTimeout = 10 * time.Minute

// backfillConfig is what `peloton_exporter backfill` needs besides the client's settings.
type backfillConfig struct {
	output     string
	labels     []collector.Label
	until      time.Time
	streakZone string
	weekStart  time.Weekday
	demo       demoConfig
	account    string // --account: one of --config.file's
	bestEffort bool   // --best-effort
}

// parseBackfillFlags checks the backfill's own flags, before anything starts. With
// --config.file each account's name is its instance, as the household's scrape config labels
// its targets: bc.labels then hold the others, and --output is a directory for every account's
// file, unless --account names one (whose instance --label may still give).
func parseBackfillFlags(output string, labels []string, until, account string, household bool, now time.Time) (backfillConfig, error) {
	bc := backfillConfig{output: output, account: account}
	switch {
	case output == "":
		return bc, errors.New("--output: name the file to write (- for standard output)")
	case !household && account != "":
		return bc, errors.New("--account names an account of --config.file, which is not given")
	}
	for _, l := range labels {
		name, value, ok := strings.Cut(l, "=")
		if !ok {
			return bc, fmt.Errorf("--label %q: want NAME=VALUE", l)
		}
		bc.labels = append(bc.labels, collector.Label{Name: name, Value: value})
	}
	check := bc.labels
	if household {
		if hasLabel(bc.labels, "instance") && account == "" {
			return bc, errors.New("--label instance: with every account of --config.file, each account's name is its instance")
		}
		if fi, err := os.Stat(output); account == "" && (err != nil || !fi.IsDir()) {
			return bc, fmt.Errorf("--output %s: with every account of --config.file, name a directory: each account's file is <dir>/<name>.om", output)
		}
		check = withInstance(bc.labels, "an-account")
	}
	if err := backfill.CheckLabels(check); err != nil {
		return bc, fmt.Errorf("--label: %w", err)
	}
	t, err := parseUntil(until, now)
	if err != nil {
		return bc, fmt.Errorf("--until: %w", err)
	}
	bc.until = t
	return bc, nil
}

func hasLabel(labels []collector.Label, name string) bool {
	return slices.ContainsFunc(labels, func(l collector.Label) bool { return l.Name == name })
}

// withInstance is labels with instance=name, unless they give an instance.
func withInstance(labels []collector.Label, name string) []collector.Label {
	if hasLabel(labels, "instance") {
		return labels
	}
	return append(slices.Clip(labels), collector.Label{Name: "instance", Value: name})
}

// parseUntil reads --until: a time (RFC 3339) or how long ago ("3h").
func parseUntil(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration is how long ago, and cannot be negative", v)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a time such as 2026-11-30T00:00:00Z nor a duration such as 3h (that long ago)", v)
	}
	if t.After(now) {
		return time.Time{}, fmt.Errorf("%q is in the future", v)
	}
	return t, nil
}

// runBackfill is `peloton_exporter backfill`: it writes the series derived from the kept
// workout history, over the whole history, as OpenMetrics text for promtool. It reads the
// history file beside the state file; only when there is none does it sync the workout list,
// and it sends no other request to Peloton.
func runBackfill(cfg client.Config, bc backfillConfig, logger log.Logger) error {
	sim, err := bc.demo.apply(&cfg, logger) // the demo's history is in memory only
	if err != nil {
		level.Error(logger).Log("msg", "backfill failed", "err", err)
		return err
	}
	if sim != nil {
		defer sim.Close()
	}
	return writeBackfills(bc, []backfillTarget{{cfg: cfg, labels: bc.labels, output: bc.output, zone: bc.streakZone, start: bc.weekStart}}, logger)
}

// backfillTarget is one account's history to write.
type backfillTarget struct {
	name string        // the account's, for messages; "" for the single account
	cfg  client.Config // its client; its history is beside cfg.StateFile
	// connect, when set, completes cfg before a sync (a household account's credentials are
	// read only when its history has to be downloaded); the sync calls done when it ends.
	connect func(*client.Config) (done func(), err error)
	labels  []collector.Label
	output  string
	zone    string // --streak.timezone or the account's own
	start   time.Weekday
}

// writeBackfills writes each target's file. A failure stops there; with --best-effort it
// removes every file of this run (promtool, which runs next, must find nothing rather than
// part of a household, or an earlier run's data) and notes when it happened, so that the
// backfill that succeeds later writes nothing after it: the exporter started serving then,
// and Prometheus has scraped since (peloton-api.md §6: blocks must not overlap live data).
func writeBackfills(bc backfillConfig, targets []backfillTarget, logger log.Logger) error {
	failure := failureFile(bc.output)
	until := bc.until
	if t, ok := readFailure(failure); ok && t.Before(until) {
		level.Info(logger).Log("msg", "an earlier backfill failed at this time, before the exporter served: nothing after it is written, as Prometheus may have scraped it since", "at", t.UTC().Format(time.RFC3339))
		until = t
	}
	for _, tg := range targets {
		l := logger
		if tg.name != "" {
			l = log.With(logger, "account", tg.name)
		}
		if err := backfillOne(tg, until, bc.demo.on, l); err != nil {
			level.Error(l).Log("msg", "backfill failed", "err", err)
			if !bc.bestEffort {
				return err
			}
			for _, other := range targets {
				giveUpBackfill(other.output, logger)
			}
			noteFailure(failure, logger)
			level.Warn(logger).Log("msg", "--best-effort: no backfill this time, the next run tries again", "output", bc.output)
			return nil
		}
	}
	if failure != "" {
		_ = os.Remove(failure) // done: a next backfill is the user's, with its own --until
	}
	return nil
}

// backfillOne writes one target's history up to until.
func backfillOne(tg backfillTarget, until time.Time, demo bool, logger log.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), backfillTimeout)
	defer cancel()
	store := history.Open(history.PathBeside(tg.cfg.StateFile), logger)
	if len(store.Workouts()) == 0 {
		if tg.connect != nil {
			done, err := tg.connect(&tg.cfg)
			if err != nil {
				return err
			}
			defer done()
		}
		if err := syncForBackfill(ctx, tg.cfg, store, demo, logger); err != nil {
			return err
		}
	}
	workouts := store.Workouts()
	profile := store.Profile()
	loc, from, err := history.Timezone(tg.zone, profile.Timezone, workouts)
	if err != nil && loc == nil {
		return fmt.Errorf("the streak's time zone: %w", err)
	}
	level.Info(logger).Log("msg", "streak weeks follow this time zone", "zone", loc.String(), "from", from)
	series := collector.NewHistorySeries(profile.Names, loc, tg.start)

	w, commit, err := openOutput(tg.output)
	if err != nil {
		return err
	}
	began := time.Now()
	st, err := backfill.Write(w, workouts, series, backfill.Options{Labels: tg.labels, Until: until})
	took := time.Since(began)
	if err = commit(err); err != nil {
		return fmt.Errorf("writing %s: %w", tg.output, err)
	}
	level.Info(logger).Log("msg", "backfill written", "output", tg.output, "workouts", len(workouts),
		"series", st.Series, "samples", st.Samples, "bytes", st.Bytes, "took", took.Round(time.Millisecond),
		"from", st.From.UTC().Format(time.RFC3339), "to", st.To.UTC().Format(time.RFC3339))
	if pending := store.PendingDetails(); pending > 0 {
		level.Warn(logger).Log("msg", "some workouts have no detail yet: their distance, calories and heart rate are not in the backfill; run the exporter until peloton_workout_detail_pending is 0, then backfill again", "pending", pending)
	}
	return nil
}

// failureFile is where --best-effort notes its first failed run: beside --output (in it, for
// a household's directory). Standard output has none.
func failureFile(output string) string {
	if output == "-" {
		return ""
	}
	dir := filepath.Dir(output)
	if fi, err := os.Stat(output); err == nil && fi.IsDir() {
		dir = output
	}
	return filepath.Join(dir, ".peloton-backfill-first-failure")
}

func readFailure(path string) (time.Time, bool) {
	if path == "" {
		return time.Time{}, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
	return t, err == nil
}

// noteFailure records the time of the first failed run; a later failure keeps it.
func noteFailure(path string, logger log.Logger) {
	if path == "" {
		return
	}
	if _, ok := readFailure(path); ok {
		return
	}
	if err := os.WriteFile(path, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		level.Warn(logger).Log("msg", "cannot note the failed backfill's time; the next one may overlap what Prometheus scrapes meanwhile", "path", path, "err", err)
	}
}

// syncForBackfill downloads the workout list into store. The demo also fills each workout's
// detail from its simulator, as the exporter would over half an hour.
func syncForBackfill(ctx context.Context, cfg client.Config, store *history.Store, demo bool, logger log.Logger) error {
	pelo, err := client.New(cfg)
	if err != nil {
		return fmt.Errorf("invalid Peloton settings: %w", err)
	}
	me, err := pelo.Me(ctx) // the profile's time zone too, which the streak's weeks follow
	if err != nil {
		return fmt.Errorf("no workout history on disk, and Peloton cannot be read: %w", err)
	}
	level.Info(logger).Log("msg", "no workout history on disk: downloading it")
	if _, err := store.Sync(ctx, string(me.ID), time.Now(), pelo.Workouts); err != nil {
		return fmt.Errorf("downloading the workout history: %w", err)
	}
	store.SetProfile(history.Profile{Timezone: string(me.Timezone)})
	if !demo {
		return nil
	}
	filled := make(chan struct{}, 1)
	f := history.StartFiller(store, pelo, history.FillerOptions{Interval: time.Millisecond, Changed: func() {
		select {
		case filled <- struct{}{}:
		default:
		}
	}})
	defer f.Close()
	f.Kick()
	for store.PendingDetails() > 0 {
		select {
		case <-filled:
		case <-ctx.Done():
			return fmt.Errorf("filling the demo's workout detail: %w", ctx.Err())
		}
	}
	return nil
}

// giveUpBackfill removes the output of a failed run, or of an earlier one: promtool, which
// runs next, must not turn stale data into blocks again.
func giveUpBackfill(output string, logger log.Logger) {
	if output == "-" {
		return
	}
	if err := os.Remove(output); err != nil && !errors.Is(err, os.ErrNotExist) {
		level.Error(logger).Log("msg", "cannot remove the output of an earlier backfill", "err", err)
		os.Exit(1) // promtool would read it: better to stop the deployment than to write it twice
	}
}

// openOutput opens the backfill's output: standard output for "-", else a file written
// beside its final name and renamed onto it once complete, so that promtool never reads half
// a file. The file holds training data, no secret, and is readable by promtool's user.
// commit ends the writing: given the writing's error it discards the file, else it puts it in
// place.
func openOutput(path string) (w io.Writer, commit func(error) error, err error) {
	if path == "-" {
		return os.Stdout, func(err error) error { return err }, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, nil, fmt.Errorf("--output: %w", err)
	}
	commit = func(err error) error {
		defer os.Remove(f.Name()) // a no-op once renamed
		if err == nil {
			err = f.Chmod(0o644)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return os.Rename(f.Name(), path)
	}
	return f, commit, nil
}
