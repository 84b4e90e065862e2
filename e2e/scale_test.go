package e2e_test

// Speeding up the shipped configuration for the test: the rules and the Alertmanager timers run
// timeScale times faster than in production, and every rewrite is checked to have happened, so
// that a changed file fails the test instead of silently running unscaled.

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
)

// timeScale is how much faster than real time the test runs: one minute of the shipped
// configuration lasts one second here (1m → 1s, 10m → 10s, 12h → 12m).
//
// Everything that measures the passage of time inside the monitoring pipeline is divided by it:
// the scrape and evaluation intervals (1m → 1s), `for:`, `keep_firing_for:`, lookback windows
// ([12h] → [12m]), the staleness threshold of the refresh timestamp, Prometheus's lookback delta,
// and Alertmanager's group_wait, group_interval and repeat_interval. Because all of them shrink by
// the same factor, the relationships the rules rely on hold unchanged: lookback (12m) > for (10s)
// > scrape and evaluation interval (1s), and ExporterDown's for (5s) is five scrapes, as in
// production. The exporter's cache TTL, 5m in production, is 1s rather than 5s (the test runs it
// with --peloton.cache-ttl=1s): refreshes are more frequent than scaled, which only gives `for:`
// more refreshes to see a change in.
//
// Not scaled: thresholds compared with calendar time that the test cannot speed up. The end of
// the member's streak week (the at-risk margin, 36h) is a real date, and the simulator's access
// tokens (the expiry warning, 6h) last 48 real hours. See secondsConstants.
const timeScale = 60

// evalInterval is the scaled rule evaluation and scrape interval (1m in production).
const evalInterval = time.Minute / timeScale

// secondsConstants are the durations the rules write as arithmetic in seconds (e.g. 30 * 60),
// keyed by the metric on the same line: whether each is scaled, and why.
var secondsConstants = []struct {
	metric string
	scale  bool
	why    string
}{
	{"peloton_last_refresh_success_timestamp_seconds", true, "staleness: refreshes happen at the (shortened) cache TTL"},
	{"peloton_source_last_success_timestamp_seconds", true, "staleness of a source: read at every (shortened) refresh"},
	{"peloton_current_week_end_timestamp_seconds", false, "at-risk margin: the streak week ends on a real date"},
	{"peloton_auth_token_expiry_timestamp_seconds", false, "token expiry warning: the simulator's tokens last 48 real hours"},
}

// ---------------------------------------------------------------------------------------------
// Prometheus durations

var promDurationRE = regexp.MustCompile(`^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$`)

var promUnits = []struct {
	name string
	d    time.Duration
}{
	{"y", 365 * 24 * time.Hour}, {"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour},
	{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond},
}

func parsePromDuration(s string) (time.Duration, error) {
	m := promDurationRE.FindStringSubmatch(s)
	if m == nil || s == "" {
		return 0, fmt.Errorf("%q is not a Prometheus duration", s)
	}
	var d time.Duration
	for i, u := range promUnits {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%q: %w", s, err)
			}
			d += time.Duration(n) * u.d
		}
	}
	return d, nil
}

func formatPromDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range promUnits {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.d
		}
	}
	return b.String()
}

// scaleDuration divides a Prometheus duration by timeScale, to the millisecond.
func scaleDuration(s string) (string, time.Duration, error) {
	d, err := parsePromDuration(s)
	if err != nil {
		return "", 0, err
	}
	scaled := (d / timeScale).Round(time.Millisecond)
	return formatPromDuration(scaled), scaled, nil
}

// ---------------------------------------------------------------------------------------------
// Rules

// scaledRules is the rules file sped up by timeScale.
type scaledRules struct {
	text string
	// forOf is every alert's scaled `for:` (0 without one).
	forOf map[string]time.Duration
}

