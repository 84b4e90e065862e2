package collector

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

const (
	// scrapeTimeoutOffset leaves Prometheus time to receive the answer after the refresh
	// gives up waiting (the same idea as mysqld_exporter's --timeout-offset).
	scrapeTimeoutOffset = 500 * time.Millisecond
	// defaultScrapeWait bounds the wait of a scrape that does not say its timeout (curl).
	defaultScrapeWait = 10 * time.Second
)

// Handler refreshes stale data, within the scrape's deadline, before next serves the metrics.
// When the deadline comes first the scrape gets the previous data and the refresh goes on for
// the next scrape.
func (e *Exporter) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait := defaultScrapeWait
		if v, err := strconv.ParseFloat(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), 64); err == nil && v > 0 {
			wait = max(time.Duration(v*float64(time.Second))-scrapeTimeoutOffset, 100*time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		e.Refresh(ctx)
		next.ServeHTTP(w, r)
	})
}
