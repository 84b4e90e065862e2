package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// The targets of issue 6.
const (
	minThroughputRatio = 0.7              // exporter scrapes/s ≥ this × the ceiling's
	maxP99Ratio        = 2.0              // exporter p99 ≤ this × the ceiling's
	maxRSS             = 30 << 20         // bytes
	rssGrowthAbs       = 2 << 20          // RSS "grew" only beyond both this …
	rssGrowthRel       = 0.10             // … and this fraction of the first sample
	mib                = float64(1 << 20) // for printing
)

type results struct {
	Started   time.Time        `json:"started"`
	GoVersion string           `json:"go_version"`
	OSArch    string           `json:"os_arch"`
	CPUs      int              `json:"cpus"`
	Repo      string           `json:"repo"`
	Revision  string           `json:"revision,omitempty"`
	Scrapes   int              `json:"scrapes_per_level"`
	Accept    string           `json:"accept"`
	UserAgent string           `json:"user_agent"`
	Response  responseSummary  `json:"response"`
	Levels    []level          `json:"levels"`
	Phases    []phase          `json:"timed_phases"`
	Startup   map[string]int   `json:"startup_requests_by_endpoint"`
	Upstream  []upstreamCheck  `json:"upstream"`
	Memory    memory           `json:"memory"`
	Fill      fillResult       `json:"detail_fill"`
	Backfill  []backfillResult `json:"backfill"`
	Household householdResult  `json:"household"`
	Targets   []target         `json:"targets"`
	// HouseholdOnly says that only phase H ran (--household-only).
	HouseholdOnly bool `json:"household_only,omitempty"`
}

type responseSummary struct {
	Status          int    `json:"status"`
	ContentType     string `json:"content_type"`
	ContentEncoding string `json:"content_encoding"`
	WireBytes       int    `json:"wire_bytes"`
	DecodedBytes    int    `json:"decoded_bytes"`
	Framing         string `json:"framing"`
}

func (c *captured) summary() responseSummary {
	framing := "Content-Length"
	if len(c.TransferEncoding) > 0 {
		framing = strings.Join(c.TransferEncoding, ",")
	}
	return responseSummary{
		Status: c.Status, ContentType: c.Header.Get("Content-Type"), ContentEncoding: c.Header.Get("Content-Encoding"),
		WireBytes: len(c.Body), DecodedBytes: c.DecodedBytes, Framing: framing,
	}
}

type level struct {
	Concurrency     int       `json:"concurrency"`
	Exporter        loadStats `json:"exporter"`
	Ceiling         loadStats `json:"ceiling"`
	ThroughputRatio float64   `json:"throughput_ratio"` // exporter / ceiling
	P99Ratio        float64   `json:"p99_ratio"`        // exporter / ceiling
}

type phase struct {
	Name  string    `json:"name"`
	Stats loadStats `json:"stats"`
}

type rssSample struct {
	At  time.Duration `json:"at_ns"`
	RSS int64         `json:"rss_bytes"`
}

type memory struct {
	AfterStart  int64         `json:"exporter_after_start_bytes"`
	AfterWarmup int64         `json:"exporter_after_warmup_bytes"`
	AfterLoad   int64         `json:"exporter_after_load_bytes"`
	Ceiling     int64         `json:"ceiling_after_load_bytes"`
	ShortTTL2s  int64         `json:"exporter_ttl2s_after_phase_bytes"`
	TTL         time.Duration `json:"many_refreshes_ttl_ns"`
	Refreshes   int           `json:"many_refreshes_count"`
	Samples     []rssSample   `json:"many_refreshes_samples"`
	First       int64         `json:"many_refreshes_first_bytes"`
	Last        int64         `json:"many_refreshes_last_bytes"`
	Max         int64         `json:"many_refreshes_max_bytes"`
	Grew        bool          `json:"many_refreshes_grew"`
}

type target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
}