var (
	commentRE     = regexp.MustCompile(`(^|\s)#.*$`)
	ruleStartRE   = regexp.MustCompile(`^(\s*)- (alert|record):\s*(\S+)\s*$`)
	groupStartRE  = regexp.MustCompile(`^(\s*)- name:`)
	keyRE         = regexp.MustCompile(`^(\s*)([A-Za-z_]+):\s*(.*?)\s*$`)
	rangeRE       = regexp.MustCompile(`\[\s*([0-9][0-9a-z]*)\s*(?::\s*([0-9][0-9a-z]*)?\s*)?\]`)
	offsetRE      = regexp.MustCompile(`\boffset\s+([0-9][0-9a-z]*)`)
	productRE     = regexp.MustCompile(`\b\d+(?:\s*\*\s*\d+)+\b`)
	bigNumberRE   = regexp.MustCompile(`\b\d*[1-9]\d+(?:\.\d+)?\b|\b\d+e\d+\b`) // 10 or more
	quotedRE      = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	indentOf      = func(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }
	requiredKinds = []string{"group interval", "for", "keep_firing_for", "range selector"}
)

// scaleRules returns the rules file with every duration divided by timeScale (see there for
// which and why), or an error when the file has a shape the rewrite does not know: a duration it
// would leave unscaled, or no occurrence of a kind of duration it expects (the file changed).
//
// It reads the YAML line by line (the test uses the standard library only), relying on the
// layout of deploy/prometheus/peloton-rules.yml: one key per line, block or one-line `expr:`,
// comments after " #".
func scaleRules(src string) (scaledRules, error) {
	out := scaledRules{forOf: map[string]time.Duration{}}
	counts := map[string]int{}
	var problems []string
	fail := func(n int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("line %d: ", n)+fmt.Sprintf(format, args...))
	}
	// scale rewrites one duration value, counting its kind and checking that the scaled value
	// still means something at the scaled evaluation interval.
	scale := func(n int, kind, value string) (string, time.Duration) {
		s, d, err := scaleDuration(value)
		if err != nil {
			fail(n, "%s: %v", kind, err)
			return value, 0
		}
		if d != 0 && d < evalInterval {
			fail(n, "%s %s scales to %v, below the %v evaluation interval: choose another timeScale", kind, value, d, evalInterval)
		}
		counts[kind]++
		return s, d
	}

	var (
		alert       string // the alert being read, "" in a recording rule or outside rules
		groupIndent = -1   // indentation of the current group's keys
		ruleIndent  = -1   // indentation of the current rule's keys
		inExpr      bool   // inside a block-scalar expr
		lines       = strings.Split(src, "\n")
		scaledLines = make([]string, 0, len(lines))
	)
	// scaleExpr rewrites one line of PromQL (without its comment).
	scaleExpr := func(n int, code string) string {
		// Work on a copy with string literals blanked, so that label values are never read as
		// numbers or durations; edits are applied right to left.
		masked := quotedRE.ReplaceAllStringFunc(code, func(q string) string { return strings.Repeat("\x00", len(q)) })
		type edit struct {
			start, end int
			with       string
		}
		var edits []edit
		for _, m := range rangeRE.FindAllStringSubmatchIndex(masked, -1) {
			for g := 1; g <= 2; g++ {
				if m[2*g] < 0 {
					continue
				}
				s, _ := scale(n, "range selector", code[m[2*g]:m[2*g+1]])
				edits = append(edits, edit{m[2*g], m[2*g+1], s})
			}
		}
		for _, m := range offsetRE.FindAllStringSubmatchIndex(masked, -1) {
			s, _ := scale(n, "offset", code[m[2]:m[3]])
			edits = append(edits, edit{m[2], m[3], s})
		}
		for _, m := range productRE.FindAllStringIndex(masked, -1) {
			var known []int
			for i, c := range secondsConstants {
				if strings.Contains(masked, c.metric) {
					known = append(known, i)
				}
			}
			if len(known) != 1 {
				fail(n, "%q looks like a duration in seconds, on a line with %d of the metrics scaleRules knows: decide whether it measures the test's time (scale it) or the calendar (keep it) in secondsConstants", code[m[0]:m[1]], len(known))
				continue
			}
			c := secondsConstants[known[0]]
			counts["seconds constant "+c.metric]++
			if c.scale {
				edits = append(edits, edit{m[0], m[1], fmt.Sprintf("(%s / %d)", code[m[0]:m[1]], timeScale)})
			}
		}
		// Any other number of 10 or more may be a duration in seconds (e.g. "> 1800") that the
		// rewrite would leave unscaled.
		rest := []byte(masked)
		for _, e := range edits {
			copy(rest[e.start:e.end], strings.Repeat("\x00", e.end-e.start))
		}
		for _, m := range productRE.FindAllStringIndex(string(rest), -1) {
			copy(rest[m[0]:m[1]], strings.Repeat("\x00", m[1]-m[0]))
		}
		if big := bigNumberRE.FindString(string(rest)); big != "" {
			fail(n, "number %s in an expression may be a duration in seconds: teach scaleRules whether to scale it", big)
		}
		sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
		for _, e := range edits { // right to left: earlier positions stay valid
			code = code[:e.start] + e.with + code[e.end:]
		}
		return code
	}

	for i, line := range lines {
		n := i + 1
		comment := ""
		code := line
		if loc := commentRE.FindStringIndex(line); loc != nil {
			code, comment = line[:loc[0]], line[loc[0]:]
		}
		if strings.TrimSpace(code) == "" {
			scaledLines = append(scaledLines, line)
			continue
		}
		ind := indentOf(code)
		if inExpr && ind > ruleIndent {
			scaledLines = append(scaledLines, scaleExpr(n, code)+comment)
			continue
		}
		inExpr = false
		if m := groupStartRE.FindStringSubmatch(code); m != nil {
			groupIndent, ruleIndent, alert = len(m[1])+2, -1, ""
			scaledLines = append(scaledLines, line)
			continue
		}
		if m := ruleStartRE.FindStringSubmatch(code); m != nil {
			ruleIndent, alert = len(m[1])+2, ""
			if m[2] == "alert" {
				alert = m[3]
				out.forOf[alert] = 0
			}
			scaledLines = append(scaledLines, line)
			continue
		}
		m := keyRE.FindStringSubmatch(code)
		switch {
		case m == nil:
		case ind == groupIndent && m[2] == "interval":
			s, _ := scale(n, "group interval", m[3])
			code = m[1] + "interval: " + s
		case ind == ruleIndent && m[2] == "for":
			s, d := scale(n, "for", m[3])
			code = m[1] + "for: " + s
			if alert != "" {
				out.forOf[alert] = d
			}
		case ind == ruleIndent && m[2] == "keep_firing_for":
			s, _ := scale(n, "keep_firing_for", m[3])
			code = m[1] + "keep_firing_for: " + s
		case ind == ruleIndent && m[2] == "expr":
			if v := m[3]; v != "" && !strings.ContainsAny(v[:1], "|>") {
				code = m[1] + "expr: " + scaleExpr(n, v)
			} else {
				inExpr = true
			}
		}
		scaledLines = append(scaledLines, code+comment)
	}

	for _, kind := range requiredKinds {
		if counts[kind] == 0 {
			problems = append(problems, fmt.Sprintf("no %s found to scale: the rules file changed shape; update scaleRules", kind))
		}
	}
	for _, c := range secondsConstants {
		if counts["seconds constant "+c.metric] == 0 {
			problems = append(problems, fmt.Sprintf("no seconds constant next to %s (%s): the rules file changed; update secondsConstants", c.metric, c.why))
		}
	}
	if len(out.forOf) == 0 {
		problems = append(problems, "no alerting rules found")
	}
	if len(problems) > 0 {
		return out, fmt.Errorf("scaling the rules by 1/%d:\n\t%s", timeScale, strings.Join(problems, "\n\t"))
	}
	out.text = strings.Join(scaledLines, "\n")
	return out, nil
}

