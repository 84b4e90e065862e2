package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/peloton-exporter/peloton_exporter/client"
)

// loginTimeout bounds finishing a sign-in: the code exchange, a request or two.
const loginTimeout = time.Minute

// runLogin is `peloton_exporter login`, the browser sign-in: it prints an authorize URL with
// the exporter's own PKCE pair, reads the address the browser lands on from in (or takes it
// from --callback-url, finishing a sign-in an earlier run started) and keeps the tokens in the
// state file. Nothing secret is printed: the URL carries only the challenge, state and nonce.
func runLogin(cfg client.Config, callbackURL string, in io.Reader, out io.Writer) error {
	if cfg.StateFile == "" {
		return errors.New("the sign-in keeps its tokens in the state file: set --peloton.state-file")
	}
	c, err := client.New(cfg)
	if err != nil {
		return err
	}
	if callbackURL != "" {
		return finishLogin(c, cfg.StateFile, callbackURL, out)
	}
	authorize, err := c.StartBrowserSignIn()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, `Sign in to Peloton with a browser:

  1. Open this address in any browser, on any device, and sign in as usual:

     %s

  2. The browser then lands on Peloton's members site. Copy the whole address from its
     address bar: it starts with %s?code=

  3. Paste it here and press Enter.

Address: `, authorize, cfg.RedirectURI)
	line, err := bufio.NewReader(in).ReadString('\n')
	if strings.TrimSpace(line) == "" && (err == nil || errors.Is(err, io.EOF)) {
		fmt.Fprintf(out, "\n\nNothing was pasted. Within 30 minutes, finish with:\n\n  peloton_exporter login --peloton.state-file=%s --callback-url='<the address>'\n", cfg.StateFile)
		return nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the address: %w", err)
	}
	fmt.Fprintln(out)
	return finishLogin(c, cfg.StateFile, line, out)
}

func finishLogin(c *client.Client, stateFile, callbackURL string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), loginTimeout)
	defer cancel()
	if err := c.FinishBrowserSignIn(ctx, callbackURL); err != nil {
		return err
	}
	fmt.Fprintf(out, "Signed in. The tokens are in %s: run the exporter with --peloton.state-file=%s (no password "+
		"needed); one that is running already takes them the next time it renews its token.\n", stateFile, stateFile)
	return nil
}
