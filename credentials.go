package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/internal/secretfile"
)

// errNoCredentials tells a user who started the exporter bare exactly what to set.
var errNoCredentials = errors.New(`no Peloton credentials. Set one of:
  - a password login: --peloton.username (or $PELOTON_USERNAME) and $PELOTON_PASSWORD (or --peloton.password-file)
  - a browser sign-in: run "peloton_exporter login" once, then the exporter with the same --peloton.state-file
  - browser tokens: $PELOTON_REFRESH_TOKEN / $PELOTON_ACCESS_TOKEN (or --peloton.refresh-token-file / --peloton.access-token-file)
  - or try it without an account: --demo`)

// loadCredentials fills cfg's secrets from environment variables or files, never from plain
// flag values (which show in ps and shell history).
func loadCredentials(cfg *client.Config, logger log.Logger, passwordFile, accessFile, refreshFile string) error {
	var err error
	if cfg.Password, err = secret("PELOTON_PASSWORD", passwordFile, logger); err != nil {
		return err
	}
	if cfg.AccessToken, err = secret("PELOTON_ACCESS_TOKEN", accessFile, logger); err != nil {
		return err
	}
	if cfg.RefreshToken, err = secret("PELOTON_REFRESH_TOKEN", refreshFile, logger); err != nil {
		return err
	}
	switch {
	case cfg.Username != "" && cfg.Password == "":
		return errors.New("--peloton.username is set but no password: set $PELOTON_PASSWORD or --peloton.password-file")
	case cfg.Password != "" && cfg.Username == "":
		return errors.New("a password is set but no username: set --peloton.username or $PELOTON_USERNAME")
	case cfg.Password == "" && cfg.AccessToken == "" && cfg.RefreshToken == "" && !client.HasSavedTokens(cfg.StateFile):
		return errNoCredentials // tokens a browser sign-in saved are enough
	}
	return nil
}

// secret reads a value from a file when one is named, else from the environment variable.
func secret(envVar, file string, logger log.Logger) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv(envVar)), nil
	}
	v, loose, mode, err := secretfile.Read(file)
	switch {
	case errors.Is(err, secretfile.ErrEmpty):
		return "", fmt.Errorf("the secret file for %s (%s) is empty", envVar, file)
	case err != nil:
		return "", fmt.Errorf("reading the secret file for %s: %w", envVar, err)
	case loose:
		level.Warn(logger).Log("msg", "a secret file is readable by other users; chmod 600 it", "path", file, "mode", mode.String())
	}
	return v, nil
}
