package main

import (
	"log/slog"
	"os"

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

// promErrorLogger gives promhttp's error log the go-kit logger.
type promErrorLogger struct{ logger log.Logger }

func (p promErrorLogger) Println(v ...any) {
	level.Error(p.logger).Log("msg", "serving metrics", "err", slog.AnyValue(v).String())
}
