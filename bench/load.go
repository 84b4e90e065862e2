package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The request Prometheus 3.x sends to a target with the default scrape settings
// (scrape/scrape.go in prometheus/prometheus):
//   - Accept: acceptHeader(DefaultScrapeProtocols, escaping). The q weights start at
//     len(ScrapeProtocolsHeaders)+1 = 6, as Prometheus knows five protocols (PrometheusProto
//     too, which the default list does not ask for), and count down over the four default ones
//     (OpenMetrics 1.0.0, OpenMetrics 0.0.1, text 1.0.0, text 0.0.4), then */*. Only the 1.0.0
//     formats carry the escaping parameter; allow-utf-8 is the default with UTF-8 names.
//   - Accept-Encoding: gzip (enable_compression defaults to true); Prometheus decompresses
//     the body itself, so Go's transport does not.
//   - User-Agent: version.PrometheusUserAgent(), "Prometheus/<version>"; the version is the
//     one deploy/docker-compose.yml pins.
//   - X-Prometheus-Scrape-Timeout-Seconds: the scrape timeout, FormatFloat(…, 'f', -1, 64).
const (
	promAccept = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6," +
		"application/openmetrics-text;version=0.0.1;q=0.5," +
		"text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4," +
		"text/plain;version=0.0.4;q=0.3," +
		"*/*;q=0.2"
	promUserAgent  = "Prometheus/3.13.0"
	scrapeTimeout  = 10 * time.Second
	scrapeTimeoutH = "10"
)

// newScrapeRequest builds a GET of url with Prometheus's scrape headers.
func newScrapeRequest(ctx context.Context, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", promAccept)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("User-Agent", promUserAgent)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", scrapeTimeoutH)
	return req, nil
}

// newScrapeClient is a client for conc concurrent scrapers on keep-alive connections: one
// idle connection kept per worker, so that no scrape pays for a new connection once warm.
// DisableCompression keeps the body as it came on the wire (the gzip bytes).
func newScrapeClient(conc int) *http.Client {
	return &http.Client{
		Timeout: scrapeTimeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			DisableCompression:  true,
			MaxIdleConns:        0, // no overall limit
			MaxIdleConnsPerHost: max(conc, 2),
			IdleConnTimeout:     5 * time.Minute,
		},
		// Prometheus follows redirects by default, but /metrics has none; a redirect here
		// would mean something is wrong, so it is an error rather than a silent second request.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// scrapeOnce sends req and reads and discards the whole body; it returns the bytes read.
func scrapeOnce(c *http.Client, req *http.Request) (int64, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return n, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("status %s", resp.Status)
	}
	return n, nil
}

// driveOpts says how to load a target. At least one of scrapes and dur bounds the run.
type driveOpts struct {
	conc     int           // concurrent workers, each scraping back to back
	scrapes  int           // stop after this many scrapes in all (0: no limit)
	dur      time.Duration // stop starting scrapes after this long (0: no limit)
	interval time.Duration // per-worker pacing: at most one scrape per interval (0: none)
	// urls, when set, are scraped in turn by every worker instead of the url given: the
	// targets of a multi-target exporter, as Prometheus scrapes them.
	urls []string
}

// loadStats is what one run measured.
type loadStats struct {
	Concurrency int           `json:"concurrency"`
	Scrapes     int           `json:"scrapes"` // successful
	Errors      int           `json:"errors"`
	FirstError  string        `json:"first_error,omitempty"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	PerSec      float64       `json:"scrapes_per_sec"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	Max         time.Duration `json:"max_ns"`
	WireBytes   float64       `json:"wire_bytes_per_scrape"`
	CPUPer      time.Duration `json:"server_cpu_per_scrape_ns"` // the server process's CPU time per scrape; 0 if unknown
}

// maxRun bounds any single run, whatever its options say, so that a wedged server cannot
// hold the bench forever (every scrape also has its own 10 s timeout).
const maxRun = 15 * time.Minute

