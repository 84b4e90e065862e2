// Offline checks of the deployment files: the Prometheus rules and their unit tests, the example
// Prometheus and Alertmanager configurations, and the Grafana dashboard.
//
// The promtool and amtool checks need those binaries in PATH. Without them the tests are skipped,
// unless the environment variable CI is set: then they fail, so that CI cannot pass silently.
package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/collector"
	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
)

const (
	rulesFile        = "prometheus/peloton-rules.yml"
	rulesTestFile    = "prometheus/peloton-rules.test.yml"
	prometheusConfig = "prometheus/prometheus.yml"
	alertmanagerFile = "alertmanager/alertmanager.yml"
	dashboardFile    = "../grafana/peloton.json"

	dashboardUID  = "peloton-exporter"
	toolTimeout   = 2 * time.Minute
	rateInterval  = "$__rate_interval"
	jobMatcher    = `job=~"$job"`
	instanceMatch = `instance=~"$instance"`
)

// contractMetrics are the metric names the exporter promises (plus Prometheus' own up). Rules and
// dashboard may use no other raw metric.
var contractMetrics = []string{
	"up",
	// overview
	"peloton_workouts",
	"peloton_personal_record_output_joules",
	"peloton_personal_record_timestamp_seconds",
	"peloton_weekly_streak",
	"peloton_weekly_streak_best",
	"peloton_weekly_streak_start_timestamp_seconds",
	"peloton_weekly_streak_derived", // which kind of weekly streak: the rules compare like with like
	"peloton_daily_streak",
	"peloton_daily_streak_start_timestamp_seconds",
	"peloton_achievements",
	// workout history
	"peloton_last_workout_timestamp_seconds",
	"peloton_current_week_workouts",
	"peloton_current_week_end_timestamp_seconds",
	"peloton_workout_in_progress",
	"peloton_output_joules",
	"peloton_workout_duration_seconds",
	"peloton_source_up",
	"peloton_source_last_success_timestamp_seconds", // the alerts gate on the age of their own source
	// training detail
	"peloton_current_week_discipline_workouts",
	"peloton_current_week_workout_duration_seconds",
	"peloton_current_week_output_joules",
	"peloton_current_week_distance_meters",
	"peloton_current_week_energy_burned_joules",
	"peloton_current_week_heart_rate_zone_seconds",
	"peloton_distance_meters",
	"peloton_energy_burned_joules",
	"peloton_heart_rate_zone_seconds",
	"peloton_effort_points",
	"peloton_imported_workouts",
	"peloton_instructor_workouts",
	"peloton_last_workout_output_joules",
	"peloton_last_workout_duration_seconds",
	"peloton_last_workout_average_output_watts",
	"peloton_last_workout_average_cadence_rpm",
	"peloton_last_workout_average_heart_rate_bpm",
	"peloton_last_workout_max_heart_rate_bpm",
	"peloton_last_workout_distance_meters",
	"peloton_last_workout_energy_burned_joules",
	"peloton_last_workout_average_resistance_ratio",
	"peloton_last_workout_average_speed_meters_per_second",
	"peloton_last_workout_effort_points",
	"peloton_last_workout_info",
	"peloton_workout_detail_pending",
	"peloton_cycling_ftp_watts",
	"peloton_cycling_estimated_ftp_watts",
	"peloton_annual_challenge_progress_seconds",
	"peloton_annual_challenge_tier_seconds",
	"peloton_annual_challenge_start_timestamp_seconds",
	"peloton_annual_challenge_end_timestamp_seconds",
	// health
	"peloton_up",
	"peloton_last_refresh_success_timestamp_seconds",
	"peloton_refresh_duration_seconds",
	"peloton_api_requests_total",
	"peloton_auth_token_expiry_timestamp_seconds",
	"peloton_auth_credentials_refused",
	"peloton_exporter_build_info",
}