// ---------------------------------------------------------------------------------------------
// Alertmanager

var (
	amTimerRE   = regexp.MustCompile(`^(\s*)(group_wait|group_interval|repeat_interval):\s*(\S+)\s*$`)
	amURLRE     = regexp.MustCompile(`^(\s*(?:-\s+)?url:\s*)(['"]?)([^'"\s]+)(['"]?)\s*$`)
	amConfigsRE = regexp.MustCompile(`^\s*(\w+_configs):`)
)

// rewriteAlertmanager returns the Alertmanager configuration with exactly two kinds of change:
//   - every webhook URL points at webhookBase (http://127.0.0.1:port), keeping its path, so the
//     test receives what the member would;
//   - group_wait, group_interval and repeat_interval are divided by timeScale (30s → 500ms,
//     5m → 5s, 12h → 12m), like the rules' durations.
//
// Everything else (routes, matchers, inhibition, send_resolved) is the shipped file; its
// resolve_timeout stays too, since Prometheus sets every alert's end time itself. It fails
// when a rewrite finds nothing to rewrite, or when the file enables a receiver integration other
// than webhooks (which the test cannot redirect, and which would reach the internet).
func rewriteAlertmanager(src, webhookBase string) (string, error) {
	var problems []string
	counts := map[string]int{}
	lines := strings.Split(src, "\n")
	for i, line := range lines {
		code, comment := line, ""
		if loc := commentRE.FindStringIndex(line); loc != nil {
			code, comment = line[:loc[0]], line[loc[0]:]
		}
		if m := amConfigsRE.FindStringSubmatch(code); m != nil && m[1] != "webhook_configs" {
			problems = append(problems, fmt.Sprintf("line %d: %s is enabled; the test can only redirect webhook_configs", i+1, m[1]))
		}
		if m := amTimerRE.FindStringSubmatch(code); m != nil {
			s, _, err := scaleDuration(m[3])
			if err != nil {
				problems = append(problems, fmt.Sprintf("line %d: %s: %v", i+1, m[2], err))
				continue
			}
			counts[m[2]]++
			lines[i] = m[1] + m[2] + ": " + s + comment
			continue
		}
		if m := amURLRE.FindStringSubmatch(code); m != nil {
			u, err := url.Parse(m[3])
			if err != nil || u.Host == "" {
				problems = append(problems, fmt.Sprintf("line %d: webhook URL %q: %v", i+1, m[3], err))
				continue
			}
			counts["webhook url"]++
			lines[i] = m[1] + m[2] + webhookBase + u.EscapedPath() + m[4] + comment
			continue
		}
		if strings.Contains(code, "url") { // url_file, api_url, a URL written another way
			problems = append(problems, fmt.Sprintf("line %d: %q is a URL the test does not know how to redirect", i+1, strings.TrimSpace(code)))
		}
	}
	for _, kind := range []string{"webhook url", "group_wait", "group_interval", "repeat_interval"} {
		if counts[kind] == 0 {
			problems = append(problems, fmt.Sprintf("no %s found to rewrite: the Alertmanager configuration changed shape; update rewriteAlertmanager", kind))
		}
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("rewriting the Alertmanager configuration:\n\t%s", strings.Join(problems, "\n\t"))
	}
	return strings.Join(lines, "\n"), nil
}