func (r *results) add(name, want, got string, pass bool) {
	r.Targets = append(r.Targets, target{name, want, got, pass})
}

func (r *results) failed() int {
	n := 0
	for _, t := range r.Targets {
		if !t.Pass {
			n++
		}
	}
	return n
}

// evaluate derives the ratios and judges every target.
func (r *results) evaluate() {
	if !r.HouseholdOnly {
		r.evaluateSingle()
	}
	r.evaluateHousehold()
}

func (r *results) evaluateSingle() {
	for i := range r.Levels {
		lv := &r.Levels[i]
		lv.ThroughputRatio = lv.Exporter.PerSec / lv.Ceiling.PerSec
		lv.P99Ratio = float64(lv.Exporter.P99) / float64(max(lv.Ceiling.P99, 1))
		r.add(fmt.Sprintf("warm-cache throughput, concurrency %d", lv.Concurrency),
			fmt.Sprintf("≥ %.2f× ceiling", minThroughputRatio),
			fmt.Sprintf("%.2f× (%.0f vs %.0f/s)", lv.ThroughputRatio, lv.Exporter.PerSec, lv.Ceiling.PerSec),
			lv.ThroughputRatio >= minThroughputRatio)
		r.add(fmt.Sprintf("warm-cache p99, concurrency %d", lv.Concurrency),
			fmt.Sprintf("≤ %.1f× ceiling", maxP99Ratio),
			fmt.Sprintf("%.2f× (%s vs %s)", lv.P99Ratio, ms(lv.Exporter.P99), ms(lv.Ceiling.P99)),
			lv.P99Ratio <= maxP99Ratio)
	}
	errs := 0
	for _, lv := range r.Levels {
		errs += lv.Exporter.Errors + lv.Ceiling.Errors
	}
	for _, p := range r.Phases {
		errs += p.Stats.Errors
	}
	r.add("every scrape answered 200", "0 failed", fmt.Sprintf("%d failed", errs), errs == 0)

	for _, u := range r.Upstream {
		r.add("upstream requests, "+u.Name, fmt.Sprintf("≤ %d (≥ %d)", u.Expected[1], u.Expected[0]),
			fmt.Sprintf("%d", u.Observed), u.Pass)
	}

	f := r.Fill
	r.add(fmt.Sprintf("first fill of %d workouts' detail", f.Workouts), fmt.Sprintf("%d graph requests", f.Workouts),
		fmt.Sprintf("%d", f.Requests["performance_graph"]), f.Requests["performance_graph"] == f.Workouts)
	refresh := 0
	for _, n := range f.RefreshRequests {
		refresh += n
	}
	r.add("a refresh after the fill, nothing new", "3 requests (me, overview, workouts)",
		formatCounts(f.RefreshRequests), refresh == 3 && f.RefreshRequests["me"] == 1 && f.RefreshRequests["overview"] == 1 && f.RefreshRequests["workouts"] == 1)

	for _, b := range r.Backfill {
		if b.Workouts != 2000 {
			continue
		}
		r.add("backfill of 2,000 workouts: writing the file", fmt.Sprintf("< %s", maxBackfillWrite), b.Write.String(), b.Write < maxBackfillWrite)
		r.add("backfill of 2,000 workouts: the file", fmt.Sprintf("< %.0f MiB", maxBackfillBytes/mib), mibs(b.FileBytes), b.FileBytes < maxBackfillBytes)
		if b.BlocksBytes > 0 {
			r.add("backfill of 2,000 workouts: the blocks", fmt.Sprintf("< %.0f MiB", maxBackfillBlocks/mib), mibs(b.BlocksBytes), b.BlocksBytes < maxBackfillBlocks)
			r.add("backfill of 2,000 workouts: every sample in the blocks", fmt.Sprintf("%d", b.Samples), fmt.Sprintf("%d", b.BlockSample), b.BlockSample == b.Samples)
		}
	}

	m := &r.Memory
	for _, s := range m.Samples {
		m.Max = max(m.Max, s.RSS)
	}
	if n := len(m.Samples); n > 0 {
		m.First, m.Last = m.Samples[0].RSS, m.Samples[n-1].RSS
		m.Grew = float64(m.Last-m.First) > max(rssGrowthAbs, rssGrowthRel*float64(m.First))
	}
	peak, where := int64(0), ""
	for _, s := range []struct {
		v    int64
		name string
	}{{m.AfterStart, "A after start"}, {m.AfterWarmup, "A after warm-up"}, {m.AfterLoad, "A after the load phases"},
		{m.ShortTTL2s, "B after its phase"}, {m.Max, "C, many refreshes"}} {
		if s.v > peak {
			peak, where = s.v, s.name
		}
	}
	if peak == 0 {
		r.add("exporter RSS", fmt.Sprintf("< %.0f MiB", maxRSS/mib), "n/a (no /proc)", true)
		return
	}
	r.add("exporter RSS, highest sample", fmt.Sprintf("< %.0f MiB", maxRSS/mib), mibs(peak)+" ("+where+")", peak < maxRSS)
	r.add(fmt.Sprintf("exporter RSS over %d refreshes", m.Refreshes),
		fmt.Sprintf("no growth (> max(%.0f MiB, %.0f%%))", rssGrowthAbs/mib, rssGrowthRel*100),
		fmt.Sprintf("%s → %s", mibs(m.First), mibs(m.Last)), !m.Grew)
}