// contractAlerts are the alert names users route and silence on: exactly these, no others.
var contractAlerts = []string{
	"PelotonWeeklyStreakBroken",
	"PelotonWeeklyStreakAtRisk",
	"PelotonDailyStreakBroken",
	"PelotonNewPersonalRecord",
	"PelotonExporterDown",
	"PelotonExporterAbsent",
	"PelotonRefreshFailing",
	"PelotonDataStale",
	"PelotonAuthExpiringSoon",
	"PelotonAnnualChallengeBehindPace",
	"PelotonCredentialsRefused",
}

// ---------------------------------------------------------------------------------------------
// promtool and amtool

// tool returns the path of an external command, or skips (fails under CI) when it is missing.
func tool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	skipUnderShort(t, name)
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found in PATH: install it (Debian/Ubuntu: apt-get install %s, or a release from https://prometheus.io/download/)", name, debianPackage)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// skipUnderShort skips a test that runs an external tool under go test -short, the fast inner
// loop; ./scripts/test.sh runs them all.
func skipUnderShort(t *testing.T, tool string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("skipped under -short: runs %s (./scripts/test.sh runs it)", tool)
	}
}

// deployFiles are every file the external tools read. Reading them here tells go test's cache
// about them, so that editing only a YAML file still reruns the tests.
var deployFiles = []string{rulesFile, rulesTestFile, prometheusConfig, alertmanagerFile}