// ---------------------------------------------------------------------------------------------
// Checks of the rewrites themselves: fast, and without any external tool.

func TestScaleRulesOfShippedFile(t *testing.T) {
	src := testkit.ReadFile(t, rulesFile)
	got, err := scaleRules(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"interval: 1s",
		"for: 10s # TUNABLE",
		"for: 5s # TUNABLE",
		"keep_firing_for: 12m # TUNABLE",
		"max_over_time(peloton:weekly_streak:healthy[12m])",
		"> (30 * 60 / 60) # TUNABLE: 30m",
		"< 36 * 3600) # TUNABLE: margin", // calendar time: unscaled
		"< 6 * 3600) # TUNABLE",          // token lifetime: unscaled
	} {
		if !strings.Contains(got.text, want) {
			t.Errorf("scaled rules lack %q", want)
		}
	}
	var code strings.Builder // the scaled file without comments, which keep the real values
	for _, line := range strings.Split(got.text, "\n") {
		code.WriteString(commentRE.ReplaceAllString(line, "") + "\n")
	}
	for _, unscaled := range []string{"[12h]", "for: 10m", "interval: 1m", "> 30 * 60"} {
		if strings.Contains(code.String(), unscaled) {
			t.Errorf("scaled rules still contain %q", unscaled)
		}
	}
	if got.forOf["PelotonWeeklyStreakBroken"] != 10*time.Second || got.forOf["PelotonExporterDown"] != 5*time.Second {
		t.Errorf("for durations: %v", got.forOf)
	}
	if strings.Count(src, "\n") != strings.Count(got.text, "\n") {
		t.Error("scaling changed the number of lines")
	}
}

