package main

// Upstream cost: how many requests to Peloton the exporter makes, read from its own
// peloton_api_requests_total, against what the cache TTL allows.

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// exporterState is what the bench reads from the exporter's /metrics.
type exporterState struct {
	at          time.Time          // when the read had returned
	requests    map[string]float64 // peloton_api_requests_total by endpoint, summed over codes
	up          float64
	lastSuccess time.Time // peloton_last_refresh_success_timestamp_seconds
	pending     float64   // peloton_workout_detail_pending (NaN without)
}

// readExporter scrapes url in the classic text format (whatever the exporter offers
// Prometheus, the parser here reads that one) and picks out the bench's metrics. It is a
// scrape like any other: with a stale cache it refreshes first, and counts that refresh.
func readExporter(ctx context.Context, url string) (exporterState, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return exporterState{}, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	req.Header.Set("User-Agent", promUserAgent)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", scrapeTimeoutH)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return exporterState{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return exporterState{}, fmt.Errorf("%s: status %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return exporterState{}, fmt.Errorf("parsing %s: %w", url, err)
	}
	st := exporterState{at: time.Now(), requests: map[string]float64{}, up: math.NaN(), pending: math.NaN()}
	if mf := mfs["peloton_api_requests_total"]; mf != nil {
		for _, m := range mf.GetMetric() {
			endpoint := "?"
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" {
					endpoint = l.GetValue()
				}
			}
			st.requests[endpoint] += m.GetCounter().GetValue()
		}
	}
	if mf := mfs["peloton_up"]; mf != nil && len(mf.GetMetric()) == 1 {
		st.up = mf.GetMetric()[0].GetGauge().GetValue()
	}
	if mf := mfs["peloton_workout_detail_pending"]; mf != nil && len(mf.GetMetric()) == 1 {
		st.pending = mf.GetMetric()[0].GetGauge().GetValue()
	}
	if mf := mfs["peloton_last_refresh_success_timestamp_seconds"]; mf != nil && len(mf.GetMetric()) == 1 {
		v := mf.GetMetric()[0].GetGauge().GetValue()
		st.lastSuccess = time.UnixMilli(int64(math.Round(v * 1000)))
	}
	return st, nil
}

// waitUp polls url until peloton_up is 1, the child exits, or the time is up.
func waitUp(ctx context.Context, url string, ch *child, within time.Duration) (exporterState, error) {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		if ch.exited() {
			return exporterState{}, fmt.Errorf("%s exited (%w):\n%s", ch.name, ch.waitErr, ch.logTail(20))
		}
		st, err := readExporter(ctx, url)
		if err == nil && st.up == 1 {
			return st, nil
		}
		if err == nil {
			err = fmt.Errorf("peloton_up is %v", st.up)
		}
		last = err
		select {
		case <-ctx.Done():
			return exporterState{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return exporterState{}, fmt.Errorf("%s not up within %s: %w\n%s", ch.name, within, last, ch.logTail(20))
}

// The sources one refresh reads, one request each once the workout history is synced (a
// later sync stops at the first workout already known, and the demo member's history does
// not grow). Anything else during a phase (authorize, login, token …) is a login or a token
// refresh, which a phase of minutes should not need: demo tokens live 48 h.
var refreshEndpoints = []string{"me", "overview", "workouts"}

// backgroundEndpoints are the requests of the workout-detail filler, which runs beside the
// refreshes (throttled, once per workout): reported apart, not counted against the TTL.
var backgroundEndpoints = []string{"performance_graph", "settings"}

// upstreamCheck compares the requests of one phase with what the TTL allows.
type upstreamCheck struct {
	Name       string         `json:"name"`
	TTL        time.Duration  `json:"ttl_ns"`
	Elapsed    time.Duration  `json:"elapsed_ns"` // from the read before to the read after
	Scrapes    int            `json:"scrapes"`
	Refreshes  [2]int         `json:"refreshes_allowed"` // [min, max] the TTL implies
	Expected   [2]int         `json:"requests_expected"` // 3x that
	Observed   int            `json:"requests_observed"`
	ByEndpoint map[string]int `json:"requests_by_endpoint"`
	Background map[string]int `json:"background_requests_by_endpoint"`
	Startup    map[string]int `json:"startup_requests_by_endpoint,omitempty"`
	Pass       bool           `json:"pass"`
}

// checkUpstream works out the allowed range from two reads around a phase.
//
// Refreshes happen only when a scrape finds data older than the TTL (there is no timer), and
// the age counts from the end of the last good refresh. So the k-th refresh after the one
// that ended at before.lastSuccess starts no sooner than k TTLs later, and every refresh
// counted has started before the read after returned: k <= (after.at - before.lastSuccess)/TTL.
// The lower bound applies only when scraping was continuous (busy): a refresh then follows
// each expiry within a scrape, so a cycle lasts the TTL plus the refresh plus one scrape;
// slack allows a generous max(0.5 s, TTL/4) for those.
func checkUpstream(name string, ttl time.Duration, before, after exporterState, scrapes int, busy bool) upstreamCheck {
	c := upstreamCheck{Name: name, TTL: ttl, Elapsed: after.at.Sub(before.at), Scrapes: scrapes,
		ByEndpoint: map[string]int{}, Background: map[string]int{}}
	window := after.at.Sub(before.lastSuccess)
	c.Refreshes[1] = int(window / ttl)
	if busy {
		slack := max(500*time.Millisecond, ttl/4)
		c.Refreshes[0] = max(0, int(window/(ttl+slack))-1)
	}
	c.Expected = [2]int{len(refreshEndpoints) * c.Refreshes[0], len(refreshEndpoints) * c.Refreshes[1]}
	for ep, v := range after.requests {
		d := int(math.Round(v - before.requests[ep]))
		switch {
		case d == 0:
		case slices.Contains(backgroundEndpoints, ep):
			c.Background[ep] = d
		default:
			c.ByEndpoint[ep] = d
			c.Observed += d
		}
	}
	c.Pass = c.Observed >= c.Expected[0] && c.Observed <= c.Expected[1]
	// Each refresh must read each source once: a source read twice is a bug even in range.
	for _, ep := range refreshEndpoints {
		if c.ByEndpoint[ep] != c.ByEndpoint[refreshEndpoints[0]] {
			c.Pass = false
		}
	}
	return c
}

// startupRequests are the requests made before the first read: login plus the first sync.
func startupRequests(st exporterState) map[string]int {
	m := map[string]int{}
	for ep, v := range st.requests {
		m[ep] = int(math.Round(v))
	}
	return m
}

// formatCounts prints endpoint counts in a stable order: refresh sources first.
func formatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		for i, e := range refreshEndpoints {
			if e == k {
				return i
			}
		}
		return len(refreshEndpoints)
	}
	sort.Slice(keys, func(i, j int) bool {
		if ri, rj := rank(keys[i]), rank(keys[j]); ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}
