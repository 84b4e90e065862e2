package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/exporter-toolkit/web"
)

// timeouts bound what a connection may hold of the server.
type timeouts struct {
	readHeader time.Duration // a client that is slow to send its request
	idle       time.Duration // a keep-alive connection between requests
	write      time.Duration // from the end of the request header to the end of the answer
}

// writeSlack is what the write deadline leaves, beyond the longest wait for a refresh, to
// gather, encode and send the answer to a slow link.
const writeSlack = 30 * time.Second

// serverTimeouts derives the server's timeouts from the longest legitimate scrape: one that
// waits for a refresh until it gives up (refresh), then receives the answer. Prometheus caps a
// scrape timeout at its scrape interval, and the exporter at the refresh timeout, whatever
// X-Prometheus-Scrape-Timeout-Seconds says. A keep-alive connection may idle for two
// minutes: longer than the usual 1m scrape interval, so that Prometheus keeps reusing it.
func serverTimeouts(refresh time.Duration) timeouts {
	return timeouts{readHeader: 10 * time.Second, idle: 2 * time.Minute, write: refresh + writeSlack}
}

// newServer is the HTTP server of the exporter: bounded connections, and its own complaints
// (TLS handshakes, accept errors such as too many open files) in the project's log format.
func newServer(h http.Handler, logger log.Logger, t timeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		IdleTimeout:       t.idle,
		WriteTimeout:      t.write,
		ErrorLog:          serverErrorLog(logger),
	}
}

// validateTelemetryPath accepts a literal absolute URL path: http.ServeMux would panic on an
// empty or malformed pattern, and treat "metrics" as a host name or {x} as a wildcard.
func validateTelemetryPath(p string) (err error) {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is not an absolute path such as /metrics", p)
	case strings.ContainsAny(p, "{}?# \t\r\n\\"):
		return fmt.Errorf("%q: a path may not contain braces, '?', '#', '\\' or spaces", p)
	}
	defer func() { // whatever else ServeMux refuses, as an error rather than a panic later
		if r := recover(); r != nil {
			err = errors.New(fmt.Sprint(r))
		}
	}()
	http.NewServeMux().Handle(p, http.NotFoundHandler())
	return nil
}

// serve serves h until SIGTERM or SIGINT (the scrapes in flight finish first) or until
// serving fails. serving is called once, when the server begins to serve: an address that
// cannot be served (taken, mistyped, no systemd socket) or a TLS set-up that fails ends the
// exporter before serving contacts Peloton, so that a crash loop on it does not log in on
// every restart. http.Server calls BaseContext when a listener is about to accept, and
// web.ListenAndServe binds every address, and checks TLS, before that.
func serve(h http.Handler, toolkitFlags *web.FlagConfig, logger log.Logger, slogger *slog.Logger, serving func()) error {
	server := newServer(h, logger, serverTimeouts(refreshTimeout))
	var once sync.Once
	server.BaseContext = func(net.Listener) context.Context {
		once.Do(serving)
		return context.Background()
	}
	stopped, done := make(chan struct{}), make(chan struct{})
	defer close(done)
	go shutdownOnSignal(server, logger, done, stopped)
	if err := web.ListenAndServe(server, toolkitFlags, slogger); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", err)
	}
	<-stopped // Serve returns as soon as shutdown begins; the scrapes in flight finish first
	return nil
}

// shutdownOnSignal finishes in-flight scrapes on SIGTERM or SIGINT, then closes stopped. It
// gives up when done is closed (serving failed).
func shutdownOnSignal(server *http.Server, logger log.Logger, done <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sig)
	var s os.Signal
	select {
	case s = <-sig:
	case <-done:
		return
	}
	level.Info(logger).Log("msg", "shutting down", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := server.Shutdown(ctx); err != nil {
		level.Warn(logger).Log("msg", "shutdown did not finish cleanly", "err", fmt.Sprint(err))
	}
}
