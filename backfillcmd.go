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
	"github.com/peloton-exporter/peloton_exporter/config"
	"github.com/peloton-exporter/peloton_exporter/history"
	"github.com/peloton-exporter/peloton_exporter/household"
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
}

// parseBackfillFlags checks the backfill's own flags, before anything starts. An account of
// --config.file is its target's instance, as the household's scrape config labels it, unless
// --label says otherwise.
func parseBackfillFlags(output string, labels []string, until, account string, household bool, now time.Time) (backfillConfig, error) {
	bc := backfillConfig{output: output, account: account}
	switch {
	case output == "":
		return bc, errors.New("--output: name the file to write (- for standard output)")
	case household && account == "":
		return bc, errors.New("--config.file: name the account to backfill with --account")
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
	if account != "" && !slices.ContainsFunc(bc.labels, func(l collector.Label) bool { return l.Name == "instance" }) {
		bc.labels = append(bc.labels, collector.Label{Name: "instance", Value: account})
	}
	if err := backfill.CheckLabels(bc.labels); err != nil {
		return bc, fmt.Errorf("--label: %w", err)
	}
	t, err := parseUntil(until, now)
	if err != nil {
		return bc, fmt.Errorf("--until: %w", err)
	}
	bc.until = t
	return bc, nil
}

// forAccount makes the backfill that of an account of --config.file: its state and history
// files in the state directory, its credentials (used only when its history is not on disk
// yet) and its streak settings, as the household serves it.
func (bc *backfillConfig) forAccount(cfg *client.Config, hf householdFlags, logger log.Logger) error {
	if bc.demo.on {
		return errors.New("--demo with --config.file: backfill the simulated member with --demo alone")
	}
	c, err := config.Load(hf.configFile, os.LookupEnv)
	if err != nil {
		return fmt.Errorf("--config.file: %w", err)
	}
	i := slices.IndexFunc(c.Accounts, func(a config.Account) bool { return a.Name == bc.account })
	if i < 0 {
		names := make([]string, len(c.Accounts))
		for j, a := range c.Accounts {
			names[j] = a.Name
		}
		return fmt.Errorf("--account %q: %s has no such account (it has %s)", bc.account, hf.configFile, strings.Join(names, ", "))
	}
	a := c.Accounts[i]
	creds, err := household.ReadCredentials(a, os.LookupEnv, logger)
	if err != nil {
		return fmt.Errorf("account %s: %w", a.Name, err)
	}
	*cfg = household.ClientConfig(*cfg, a.Name, creds, resolveStateDir(hf.stateDir, cfg.StateFile))
	if a.Timezone != "" {
		bc.streakZone = a.Timezone
	}
	if a.WeekStartSet {
		bc.weekStart = a.WeekStart
	}
	return nil
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
	ctx, cancel := context.WithTimeout(context.Background(), backfillTimeout)
	defer cancel()
	closeDemo, err := bc.demo.apply(&cfg, logger) // the demo's history is in memory only
	if err != nil {
		return err
	}
	defer closeDemo()
	store := history.Open(history.PathBeside(cfg.StateFile), logger)
	if len(store.Workouts()) == 0 {
		if err := syncForBackfill(ctx, cfg, store, bc.demo.on, logger); err != nil {
			return err
		}
	}
	workouts := store.Workouts()
	profile := store.Profile()
	loc, from, err := history.Timezone(bc.streakZone, profile.Timezone, workouts)
	if err != nil && loc == nil {
		return fmt.Errorf("--streak.timezone: %w", err)
	}
	level.Info(logger).Log("msg", "streak weeks follow this time zone", "zone", loc.String(), "from", from)
	series := collector.NewHistorySeries(profile.Names, loc, bc.weekStart)

	w, commit, err := openOutput(bc.output)
	if err != nil {
		return err
	}
	began := time.Now()
	st, err := backfill.Write(w, workouts, series, backfill.Options{Labels: bc.labels, Until: bc.until})
	took := time.Since(began)
	if err = commit(err); err != nil {
		return fmt.Errorf("writing %s: %w", bc.output, err)
	}
	level.Info(logger).Log("msg", "backfill written", "output", bc.output, "workouts", len(workouts),
		"series", st.Series, "samples", st.Samples, "bytes", st.Bytes, "took", took.Round(time.Millisecond),
		"from", st.From.UTC().Format(time.RFC3339), "to", st.To.UTC().Format(time.RFC3339))
	if pending := store.PendingDetails(); pending > 0 {
		level.Warn(logger).Log("msg", "some workouts have no detail yet: their distance, calories and heart rate are not in the backfill; run the exporter until peloton_workout_detail_pending is 0, then backfill again", "pending", pending)
	}
	return nil
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

// giveUpBackfill is --best-effort's way out of a failed backfill: the output of an earlier
// run is removed, so that promtool, which runs next, finds nothing rather than turning stale
// data into blocks again, and the mark of a finished backfill is not left for this run.
func giveUpBackfill(output string, logger log.Logger) {
	if output != "-" {
		if err := os.Remove(output); err != nil && !errors.Is(err, os.ErrNotExist) {
			level.Error(logger).Log("msg", "cannot remove the output of an earlier backfill", "err", err)
			os.Exit(1) // promtool would read it: better to stop the deployment than to write it twice
		}
	}
	level.Warn(logger).Log("msg", "--best-effort: no backfill this time, the next run tries again", "output", output)
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