func TestScaleRulesFailsLoudly(t *testing.T) {
	const good = `groups:
  - name: g
    interval: 1m
    rules:
      - alert: A
        expr: max_over_time(x{l="10m 3600"}[12h]) > x # [1d] in a comment
        for: 10m
        keep_firing_for: 1h
        labels:
          severity: warning
        annotations:
          description: >-
            for: 10m is what this text says, and it stays
      - record: stale
        expr: time() - peloton_last_refresh_success_timestamp_seconds > 30 * 60
      - record: source_stale
        expr: time() - peloton_source_last_success_timestamp_seconds > 30 * 60
      - record: week
        expr: |
          peloton_current_week_end_timestamp_seconds - time() < 36 * 3600
            and on() (peloton_auth_token_expiry_timestamp_seconds - time() < 6 * 3600)
`
	got, err := scaleRules(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`max_over_time(x{l="10m 3600"}[12m]) > x # [1d] in a comment`, "for: 10s", "keep_firing_for: 1m",
		"for: 10m is what this text says", "interval: 1s", "> (30 * 60 / 60)", "< 36 * 3600\n", "< 6 * 3600)",
	} {
		if !strings.Contains(got.text, want) {
			t.Errorf("scaled test rules lack %q:\n%s", want, got.text)
		}
	}
	for name, bad := range map[string]string{
		"a bare threshold in seconds": strings.Replace(good, "30 * 60", "1800", 1),
		"an unknown product":          strings.Replace(good, "> x #", "> x * 60 * 60 #", 1),
		"two known metrics, one line": strings.Replace(good, "\n            and on()", " and on()", 1),
		"no keep_firing_for":          strings.Replace(good, "keep_firing_for: 1h", "", 1),
		"no range":                    strings.Replace(good, "[12h]", "", 1),
		"a duration too short":        strings.Replace(good, "for: 10m", "for: 30s", 1),
		"no group interval":           strings.Replace(good, "interval: 1m", "", 1),
		"no staleness constant":       strings.Replace(good, "> 30 * 60", "> 0", 1),
		"a malformed duration":        strings.Replace(good, "for: 10m", "for: 10 minutes", 1),
	} {
		if bad == good {
			t.Fatalf("%s: the replacement did not apply; update this test", name)
		}
		if _, err := scaleRules(bad); err == nil {
			t.Errorf("%s: scaled without complaint", name)
		}
	}
}

func TestRewriteAlertmanagerFailsLoudly(t *testing.T) {
	src := testkit.ReadFile(t, alertmanagerFile)
	got, err := rewriteAlertmanager(src, "http://127.0.0.1:1234")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"group_wait: 500ms", "group_interval: 5s", "repeat_interval: 12m", "url: http://127.0.0.1:1234/peloton\n", "url: http://127.0.0.1:1234/peloton-exporter\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("rewritten configuration lacks %q", want)
		}
	}
	if strings.Contains(got, ":5001") {
		t.Error("a webhook URL was not rewritten")
	}
	for name, bad := range map[string]string{
		"slack enabled":   strings.Replace(src, "    # slack_configs:", "    slack_configs:", 1),
		"no group_wait":   strings.Replace(src, "group_wait:", "# group_wait:", 1),
		"url_file":        strings.Replace(src, "- url: http://127.0.0.1:5001/peloton\n", "- url_file: /x\n", 1),
		"no webhook urls": strings.ReplaceAll(src, "- url: ", "# - url: "),
	} {
		if bad == src {
			t.Fatalf("%s: the replacement did not apply; update this test", name)
		}
		if _, err := rewriteAlertmanager(bad, "http://127.0.0.1:1234"); err == nil {
			t.Errorf("%s: rewritten without complaint", name)
		}
	}
}
