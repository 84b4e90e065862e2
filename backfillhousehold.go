package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/config"
	"github.com/peloton-exporter/peloton_exporter/household"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

// runHouseholdBackfill is `peloton_exporter backfill --config.file`: the history of --account,
// or of every account, each to its own file (<--output>/<name>.om), from where the household
// keeps it. An account whose history is not on disk yet is downloaded with its credentials,
// read only then, and the downloads keep --peloton.login-spacing between them, as the
// household's logins do. With --demo the accounts are the simulated household's members, as
// the household's demo makes them.
func runHouseholdBackfill(shared client.Config, bc backfillConfig, hf householdFlags, logger log.Logger) error {
	fail := func(err error) error {
		level.Error(logger).Log("msg", "backfill failed", "err", err)
		return err
	}
	c, err := config.Load(hf.configFile, os.LookupEnv)
	if err != nil {
		return fail(fmt.Errorf("--config.file: %w", err))
	}
	accounts := c.Accounts
	if bc.account != "" {
		i := slices.IndexFunc(accounts, func(a config.Account) bool { return a.Name == bc.account })
		if i < 0 {
			return fail(fmt.Errorf("--account %q: %s has no such account (it has %s)", bc.account, hf.configFile, strings.Join(accountNames(accounts), ", ")))
		}
		accounts = accounts[i : i+1]
	}

	stateDir, spacing := resolveStateDir(hf.stateDir, shared.StateFile), hf.loginSpacing
	credentials := func(a config.Account) (household.Credentials, error) {
		return household.ReadCredentials(a, os.LookupEnv, logger)
	}
	if bc.demo.on {
		sim, err := bc.demo.apply(&shared, logger)
		if err != nil {
			return fail(err)
		}
		defer sim.Close()
		stateDir, spacing = "", 0 // the demo's histories are in memory, its logins simulated
		credentials = (&demoHousehold{sim: sim, logger: logger, members: map[string]simulator.Member{}}).credentials
	}

	var lastDownload time.Time // the end of the last download, which may have logged in
	targets := make([]backfillTarget, len(accounts))
	for i, a := range accounts {
		zone, start := a.Streak(bc.streakZone, bc.weekStart)
		output := bc.output
		if bc.account == "" {
			output = filepath.Join(bc.output, a.Name+".om")
		}
		targets[i] = backfillTarget{
			name: a.Name, cfg: household.ClientConfig(shared, a.Name, household.Credentials{}, stateDir),
			labels: withInstance(bc.labels, a.Name), output: output, zone: zone, start: start,
			connect: func(cfg *client.Config) (func(), error) {
				creds, err := credentials(a)
				if err != nil {
					return nil, err
				}
				if wait := time.Until(lastDownload.Add(spacing)); wait > 0 {
					level.Info(logger).Log("msg", "waiting for the login spacing before downloading the next account's history", "account", a.Name, "wait", wait.Round(time.Second))
					time.Sleep(wait)
				}
				*cfg = household.ClientConfig(shared, a.Name, creds, stateDir)
				return func() { lastDownload = time.Now() }, nil
			},
		}
	}
	return writeBackfills(bc, targets, logger)
}

func accountNames(accounts []config.Account) []string {
	names := make([]string, len(accounts))
	for i, a := range accounts {
		names[i] = a.Name
	}
	return names
}