func (r *results) evaluateHousehold() {
	h := &r.Household
	n := h.Accounts
	for i := range h.Levels {
		lv := &h.Levels[i]
		lv.ThroughputLoss = lv.Single.PerSec / max(lv.Probe.PerSec, 1e-9)
		lv.P99Ratio = float64(lv.Probe.P99) / float64(max(lv.Single.P99, 1))
		r.add(fmt.Sprintf("H: warm probe throughput, concurrency %d", lv.Concurrency),
			fmt.Sprintf("≥ 1/%.0f of one account's", maxProbeSlowdown),
			fmt.Sprintf("%.2f× (%.0f vs %.0f/s)", 1/lv.ThroughputLoss, lv.Probe.PerSec, lv.Single.PerSec),
			lv.ThroughputLoss <= maxProbeSlowdown)
		r.add(fmt.Sprintf("H: warm probe p99, concurrency %d", lv.Concurrency),
			fmt.Sprintf("≤ %.0f× one account's", maxProbeSlowdown),
			fmt.Sprintf("%.2f× (%s vs %s)", lv.P99Ratio, ms(lv.Probe.P99), ms(lv.Single.P99)),
			lv.P99Ratio <= maxProbeSlowdown)
	}
	errs := h.Storm.Errors
	for _, lv := range h.Levels {
		errs += lv.Probe.Errors + lv.Single.Errors
	}
	r.add("H: every probe and scrape answered 200", "0 failed", fmt.Sprintf("%d failed", errs), errs == 0)
	r.add("H: warm load costs Peloton nothing", "0 requests", fmt.Sprintf("%d", h.LoadRequests), h.LoadRequests == 0)
	pass, lo, hi := 0, math.MaxInt, 0
	for _, c := range h.StormChecks {
		if c.Pass {
			pass++
		}
		lo, hi = min(lo, c.ByEndpoint["me"]), max(hi, c.ByEndpoint["me"])
	}
	r.add(fmt.Sprintf("H: scrape storm, one refresh per account per TTL %s", householdStormTTL),
		fmt.Sprintf("%d of %d accounts in range", n, n), fmt.Sprintf("%d (refreshes %d..%d each)", pass, lo, hi), pass == n && n > 0)
	r.add(fmt.Sprintf("H: cold start of %d accounts", n), fmt.Sprintf("%d logins, ≥ %s apart", n, h.Spacing),
		fmt.Sprintf("%d, ≥ %s apart, all up in %s", h.Logins, h.MinLoginGap.Round(time.Millisecond), h.ColdStart.Round(100*time.Millisecond)),
		h.Logins == n && h.MinLoginGap >= h.Spacing-200*time.Millisecond)
	r.add("H: restart with saved tokens", "0 logins", fmt.Sprintf("%d, all up in %s", h.RestartLogins, h.RestartUp.Round(100*time.Millisecond)), h.RestartLogins == 0)
	peak := max(h.RSS.AfterColdStart, h.RSS.AfterFill, h.RSS.AfterLoad, h.RSS.StormMax)
	if peak == 0 {
		r.add("H: exporter RSS", fmt.Sprintf("< %.0f MiB", float64(householdTarget())/mib), "n/a (no /proc)", true)
		return
	}
	r.add(fmt.Sprintf("H: exporter RSS, %d accounts of %d workouts", n, h.Workouts),
		fmt.Sprintf("< %.0f MiB (20 + 3 × %d)", float64(householdTarget())/mib, n), mibs(peak), peak < householdTarget())
}