// drive runs scrapes of url with the given options and measures them. The latency of a
// scrape is from sending the request to having read the last byte of the body, which is what
// Prometheus reports as scrape_duration_seconds (less its parsing). serverPID, if not 0, is
// the process whose CPU time is charged to the scrapes.
func drive(ctx context.Context, url string, o driveOpts, serverPID int) (loadStats, error) {
	if o.conc < 1 || (o.scrapes <= 0 && o.dur <= 0) {
		return loadStats{}, errors.New("drive: unbounded or empty run")
	}
	ctx, cancel := context.WithTimeout(ctx, maxRun)
	defer cancel()
	client := newScrapeClient(o.conc)
	defer client.CloseIdleConnections()

	type worker struct {
		lat      []time.Duration
		errs     int
		firstErr error
		bytes    int64
	}
	workers := make([]worker, o.conc)
	var next atomic.Int64 // scrapes handed out so far
	var cpu0 time.Duration
	if serverPID != 0 {
		cpu0, _ = cpuTime(serverPID)
	}
	start := time.Now()
	var deadline time.Time
	if o.dur > 0 {
		deadline = start.Add(o.dur)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		goSafe(func() {
			defer wg.Done()
			wk := &workers[w]
			if o.scrapes > 0 {
				wk.lat = make([]time.Duration, 0, o.scrapes/o.conc+1)
			}
			targets := o.urls
			if len(targets) == 0 {
				targets = []string{url}
			}
			var reqs []*http.Request
			for _, u := range targets {
				req, err := newScrapeRequest(ctx, u)
				if err != nil {
					wk.errs, wk.firstErr = 1, err
					return
				}
				reqs = append(reqs, req)
			}
			for i := 0; ; i++ {
				req := reqs[(w+i)%len(reqs)]
				if ctx.Err() != nil || (!deadline.IsZero() && !time.Now().Before(deadline)) {
					return
				}
				if o.scrapes > 0 && next.Add(1) > int64(o.scrapes) {
					return
				}
				if o.interval > 0 {
					// Paced: the i-th scrape of this worker is due at start + i*interval.
					due := start.Add(time.Duration(i) * o.interval)
					if !deadline.IsZero() && !due.Before(deadline) {
						return
					}
					select {
					case <-time.After(time.Until(due)):
					case <-ctx.Done():
						return
					}
				}
				t := time.Now()
				n, err := scrapeOnce(client, req)
				d := time.Since(t)
				wk.bytes += n
				if err != nil {
					if wk.errs == 0 {
						wk.firstErr = err
					}
					wk.errs++
					if ctx.Err() == nil {
						// Don't spin on a dead server: an error costs at least a millisecond.
						time.Sleep(time.Millisecond)
					}
					continue
				}
				wk.lat = append(wk.lat, d)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	st := loadStats{Concurrency: o.conc, Elapsed: elapsed}
	var all []time.Duration
	var bytes int64
	for _, wk := range workers {
		all = append(all, wk.lat...)
		st.Errors += wk.errs
		bytes += wk.bytes
		if wk.firstErr != nil && st.FirstError == "" {
			st.FirstError = wk.firstErr.Error()
		}
	}
	st.Scrapes = len(all)
	if err := ctx.Err(); err != nil { // interrupted, or maxRun passed: not a measurement
		return st, fmt.Errorf("run stopped early: %w", err)
	}
	if st.Scrapes == 0 {
		return st, fmt.Errorf("no scrape succeeded (%d errors, first: %s)", st.Errors, st.FirstError)
	}
	slices.Sort(all)
	st.P50 = percentile(all, 0.50)
	st.P99 = percentile(all, 0.99)
	st.Max = all[len(all)-1]
	st.PerSec = float64(st.Scrapes) / elapsed.Seconds()
	st.WireBytes = float64(bytes) / float64(st.Scrapes+st.Errors)
	if serverPID != 0 {
		if cpu1, err := cpuTime(serverPID); err == nil {
			st.CPUPer = (cpu1 - cpu0) / time.Duration(st.Scrapes)
		}
	}
	return st, nil
}

// percentile of sorted values, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