// run runs a command with a timeout and fails the test with its output when it does not succeed.
// The timeout ends whatever the command started too (go run's program, for kustomize).
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	for _, f := range deployFiles {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := testkit.CommandContext(ctx, name, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("%s %s: timed out after %v", name, strings.Join(args, " "), toolTimeout)
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestPromtoolCheckRules(t *testing.T) {
	run(t, tool(t, "promtool", "prometheus"), "check", "rules", rulesFile)
}

func TestPromtoolTestRules(t *testing.T) {
	run(t, tool(t, "promtool", "prometheus"), "test", "rules", rulesTestFile)
}

func TestPromtoolCheckConfig(t *testing.T) {
	// Also checks the rule files the configuration names, relative to the configuration.
	run(t, tool(t, "promtool", "prometheus"), "check", "config", prometheusConfig)
}

func TestAmtoolCheckConfig(t *testing.T) {
	run(t, tool(t, "amtool", "prometheus-alertmanager"), "check-config", alertmanagerFile)
}

func TestAlertmanagerRoutes(t *testing.T) {
	amtool := tool(t, "amtool", "prometheus-alertmanager")
	want := map[string]string{
		"PelotonWeeklyStreakBroken": "peloton",
		"PelotonWeeklyStreakAtRisk": "peloton",
		"PelotonDailyStreakBroken":  "peloton",
		"PelotonNewPersonalRecord":  "peloton",
		"PelotonExporterDown":       "peloton-exporter",
		"PelotonExporterAbsent":     "peloton-exporter",
		"PelotonRefreshFailing":     "peloton-exporter",
		"PelotonDataStale":          "peloton-exporter",
		"PelotonAuthExpiringSoon":   "peloton-exporter",
		"PelotonCredentialsRefused": "peloton",

		"PelotonAnnualChallengeBehindPace": "peloton",
	}
	for _, alert := range contractAlerts {
		got := strings.TrimSpace(run(t, amtool, "config", "routes", "test", "--config.file="+alertmanagerFile,
			"alertname="+alert, "job=peloton", "instance=exporter:10070"))
		if got != want[alert] {
			t.Errorf("alert %s is routed to %q, want %q", alert, got, want[alert])
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Rules file: alert names, labels, annotations and metric names

// ruleEntry is one rule of the rules file, read line by line (the standard library has no YAML).
type ruleEntry struct {
	kind, name string   // "alert" or "record", and its name
	lines      []string // the rule's lines, comments removed
}

var (
	ruleStart   = regexp.MustCompile(`^\s*- (alert|record):\s*(\S+)\s*$`)
	yamlComment = regexp.MustCompile(`(^|\s)#.*$`)
)

func readRules(t *testing.T) []ruleEntry {
	t.Helper()
	var rules []ruleEntry
	for _, line := range strings.Split(testkit.ReadFile(t, rulesFile), "\n") {
		line = yamlComment.ReplaceAllString(line, "")
		if m := ruleStart.FindStringSubmatch(line); m != nil {
			rules = append(rules, ruleEntry{kind: m[1], name: m[2]})
			continue
		}
		if len(rules) > 0 && strings.TrimSpace(line) != "" {
			rules[len(rules)-1].lines = append(rules[len(rules)-1].lines, line)
		}
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rules found", rulesFile)
	}
	return rules
}

// expr returns the rule's PromQL expression: `expr: x` or a block scalar `expr: |` and the
// more indented lines that follow it.
func (r ruleEntry) expr() string {
	for i, line := range r.lines {
		trimmed := strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(trimmed, "expr:")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		if rest != "" && !strings.ContainsAny(rest[:1], "|>") {
			return rest
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		var block []string
		for _, next := range r.lines[i+1:] {
			if len(next)-len(strings.TrimLeft(next, " ")) <= indent {
				break
			}
			block = append(block, strings.TrimSpace(next))
		}
		return strings.Join(block, "\n")
	}
	return ""
}

func (r ruleEntry) has(field string) bool {
	for _, line := range r.lines {
		if strings.HasPrefix(strings.TrimSpace(line), field+":") {
			return true
		}
	}
	return false
}

func TestRulesAlertNamesAndAnnotations(t *testing.T) {
	var alerts []string
	for _, r := range readRules(t) {
		if r.kind != "alert" {
			continue
		}
		alerts = append(alerts, r.name)
		for _, field := range []string{"severity", "summary", "description"} {
			if !r.has(field) {
				t.Errorf("alert %s has no %s", r.name, field)
			}
		}
		if !strings.Contains(strings.Join(r.lines, "\n"), "{{") {
			t.Errorf("alert %s: the description should be templated ({{ $labels… }} or {{ $value }})", r.name)
		}
	}
	got, want := slices.Sorted(slices.Values(alerts)), slices.Sorted(slices.Values(contractAlerts))
	if !slices.Equal(got, want) {
		t.Errorf("alert names are a public contract:\n got %v\nwant %v", got, want)
	}
}

func TestRulesUseOnlyContractMetrics(t *testing.T) {
	rules := readRules(t)
	known := map[string]bool{}
	for _, m := range contractMetrics {
		known[m] = true
	}
	for _, r := range rules {
		if r.kind == "record" {
			known[r.name] = true
		}
	}
	for _, r := range rules {
		expr := r.expr()
		if expr == "" {
			t.Errorf("%s %s: no expr found", r.kind, r.name)
			continue
		}
		sels, err := selectors(expr)
		if err != nil {
			t.Errorf("%s %s: %v", r.kind, r.name, err)
		}
		for _, s := range sels {
			if !known[s.name] {
				t.Errorf("%s %s uses %s, which is neither a contract metric nor recorded in %s", r.kind, r.name, s.name, rulesFile)
			}
		}
	}
	// Metric names in annotation templates (query "...") and anywhere else outside comments.
	token := regexp.MustCompile(`\bpeloton[_:][A-Za-z0-9_:]*`)
	for _, r := range rules {
		for _, line := range r.lines {
			for _, name := range token.FindAllString(line, -1) {
				if !known[name] {
					t.Errorf("%s %s mentions %s, which is neither a contract metric nor a recorded one", r.kind, r.name, name)
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Grafana dashboard

type datasourceRef struct{ Type, UID string }

var wantDatasource = datasourceRef{Type: "prometheus", UID: "${datasource}"}

func TestDashboardConventions(t *testing.T) {
	d, raw := testkit.ReadDashboard(t, dashboardFile)

	if d.UID != dashboardUID {
		t.Errorf("uid = %q, want the stable %q (links and provisioning depend on it)", d.UID, dashboardUID)
	}
	if d.Editable == nil || *d.Editable {
		t.Error(`"editable" must be false: the provisioned file is the source of truth`)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion = %d, want >= 36", d.SchemaVersion)
	}
	if d.Inputs != nil {
		t.Error("__inputs found: use the datasource template variable, not import-time inputs")
	}
	if strings.Contains(string(raw), "${DS_") || strings.Contains(string(raw), "$DS_") {
		t.Error("${DS_…} placeholder found: every datasource must be ${datasource}")
	}

	vars := map[string]testkit.Variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || v.Query() != "prometheus" {
		t.Errorf(`want a templating variable "datasource" of type datasource with query prometheus, got %+v`, v)
	}
	// The variables list the targets from peloton_up, which every exporter serves even when it
	// never read the history, and from a series the backfill writes, so that a time range
	// before the first scrape still finds them.
	for name, wantQuery := range map[string]string{
		"job":      `label_values({__name__=~"peloton_up|peloton_current_week_end_timestamp_seconds"}, job)`,
		"instance": `label_values({__name__=~"peloton_up|peloton_current_week_end_timestamp_seconds",job=~"$job"}, instance)`,
	} {
		v, ok := vars[name]
		switch {
		case !ok:
			t.Errorf("templating variable %q missing", name)
		case v.Type != "query" || v.Query() != wantQuery:
			t.Errorf("variable %q: type %q query %q, want query %q", name, v.Type, v.Query(), wantQuery)
		case !v.Multi || !v.IncludeAll:
			t.Errorf("variable %q must be multi-select with an All option", name)
		}
		if ok && !sameDatasource(v.Datasource) {
			t.Errorf("variable %q: datasource %s, want %+v", name, v.Datasource, wantDatasource)
		}
	}

	ids := map[int]string{}
	for _, p := range d.AllPanels() {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		name := fmt.Sprintf("panel %q", p.Title)
		if strings.TrimSpace(p.Description) == "" {
			t.Errorf("%s has no description", name)
		}
		if !sameDatasource(p.Datasource) {
			t.Errorf("%s: datasource %s, want %+v", name, p.Datasource, wantDatasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s has no queries", name)
		}
		for _, tg := range p.Targets {
			where := fmt.Sprintf("%s query %s", name, tg.RefID)
			if !sameDatasource(tg.Datasource) {
				t.Errorf("%s: datasource %s, want %+v", where, tg.Datasource, wantDatasource)
			}
			for _, problem := range checkDashboardExpr(tg.Expr) {
				t.Errorf("%s: %s\n\t%s", where, problem, tg.Expr)
			}
		}
	}
}

func sameDatasource(raw json.RawMessage) bool {
	var ref datasourceRef
	return json.Unmarshal(raw, &ref) == nil && ref == wantDatasource
}

// checkDashboardExpr lists what breaks the dashboard conventions in one query.
func checkDashboardExpr(expr string) []string {
	var problems []string
	if strings.TrimSpace(expr) == "" {
		return []string{"empty expression"}
	}
	sels, err := selectors(expr)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(sels) == 0 {
		problems = append(problems, "no metric selector")
	}
	for _, s := range sels {
		if !slices.Contains(contractMetrics, s.name) {
			problems = append(problems, fmt.Sprintf("%s is not an exporter metric", s.name))
		}
		compact := strings.Join(strings.Fields(s.matchers), "")
		if !strings.Contains(compact, jobMatcher) || !strings.Contains(compact, instanceMatch) {
			problems = append(problems, fmt.Sprintf("selector %s{%s} lacks %s and %s", s.name, s.matchers, jobMatcher, instanceMatch))
		}
	}
	for _, r := range rangesOf(expr) {
		if r != rateInterval && r != historyLookback {
			problems = append(problems, fmt.Sprintf("range [%s]: use [%s], or [%s] in last_over_time for a backfilled series", r, rateInterval, historyLookback))
		}
	}
	problems = append(problems, checkHistoryLookback(expr)...)
	for _, call := range rateCalls(expr) {
		if !strings.Contains(call, "["+rateInterval+"]") {
			problems = append(problems, fmt.Sprintf("%s without [%s]", call, rateInterval))
		}
	}
	return problems
}

// historyLookback is the window through which the dashboard reads every series the backfill
// writes: the backfill writes each of them at least once a day (backfill.DefaultStep), so
// that PromQL's 5-minute lookback cannot make the past invisible.
const historyLookback = "1d"

// backfilled are the metrics the backfill writes, from the collector's own list of the
// series the history gives (peloton_workout_in_progress, written every few minutes during a
// workout, is read as is).
var backfilled = func() map[string]bool {
	out := map[string]bool{}
	for _, name := range collector.HistoryMetricNames() {
		if name != "peloton_workout_in_progress" {
			out[name] = true
		}
	}
	return out
}()

// checkHistoryLookback finds backfilled series read otherwise than through
// last_over_time(…[1d]).
func checkHistoryLookback(expr string) []string {
	var problems []string
	for i := 0; i < len(expr); {
		if c := expr[i]; c == '"' || c == '\'' || c == '`' {
			i = skipString(expr, i)
			continue
		}
		if !isIdentStart(expr[i]) || (i > 0 && isIdentChar(expr[i-1])) {
			i++
			continue
		}
		j := i
		for j < len(expr) && isIdentChar(expr[j]) {
			j++
		}
		name := expr[i:j]
		if backfilled[name] {
			end := j
			if end < len(expr) && expr[end] == '{' {
				end = closing(expr, end) + 1
			}
			wrapped := strings.HasSuffix(strings.TrimRight(expr[:i], " "), "last_over_time(") &&
				strings.HasPrefix(strings.TrimLeft(expr[min(end, len(expr)):], " "), "["+historyLookback+"]")
			if !wrapped {
				problems = append(problems, fmt.Sprintf("%s is backfilled: read it as last_over_time(%s{…}[%s]), or the past shows gaps", name, name, historyLookback))
			}
		}
		i = j
	}
	return problems
}

// ---------------------------------------------------------------------------------------------
// A small PromQL scanner: enough to find metric selectors, ranges and rate() calls.

type selector struct{ name, matchers string }

var (
	// Keywords followed by a parenthesised label list, which holds no metric names.
	labelListKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	operatorKeywords  = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true}
	// Aggregations may put their label list before the parenthesis: sum by (x) (…).
	aggregations = map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
		"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true}
)

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// skipString returns the index just after the string literal starting at s[i].
func skipString(s string, i int) int {
	quote := s[i]
	for i++; i < len(s); i++ {
		if s[i] == '\\' && quote != '`' {
			i++
		} else if s[i] == quote {
			return i + 1
		}
	}
	return len(s)
}

// closing returns the index of the bracket closing the one at s[i], skipping strings.
func closing(s string, i int) int {
	open, shut := s[i], map[byte]byte{'(': ')', '{': '}', '[': ']'}[s[i]]
	depth := 0
	for j := i; j < len(s); {
		switch c := s[j]; {
		case c == '"' || c == '\'' || c == '`':
			j = skipString(s, j)
			continue
		case c == open:
			depth++
		case c == shut:
			depth--
			if depth == 0 {
				return j
			}
		}
		j++
	}
	return len(s)
}

func skipSpaces(s string, i int) int {
	for i < len(s) && strings.ContainsRune(" \t\r\n", rune(s[i])) {
		i++
	}
	return i
}

// selectors returns the metric selectors of a PromQL expression (comments are allowed).
func selectors(expr string) ([]selector, error) {
	var sels []selector
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '#': // comment to the end of the line
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '{':
			return sels, fmt.Errorf("selector without a metric name at %q", expr[i:])
		case c == '[': // a range: checked elsewhere
			i = closing(expr, i) + 1
		case c >= '0' && c <= '9' || c == '.' || c == '$': // numbers, durations, variables
			for i++; i < len(expr) && (isIdentChar(expr[i]) || expr[i] == '.'); i++ {
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdentChar(expr[i]) {
				i++
			}
			name, next := expr[start:i], skipSpaces(expr, i)
			switch {
			case labelListKeywords[name]:
				if next < len(expr) && expr[next] == '(' {
					i = closing(expr, next) + 1
				}
			case operatorKeywords[name], aggregations[name]:
			case next < len(expr) && expr[next] == '(': // a function or aggregation
			case next < len(expr) && expr[next] == '{':
				end := closing(expr, next)
				sels = append(sels, selector{name: name, matchers: expr[next+1 : min(end, len(expr))]})
				i = end + 1
			default:
				sels = append(sels, selector{name: name})
			}
		default:
			i++
		}
	}
	return sels, nil
}

// rangesOf returns the contents of every [...] range in the expression.
func rangesOf(expr string) []string {
	var out []string
	for i := 0; i < len(expr); {
		switch expr[i] {
		case '"', '\'', '`':
			i = skipString(expr, i)
		case '[':
			end := closing(expr, i)
			out = append(out, strings.TrimSpace(expr[i+1:min(end, len(expr))]))
			i = end + 1
		default:
			i++
		}
	}
	return out
}

var rateCall = regexp.MustCompile(`\b(rate|irate|increase)\s*\(`)

// rateCalls returns every rate(…), irate(…) and increase(…) call in full.
func rateCalls(expr string) []string {
	var out []string
	for _, m := range rateCall.FindAllStringIndex(expr, -1) {
		end := closing(expr, m[1]-1)
		out = append(out, expr[m[0]:min(end+1, len(expr))])
	}
	return out
}

func TestDashboardLayout(t *testing.T) {
	d, _ := testkit.ReadDashboard(t, dashboardFile)
	type rect struct {
		title      string
		x, y, w, h int
	}
	var rects []rect
	for _, p := range d.Panels { // top level only: a collapsed row lays out its own panels
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		rects = append(rects, rect{p.Title, g.X, g.Y, g.W, g.H})
	}
	sort.Slice(rects, func(i, j int) bool { return rects[i].y < rects[j].y })
	for i, a := range rects {
		for _, b := range rects[i+1:] {
			if a.x < b.x+b.w && b.x < a.x+a.w && a.y < b.y+b.h && b.y < a.y+a.h {
				t.Errorf("panels %q and %q overlap", a.title, b.title)
			}
		}
	}
	if len(d.Panels) == 0 || d.Panels[0].Type != "row" {
		t.Error("the dashboard should start with a row")
	}
}

// TestScanner keeps the checks above honest: they must catch what they claim to catch.
func TestScanner(t *testing.T) {
	for _, good := range []string{
		`sum by (endpoint, code) (rate(peloton_api_requests_total{job=~"$job",instance=~"$instance"}[$__rate_interval])) or on() vector(0)`,
		`sum by (instance) (last_over_time(peloton_workouts{job=~"$job",instance=~"$instance"}[1d]))`,
		`sum(peloton_workout_in_progress{job=~"$job",instance=~"$instance"})`,
	} {
		if p := checkDashboardExpr(good); len(p) != 0 {
			t.Errorf("good query rejected: %v", p)
		}
	}
	for _, bad := range []string{
		`peloton_up`,
		`peloton_up{job=~"$job"}`,
		`up{instance=~"$instance"}`,
		`rate(peloton_api_requests_total{job=~"$job",instance=~"$instance"}[5m])`,
		`increase(peloton_api_requests_total{job=~"$job",instance=~"$instance"}[1h:5m])`,
		`peloton_typo{job=~"$job",instance=~"$instance"}`,
		`{__name__="peloton_up"}`,
		`peloton_up{job=~"$job",instance=~"$instance"} / on(job) node_load1`,
		`peloton_workouts{job=~"$job",instance=~"$instance"}`,                     // backfilled, read bare
		`max_over_time(peloton_workouts{job=~"$job",instance=~"$instance"}[1d])`,  // not last_over_time
		`last_over_time(peloton_workouts{job=~"$job",instance=~"$instance"}[2h])`, // too short for the daily samples
		`last_over_time(peloton_up{job=~"$job",instance=~"$instance"}[3d])`,       // a range of no convention
	} {
		if p := checkDashboardExpr(bad); len(p) == 0 {
			t.Errorf("bad query accepted: %s", bad)
		}
	}
	got, _ := selectors("max_over_time(peloton:weekly_streak:healthy[12h]) # comment: peloton_nope\n > on(job, instance) peloton:weekly_streak:healthy")
	want := []selector{{name: "peloton:weekly_streak:healthy"}, {name: "peloton:weekly_streak:healthy"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("selectors = %+v, want %+v", got, want)
	}
}