func (r *results) print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	rev := r.Revision
	if rev == "" {
		rev = "no git revision"
	}
	p("peloton_exporter load and cost — %s, %s %s, %d CPUs, %s (%s)",
		r.Started.Format("2006-01-02 15:04 UTC"), r.GoVersion, r.OSArch, r.CPUs, r.Repo, rev)
	p("scrape:   GET /metrics, User-Agent %s, Accept-Encoding gzip, X-Prometheus-Scrape-Timeout-Seconds %s,", r.UserAgent, scrapeTimeoutH)
	p("          Accept %s", r.Accept)
	p("          keep-alive connections, one per worker; body read to the end and discarded (not gunzipped)")
	rs := r.Response
	p("answer:   %d, Content-Type %q, Content-Encoding %q, %d bytes on the wire (%d decoded), %s",
		rs.Status, rs.ContentType, rs.ContentEncoding, rs.WireBytes, rs.DecodedBytes, rs.Framing)
	p("ceiling:  those exact bytes and headers replayed by a plain net/http server in its own process (checked identical)")
	p("")
	if !r.HouseholdOnly {
		r.printSingle(p)
	}
	r.printHousehold(p)

	p("TARGETS")
	for _, t := range r.Targets {
		p("  %-4s  %-62s want %-26s got %s", passFail(t.Pass), t.Name, t.Want, t.Got)
	}
	p("%d of %d targets met. This is a measurement: the exit status is 0 unless the bench broke (--strict: 1 on a miss).",
		len(r.Targets)-r.failed(), len(r.Targets))
}

