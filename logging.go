package main

import (
	"fmt"
	stdlog "log"
	"log/slog"
	"os"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	slgk "github.com/tjhop/slog-gokit"
)

// newLoggers builds the go-kit logger the project uses, and the *slog.Logger that
// exporter-toolkit wants, bridged to the same output, format and level filter. The bridge gets
// the logger before timestamps and callers are added: slog records carry their own.
func newLoggers(format, lvl string) (log.Logger, *slog.Logger) {
	var base log.Logger
	if format == "json" {
		base = log.NewJSONLogger(log.NewSyncWriter(os.Stderr))
	} else {
		base = log.NewLogfmtLogger(log.NewSyncWriter(os.Stderr))
	}
	base = level.NewFilter(base, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
	logger := log.With(base, "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller)
	return logger, slog.New(slgk.NewGoKitHandler(base, slog.LevelDebug))
}

// promErrorLogger gives promhttp's error log the go-kit logger. What promhttp reports comes
// from gathering and encoding, the exporter's own doing: internal/respcache hands it every
// request, cached or not, with the compression it negotiated, and has it write into memory,
// so that neither a client's Accept-Encoding nor a client gone reaches it.
type promErrorLogger struct{ logger log.Logger }

func (p promErrorLogger) Println(v ...any) {
	level.Error(p.logger).Log("msg", "serving metrics", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}

// serverErrorLog routes http.Server's own messages through the go-kit logger, in its format.
// A failed TLS handshake is a client's doing (a port scanner, a plain-HTTP request): anyone
// who can reach the port could flood the error log with them, so they are debug lines.
func serverErrorLog(logger log.Logger) *stdlog.Logger {
	return stdlog.New(serverLogWriter{logger}, "", 0)
}

type serverLogWriter struct{ logger log.Logger }

func (w serverLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	lvl := level.Error
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		lvl = level.Debug
	}
	lvl(w.logger).Log("msg", "HTTP server", "err", msg)
	return len(p), nil
}