// printSingle prints phases A to D, of one account in --demo.
func (r *results) printSingle(p func(string, ...any)) {

	p("WARM-CACHE LOAD  exporter A (--peloton.cache-ttl 5m), %d scrapes per level after an unmeasured warm-up", r.Scrapes)
	p("cpu/scr: the server process's CPU time per scrape (/proc, 10 ms ticks)")
	p("        %-41s   %-41s   %s", "|------------- exporter -------------|", "|-------------- ceiling -------------|", "exporter/ceiling")
	p("  conc  %9s %8s %8s %8s %4s   %9s %8s %8s %8s %4s   %10s %7s",
		"scrapes/s", "p50", "p99", "cpu/scr", "err", "scrapes/s", "p50", "p99", "cpu/scr", "err", "throughput", "p99")
	for _, lv := range r.Levels {
		e, c := lv.Exporter, lv.Ceiling
		p("  %4d  %9.0f %8s %8s %8s %4d   %9.0f %8s %8s %8s %4d   %5.2f %-4s %4.2f %-4s",
			lv.Concurrency, e.PerSec, ms(e.P50), ms(e.P99), ms(e.CPUPer), e.Errors,
			c.PerSec, ms(c.P50), ms(c.P99), ms(c.CPUPer), c.Errors,
			lv.ThroughputRatio, passFail(lv.ThroughputRatio >= minThroughputRatio),
			lv.P99Ratio, passFail(lv.P99Ratio <= maxP99Ratio))
	}
	for _, ph := range r.Phases {
		s := ph.Stats
		p("  timed phase %s: c=%d, %d scrapes in %s (%.0f/s), p50 %s, p99 %s, max %s, %d errors",
			ph.Name, s.Concurrency, s.Scrapes, s.Elapsed.Round(100*time.Millisecond), s.PerSec, ms(s.P50), ms(s.P99), ms(s.Max), s.Errors)
	}
	p("")

	p("UPSTREAM  peloton_api_requests_total, summed over labels, read from the exporter before and after each phase")
	total := 0
	for _, v := range r.Startup {
		total += v
	}
	p("  at start (login, then the first refresh with the full history sync): %d — %s", total, formatCounts(r.Startup))
	p("  a refresh reads 3 sources (me, overview, one workouts page); refreshes ≤ (end − last refresh before)/TTL")
	for _, u := range r.Upstream {
		p("  %s", u.Name)
		p("      %s elapsed, %d scrapes; refreshes allowed %d..%d → expected ≤ %d (≥ %d), observed %d (%s)  %s",
			u.Elapsed.Round(100*time.Millisecond), u.Scrapes, u.Refreshes[0], u.Refreshes[1],
			u.Expected[1], u.Expected[0], u.Observed, formatCounts(u.ByEndpoint), passFail(u.Pass))
		if u.Startup != nil {
			p("      (this exporter's start: %s)", formatCounts(u.Startup))
		}
		if len(u.Background) > 0 {
			p("      beside them, the detail filler in the background: %s", formatCounts(u.Background))
		}
	}
	f := r.Fill
	p("  D: first fill of %d workouts' detail at --peloton.detail-interval=%s: %s (the throttle alone: %s; at the default 1s: about %s)",
		f.Workouts, f.Interval, f.Elapsed.Round(100*time.Millisecond), f.ThrottleFloor, hm(f.AtDefault.Round(time.Minute)))
	p("      requests: %s", formatCounts(f.Requests))
	p("      a refresh after it, nothing new: %s", formatCounts(f.RefreshRequests))
	p("")

	p("BACKFILL  peloton_exporter backfill --demo --demo.workouts=N, then promtool tsdb create-blocks-from openmetrics --max-block-duration=8760h")
	p("  %8s %8s %10s %10s %10s %12s %10s %10s", "workouts", "series", "samples", "file", "writing", "whole cmd", "blocks", "promtool")
	for _, b := range r.Backfill {
		p("  %8d %8d %10d %10s %10s %12s %10s %10s", b.Workouts, b.Series, b.Samples, mibs(b.FileBytes),
			b.Write.Round(time.Millisecond), b.Total.Round(100*time.Millisecond), mibs(b.BlocksBytes), b.Promtool.Round(100*time.Millisecond))
	}
	p("  (the whole command includes the demo's sync and the fill of every workout's detail from its simulator)")
	p("")

	m := r.Memory
	p("MEMORY  VmRSS of the exporter process (in --demo it includes the simulated Peloton it hosts)")
	p("  A (TTL 5m): after start %s, after warm-up %s, after the load phases %s;  ceiling process %s",
		mibs(m.AfterStart), mibs(m.AfterWarmup), mibs(m.AfterLoad), mibs(m.Ceiling))
	p("  B (TTL 2s): after its phase %s", mibs(m.ShortTTL2s))
	var ss []string
	for _, s := range m.Samples {
		ss = append(ss, fmt.Sprintf("%s %s", s.At.Round(time.Second), mibs(s.RSS)))
	}
	p("  C (TTL %s, %d refreshes, as many as %s at the 5m default): %s", m.TTL, m.Refreshes,
		hm(time.Duration(m.Refreshes)*5*time.Minute), strings.Join(ss, ", "))
	grew := "stable"
	if m.Grew {
		grew = "GREW"
	}
	p("      first %s, last %s, max %s: %s", mibs(m.First), mibs(m.Last), mibs(m.Max), grew)
	p("")
}

func (r *results) printHousehold(p func(string, ...any)) {
	h := r.Household
	if h.Accounts == 0 {
		return
	}
	p("HOUSEHOLD  H: %d accounts of %d workouts in one exporter (--config.file), against a simulated household the bench hosts;", h.Accounts, h.Workouts)
	if h.Detail {
		p("           detail filler on: %d workouts' detail fetched at a 1ms pace in %s, then kept in the history files; --peloton.login-spacing=%s",
			h.Accounts*h.Workouts, h.DetailFill.Round(time.Second), h.Spacing)
	} else {
		p("           detail filler off (--household-no-detail), --peloton.login-spacing=%s", h.Spacing)
	}
	p("  cold start, no saved tokens: %d logins, at least %s apart, every account up after %s (at the default 1m spacing: about %s)",
		h.Logins, h.MinLoginGap.Round(time.Millisecond), h.ColdStart.Round(100*time.Millisecond), hm(time.Duration(max(h.Accounts-1, 0))*time.Minute))
	p("  restart with the saved tokens: %d logins, every account up after %s", h.RestartLogins, h.RestartUp.Round(100*time.Millisecond))
	p("  warm load: /probe round robin over the %d accounts, against one account's exporter's /metrics (%s scrapes each)", h.Accounts, fmt.Sprint(r.Scrapes))
	p("  conc  %12s %8s %8s %8s   %12s %8s %8s %8s   %s", "probe/s", "p50", "p99", "cpu/scr", "single/s", "p50", "p99", "cpu/scr", "probe vs single")
	for _, lv := range h.Levels {
		a, b := lv.Probe, lv.Single
		p("  %4d  %12.0f %8s %8s %8s   %12.0f %8s %8s %8s   %.2f× throughput, %.2f× p99",
			lv.Concurrency, a.PerSec, ms(a.P50), ms(a.P99), ms(a.CPUPer), b.PerSec, ms(b.P50), ms(b.P99), ms(b.CPUPer), 1/lv.ThroughputLoss, lv.P99Ratio)
	}
	p("  upstream requests during the warm load: %d", h.LoadRequests)
	s := h.Storm
	p("  storm: TTL %s, c=%d over every account, %d probes in %s (%.0f/s), p50 %s, p99 %s, %d errors",
		householdStormTTL, s.Concurrency, s.Scrapes, s.Elapsed.Round(100*time.Millisecond), s.PerSec, ms(s.P50), ms(s.P99), s.Errors)
	for _, c := range h.StormChecks {
		p("      %s: refreshes allowed %d..%d, requests %d (%s)  %s", c.Name, c.Refreshes[0], c.Refreshes[1], c.Observed, formatCounts(c.ByEndpoint), passFail(c.Pass))
	}
	p("  RSS: after the cold start %s, after the detail fill %s, after the warm load %s, highest in the storm %s (target < %s); one account's exporter %s",
		mibs(h.RSS.AfterColdStart), mibs(h.RSS.AfterFill), mibs(h.RSS.AfterLoad), mibs(h.RSS.StormMax), mibs(householdTarget()), mibs(h.RSS.Single))
	p("")
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// ms prints a duration in milliseconds with three significant digits.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case d == 0:
		return "-"
	case v < 1:
		return fmt.Sprintf("%.3fms", v)
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 100:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.0fms", v)
	}
}

// hm prints a duration of whole minutes as "5h20m" or "45m".
func hm(d time.Duration) string {
	h, m := int(d.Hours()), int(d.Minutes())%60
	if h == 0 {
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%dh%02dm", h, m)
}

func mibs(b int64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/mib)
}
