package e2e_test

// The proof of issue 13: the simulated member's history, backfilled with the real binary, made
// into blocks by the real promtool and read by the real Prometheus, gives every dashboard query
// at moments of the past the same answer as the live exporter would have given then, and makes
// no alert fire.
//
// "What the live exporter would have given then" is the real collector, in this process, fed a
// Peloton that shows the history as it stood at that moment (pastPeloton below) and whose
// overview counts and records the test computes itself from the workout list. Its answers are
// written as three scrapes before the moment, under another instance label, into the same
// Prometheus; each dashboard query is then run at the moment for both instances.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/collector"
	"github.com/peloton-exporter/peloton_exporter/internal/testkit"
	"github.com/peloton-exporter/peloton_exporter/simulator"
)

const (
	backfilledInstance = "rider:10070" // as Prometheus would label the exporter's target
	oracleInstance     = "oracle:10070"
)

func TestBackfillEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: runs the exporter, promtool and Prometheus for about a minute (./scripts/test.sh runs it)")
	}
	promBin := tool(t, "prometheus", "prometheus")
	promtool := tool(t, "prometheus", "promtool")
	bin := filepath.Join(t.TempDir(), "peloton_exporter")
	if err := testkit.BuildExporter("..", bin); err != nil {
		t.Fatal(err)
	}

	// A member whose clock stands still, with imports, in America/Chicago.
	now := time.Now().UTC().Truncate(time.Second)
	sim, err := simulator.Start(simulator.Config{Now: simulator.NewClock(now).Now, Imports: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	loc, _ := time.LoadLocation("America/Chicago")
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")

	// 1. The exporter keeps the history and fetches each workout's detail, as it would over
	// half an hour, in seconds.
	fillHistory(t, bin, sim, dir, state)

	// 2. The backfill reads that history, and sends nothing to Peloton (no credentials: a
	// request would fail loudly).
	before := simRequests(sim)
	// A minute ago rather than the default 3h: Prometheus' head is empty here, and the rules,
	// evaluated now, see the newest backfilled samples (checkNoAlerts).
	until := time.Now().Add(-time.Minute).Truncate(time.Second)
	omFile := filepath.Join(dir, "peloton.om")
	out := runCommand(t, dir, bin, "backfill", "--peloton.state-file="+state, "--label=job="+job,
		"--label=instance="+backfilledInstance, "--until="+until.Format(time.RFC3339), "--output="+omFile)
	if after := simRequests(sim); !maps.Equal(before, after) {
		t.Fatalf("the backfill sent requests to Peloton: %v, then %v", before, after)
	}
	written := loggedInt(t, out, "samples")

	// 3. The moments, and what the live exporter would have exported at each.
	workouts := memberWorkouts(t, sim)
	moments := pickMoments(t, workouts, until, loc)
	oracleFile := filepath.Join(dir, "oracle.om")
	oracleSamples := writeOracle(t, sim, workouts, moments, oracleFile)

	// 4. Blocks from both, checked to hold every sample written: an out-of-order or duplicate
	// sample is dropped by promtool without a word.
	data := filepath.Join(dir, "data")
	for _, f := range []string{omFile, oracleFile} {
		runCommand(t, dir, promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=8760h", f, data)
	}
	if got := blockSamples(t, dir, promtool, data); got != written+oracleSamples {
		t.Fatalf("the blocks hold %d samples, %d were written (%d backfilled, %d by the oracle)", got, written+oracleSamples, written, oracleSamples)
	}

	// 5. Prometheus on those blocks, with the rules (scaled, evaluated every second).
	prom := startBackfillPrometheus(t, promBin, dir, data)

	for _, m := range moments {
		t.Run(m.name, func(t *testing.T) {
			compareDashboard(t, prom, m.at)
			checkIndependently(t, prom, workouts, m.at, loc)
		})
	}
	t.Run("range queries have no gaps", func(t *testing.T) { checkRanges(t, prom, workouts, moments[0].at, loc) })
	t.Run("no alert from the backfill", func(t *testing.T) { checkNoAlerts(t, prom) })
}

// fillHistory runs the exporter until it kept every workout's detail, then stops it.
func fillHistory(t *testing.T, bin string, sim *simulator.Simulator, dir, state string) {
	t.Helper()
	addr := testkit.FreeAddr(t)
	p := startProcess(t, t, "exporter", dir,
		append(testkit.SimulatorEnv(t, sim), "PELOTON_USERNAME="+simulator.DemoUsername, "PELOTON_PASSWORD="+simulator.DemoPassword),
		bin, "--peloton.state-file="+state, "--peloton.detail-interval=1ms", "--web.listen-address="+addr)
	p.waitReady(t, "http://"+addr+"/")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		body := rawGet("http://" + addr + "/metrics")
		if regexp.MustCompile(`(?m)^peloton_workout_detail_pending 0$`).MatchString(body) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the exporter did not fetch every workout's detail within 3 minutes:\n%s", tail(p.Out.String(), outputTail))
		}
		time.Sleep(pollEvery)
	}
	if err := p.Stop(); err != nil && !isTermination(err) {
		t.Fatalf("stopping the exporter: %v\n%s", err, tail(p.Out.String(), outputTail))
	}
}

func simRequests(sim *simulator.Simulator) map[string]int {
	m := map[string]int{}
	for _, ep := range []string{simulator.EndpointAuthorize, simulator.EndpointLogin, simulator.EndpointToken, simulator.EndpointMe,
		simulator.EndpointOverview, simulator.EndpointWorkouts, simulator.EndpointPerformanceGraph, simulator.EndpointSettings,
		simulator.EndpointChallenges, simulator.EndpointChallenge} {
		m[ep] = sim.Requests(ep)
	}
	return m
}

// runCommand runs a command to its end, within a few minutes, and returns its output.
func runCommand(t *testing.T, dir, path string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := testkit.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(path), strings.Join(args, " "), err, tail(string(out), outputTail))
	}
	return string(out)
}

func loggedInt(t *testing.T, out, key string) int {
	t.Helper()
	m := regexp.MustCompile(`\b` + key + `=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s= in the output:\n%s", key, tail(out, outputTail))
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// blockSamples sums the samples of every block in data, as promtool lists them.
func blockSamples(t *testing.T, dir, promtool, data string) int {
	t.Helper()
	out := runCommand(t, dir, promtool, "tsdb", "list", data)
	total := 0
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 5 {
			n, err := strconv.Atoi(f[4])
			if err != nil {
				t.Fatalf("promtool tsdb list: %q", line)
			}
			total += n
		}
	}
	return total
}

// memberWorkouts is the member's workout list as Peloton gives it, read through the client.
func memberWorkouts(t *testing.T, sim *simulator.Simulator) []client.Workout {
	t.Helper()
	c := simClient(t, sim)
	var all []client.Workout
	for page := 0; page < 100; page++ {
		p, err := c.Workouts(context.Background(), page, 100)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Data...)
		if p.ShowNext == nil || !*p.ShowNext {
			return all
		}
	}
	t.Fatal("the workout list does not end")
	return nil
}

func simClient(t *testing.T, sim *simulator.Simulator) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Transport: sim.Transport(), Username: simulator.DemoUsername, Password: simulator.DemoPassword})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type moment struct {
	name string
	at   time.Time
}

// pickMoments chooses: a year back; a Sunday noon in a week across the end of daylight-saving
// time (the week is 169 hours long); and the middle of a week without a workout that broke a
// running streak.
func pickMoments(t *testing.T, ws []client.Workout, until time.Time, loc *time.Location) []moment {
	t.Helper()
	yearBack := until.AddDate(-1, 0, 0)
	y := until.In(loc).Year() - 2
	nov1 := time.Date(y, 11, 1, 12, 0, 0, 0, loc)
	dstSunday := nov1.AddDate(0, 0, (7-int(nov1.Weekday()))%7) // the first Sunday of November
	var broke time.Time
	for week := mondayOf(until.AddDate(0, 0, -21), loc); week.After(time.Unix(int64(oldestStart(ws)), 0)); week = week.AddDate(0, 0, -7) {
		if !hasWorkout(ws, week, week.AddDate(0, 0, 7)) && hasWorkout(ws, week.AddDate(0, 0, -7), week) {
			broke = week.AddDate(0, 0, 2).Add(12 * time.Hour) // Wednesday noon
			break
		}
	}
	if broke.IsZero() {
		t.Fatal("the simulated member has no week that broke a streak")
	}
	var during time.Time // 10½ minutes into the newest long workout that ended days before the end
	for _, w := range ws {
		start, end := w.StartTime.Value, w.EndTime.Value
		if w.Status == "COMPLETE" && end-start >= 20*60 && end < float64(until.AddDate(0, 0, -2).Unix()) && start > float64(during.Unix()) {
			during = time.Unix(int64(start)+10*60+30, 0)
		}
	}
	if during.IsZero() {
		t.Fatal("the simulated member has no workout of 20 minutes or more")
	}
	m := []moment{{"a year back", yearBack}, {"across the end of DST", dstSunday}, {"in a week that broke the streak", broke},
		{"during a workout", during}}
	sort.Slice(m, func(i, j int) bool { return m[i].at.Before(m[j].at) })
	return m
}

func mondayOf(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	y, mo, d := t.Date()
	return time.Date(y, mo, d-(int(t.Weekday())+6)%7, 0, 0, 0, 0, loc)
}

func oldestStart(ws []client.Workout) float64 {
	oldest := math.Inf(1)
	for _, w := range ws {
		if w.StartTime.Valid {
			oldest = min(oldest, w.StartTime.Value)
		}
	}
	return oldest
}

func hasWorkout(ws []client.Workout, from, to time.Time) bool {
	for _, w := range ws {
		if w.Status == "COMPLETE" && w.StartTime.Value >= float64(from.Unix()) && w.StartTime.Value < float64(to.Unix()) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------------------------
// The oracle: the live collector at a past moment

// pastPeloton is Peloton as it stood at a past moment: the workouts started by then (those not
// ended yet in progress), an overview whose counts and records the test computes from them,
// and the simulator's own graphs and settings.
type pastPeloton struct {
	at     time.Time
	all    []client.Workout
	names  map[string]string
	userID string
	sim    *client.Client
}

func (p *pastPeloton) Me(context.Context) (*client.Me, error) {
	return &client.Me{ID: client.Text(p.userID), Timezone: "America/Chicago"}, nil
}

func (p *pastPeloton) UserID(context.Context) (string, error) { return p.userID, nil }

func (p *pastPeloton) asOf() []client.Workout {
	var out []client.Workout
	for _, w := range p.all {
		if !w.StartTime.Valid || w.StartTime.Value > float64(p.at.Unix()) {
			continue
		}
		if w.EndTime.Valid && w.EndTime.Value > float64(p.at.Unix()) {
			w.Status, w.EndTime = "IN_PROGRESS", client.Number{}
		}
		out = append(out, w)
	}
	return out
}

func (p *pastPeloton) Overview(context.Context) (*client.Overview, error) {
	counts := map[string]float64{}
	type rec struct {
		joules, start float64
	}
	records := map[string]map[int]rec{}
	for _, w := range p.asOf() {
		if w.Status != "COMPLETE" || w.FitnessDiscipline == "" {
			continue
		}
		d := string(w.FitnessDiscipline)
		counts[d]++
		if w.IsPersonalRecord && w.TotalWork.Value > 0 && w.Ride != nil && w.Ride.Duration.Value > 0 {
			if records[d] == nil {
				records[d] = map[int]rec{}
			}
			l := int(w.Ride.Duration.Value)
			if r, ok := records[d][l]; !ok || w.StartTime.Value >= r.start {
				records[d][l] = rec{w.TotalWork.Value, w.StartTime.Value}
			}
		}
	}
	ov := &client.Overview{WorkoutCounts: &client.WorkoutCounts{}}
	for slug, n := range counts {
		ov.WorkoutCounts.Workouts = append(ov.WorkoutCounts.Workouts, client.WorkoutCount{
			Slug: client.Text(slug), Name: client.Text(p.names[slug]), Count: client.Number{Value: n, Valid: true}})
	}
	for slug, byLength := range records {
		g := client.RecordGroup{Slug: client.Text(slug)}
		for l, r := range byLength {
			g.Records = append(g.Records, client.Record{Slug: client.Text(strconv.Itoa(l)), UnitSlug: "kj",
				RawValue:    client.Number{Value: r.joules, Valid: true},
				WorkoutDate: client.Text(time.Unix(int64(r.start), 0).UTC().Format("2006-01-02T15:04:05"))})
		}
		ov.PersonalRecords = append(ov.PersonalRecords, g)
	}
	return ov, nil
}

func (p *pastPeloton) Workouts(_ context.Context, page, _ int) (*client.WorkoutPage, error) {
	no := false
	wp := &client.WorkoutPage{ShowNext: &no}
	if page == 0 {
		wp.Data = p.asOf()
		wp.Total = client.Number{Value: float64(len(wp.Data)), Valid: true}
	}
	return wp, nil
}

func (p *pastPeloton) PerformanceGraph(ctx context.Context, id string) (*client.PerformanceGraph, error) {
	return p.sim.PerformanceGraph(ctx, id)
}
func (p *pastPeloton) Settings(ctx context.Context) (*client.Settings, error) {
	return p.sim.Settings(ctx)
}
func (p *pastPeloton) Challenges(context.Context) (*client.Challenges, error) {
	return &client.Challenges{}, nil
}
func (p *pastPeloton) Challenge(context.Context, string) (*client.Challenge, error) {
	return nil, errors.New("no challenge")
}
func (p *pastPeloton) Stats() []client.RequestCount   { return nil }
func (p *pastPeloton) TokenExpiry() (time.Time, bool) { return time.Time{}, false }

// writeOracle writes what the live exporter exports at each moment, as three scrapes a minute
// apart, under oracleInstance; only the series a backfill writes. It returns the samples
// written.
func writeOracle(t *testing.T, sim *simulator.Simulator, all []client.Workout, moments []moment, path string) int {
	t.Helper()
	c := simClient(t, sim)
	names := map[string]string{}
	ov, err := c.Overview(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ov.WorkoutCounts.Workouts {
		names[string(w.Slug)] = string(w.Name)
	}
	backfilled := map[string]bool{}
	for _, n := range collector.HistoryMetricNames() {
		backfilled[n] = true
	}
	families := map[string][]string{} // name -> sample lines, in time order per series
	for _, m := range moments {
		src := &pastPeloton{at: m.at, all: all, names: names, userID: sim.UserID(), sim: c}
		exp := collector.New(src, collector.Options{Now: func() time.Time { return m.at }, WeekStart: time.Monday,
			DetailInterval: time.Millisecond, Logger: log.NewNopLogger()})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		exp.Refresh(ctx)
		cancel()
		for deadline := time.Now().Add(2 * time.Minute); !exp.DetailIdle() || !detailFilled(t, exp); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the oracle's detail was not filled", m.name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(exp)
		mfs, err := reg.Gather()
		exp.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if !backfilled[mf.GetName()] {
				continue
			}
			for _, mt := range mf.GetMetric() {
				series := omSeries(mf.GetName(), mt.GetLabel())
				for _, back := range []int64{120, 60, 0} {
					families[mf.GetName()] = append(families[mf.GetName()],
						fmt.Sprintf("%s %s %d", series, strconv.FormatFloat(mt.GetGauge().GetValue(), 'g', -1, 64), m.at.Unix()-back))
				}
			}
		}
	}
	var b bytes.Buffer
	n := 0
	for _, name := range slices.Sorted(maps.Keys(families)) {
		lines := families[name]
		// Families together, each series in time order: group the lines by series.
		sort.SliceStable(lines, func(i, j int) bool { return seriesOf(lines[i]) < seriesOf(lines[j]) })
		fmt.Fprintf(&b, "# TYPE %s gauge\n", name)
		for _, l := range lines {
			b.WriteString(l + "\n")
			n++
		}
	}
	b.WriteString("# EOF\n")
	writeFile(t, path, b.String())
	return n
}

func detailFilled(t *testing.T, exp prometheus.Collector) bool {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(exp)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "peloton_workout_detail_pending" {
			return mf.GetMetric()[0].GetGauge().GetValue() == 0
		}
	}
	return false
}

func omSeries(name string, labels []*dto.LabelPair) string {
	parts := []string{`job="` + job + `"`, `instance="` + oracleInstance + `"`}
	for _, l := range labels {
		parts = append(parts, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

func seriesOf(line string) string {
	return line[:strings.LastIndexByte(line[:strings.LastIndexByte(line, ' ')], ' ')]
}

// ---------------------------------------------------------------------------------------------
// Prometheus and the comparisons

func startBackfillPrometheus(t *testing.T, promBin, dir, data string) promClient {
	t.Helper()
	rules, err := scaleRules(testkit.ReadFile(t, rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "peloton-rules.yml"), rules.text)
	config := filepath.Join(dir, "prometheus.yml")
	writeFile(t, config, fmt.Sprintf("global:\n  evaluation_interval: %s\nrule_files:\n  - peloton-rules.yml\n", formatPromDuration(evalInterval)))
	addr := testkit.FreeAddr(t)
	p := startProcess(t, t, "prometheus", dir, nil, promBin, "--config.file="+config, "--storage.tsdb.path="+data,
		"--storage.tsdb.retention.time=20y", "--web.listen-address="+addr, "--log.level=warn")
	prom := promClient{base: "http://" + addr}
	p.waitReady(t, prom.base+"/-/ready")
	return prom
}

// compareDashboard runs every dashboard query at the moment for the backfilled instance and
// the oracle's: those that read only backfilled series must agree and have data; the others
// must have none for the backfilled instance (the backfill writes nothing it cannot know).
func compareDashboard(t *testing.T, prom promClient, at time.Time) {
	t.Helper()
	targets, _ := readDashboard(t)
	backfilled := map[string]bool{"up": false}
	for _, n := range collector.HistoryMetricNames() {
		backfilled[n] = true
	}
	compared := 0
	for _, tg := range targets {
		names := regexp.MustCompile(`\b(peloton_[a-z_]+|up)\{`).FindAllStringSubmatch(tg.expr, -1)
		onlyBackfilled := len(names) > 0
		for _, n := range names {
			onlyBackfilled = onlyBackfilled && backfilled[n[1]]
		}
		got := queryAt(t, prom, tg.where, tg.expr, backfilledInstance, at)
		if !onlyBackfilled {
			if len(got) > 0 && !strings.Contains(tg.expr, "vector(0)") {
				t.Errorf("%s: data for the backfilled past, which the backfill cannot know: %v\n\t%s", tg.where, got, tg.expr)
			}
			continue
		}
		want := queryAt(t, prom, tg.where, tg.expr, oracleInstance, at)
		compared++
		if len(want) == 0 {
			t.Errorf("%s: the live exporter would have had no data: a query the test cannot compare\n\t%s", tg.where, tg.expr)
			continue
		}
		for k, v := range want {
			g, ok := got[k]
			switch {
			case !ok:
				t.Errorf("%s at %s: %s = %v live, missing from the backfill\n\t%s", tg.where, at.Format(time.RFC3339), k, v, tg.expr)
			case math.Abs(g-v) > 1e-9*math.Max(1, math.Abs(v)):
				t.Errorf("%s at %s: %s = %v backfilled, %v live\n\t%s", tg.where, at.Format(time.RFC3339), k, g, v, tg.expr)
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s at %s: %s = %v backfilled, absent live\n\t%s", tg.where, at.Format(time.RFC3339), k, v, tg.expr)
			}
		}
	}
	if compared < 20 {
		t.Errorf("only %d dashboard queries compared", compared)
	}
	if !t.Failed() {
		t.Logf("at %s: %d dashboard queries agree with the live exporter's answers", at.Format(time.RFC3339), compared)
	}
}

// queryAt runs a dashboard query at a moment for one instance: its results by their labels
// without the instance.
func queryAt(t *testing.T, prom promClient, where, expr, instance string, at time.Time) map[string]float64 {
	t.Helper()
	e, err := substitute(expr, grafanaVariables(instance))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	res, err := prom.queryAt(e, at)
	if err != nil {
		t.Fatalf("%s: %v\n\t%s", where, err, e)
	}
	out := map[string]float64{}
	for _, s := range res {
		delete(s.Metric, "instance")
		out[fmt.Sprint(s.Metric)] = s.value()
	}
	return out
}

// checkIndependently compares a few values with the test's own count of the workouts: the
// workouts done by then, the disciplines with a workout going on, and the weekly streak,
// counted in calendar weeks of the member's zone.
func checkIndependently(t *testing.T, prom promClient, ws []client.Workout, at time.Time, loc *time.Location) {
	t.Helper()
	done := 0.0
	going := map[string]bool{}
	for _, w := range ws {
		if w.Status != "COMPLETE" || !w.EndTime.Valid {
			continue
		}
		switch {
		case w.EndTime.Value <= float64(at.Unix()):
			done++
		case w.StartTime.Value <= float64(at.Unix()):
			going[string(w.FitnessDiscipline)] = true
		}
	}
	sel := fmt.Sprintf(`{job=%q,instance=%q}`, job, backfilledInstance)
	if got := value(t, prom, "sum(last_over_time(peloton_workouts"+sel+"[1d]))", at); got != done {
		t.Errorf("at %s: %v workouts backfilled, %v done by then", at, got, done)
	}
	if got := value(t, prom, "sum(peloton_workout_in_progress"+sel+") or vector(0)", at); got != float64(len(going)) {
		t.Errorf("at %s: %v disciplines in progress backfilled, %d going on then", at, got, len(going))
	}
	if got, want := value(t, prom, "last_over_time(peloton_weekly_streak"+sel+"[1d])", at), float64(streakAt(ws, at, loc)); got != want {
		t.Errorf("at %s: weekly streak %v backfilled, %v counted", at, got, want)
	}
}

// streakAt counts the weeks in a row, back from the current one (or the one before while the
// current has none), with a workout completed by t and started in them.
func streakAt(ws []client.Workout, at time.Time, loc *time.Location) int {
	active := map[int64]bool{}
	for _, w := range ws {
		if w.Status == "COMPLETE" && w.EndTime.Valid && w.EndTime.Value <= float64(at.Unix()) {
			active[mondayOf(time.Unix(int64(w.StartTime.Value), 0), loc).Unix()] = true
		}
	}
	week := mondayOf(at, loc)
	if !active[week.Unix()] {
		week = week.AddDate(0, 0, -7)
	}
	n := 0
	for ; active[week.Unix()]; week = week.AddDate(0, 0, -7) {
		n++
	}
	return n
}

func value(t *testing.T, prom promClient, expr string, at time.Time) float64 {
	t.Helper()
	res, err := prom.queryAt(expr, at)
	if err != nil || len(res) != 1 {
		t.Fatalf("%s at %s: %v %v", expr, at, res, err)
	}
	return res[0].value()
}

// checkRanges: over the four weeks before a moment, at an hourly step that falls between the
// daily samples, the streak and the totals have a value at every step, and the streak is the
// one the test counts at that step.
func checkRanges(t *testing.T, prom promClient, ws []client.Workout, end time.Time, loc *time.Location) {
	t.Helper()
	start := end.Add(-28 * 24 * time.Hour)
	step := time.Hour + 7*time.Minute // off any grid
	sel := fmt.Sprintf(`{job=%q,instance=%q}`, job, backfilledInstance)
	steps := int(end.Sub(start)/step) + 1
	for _, expr := range []string{
		"last_over_time(peloton_weekly_streak" + sel + "[1d])",
		"sum(last_over_time(peloton_workouts" + sel + "[1d]))",
		"sum(last_over_time(peloton_workout_duration_seconds" + sel + "[1d]))",
		"last_over_time(peloton_current_week_workouts" + sel + "[1d])",
	} {
		series, err := prom.queryRange(expr, start, end, step)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if len(series) != 1 || len(series[0]) != steps {
			t.Errorf("%s: %d series, want one with %d points (no gaps)", expr, len(series), steps)
			continue
		}
		if strings.Contains(expr, "weekly_streak") {
			for _, p := range series[0] {
				if want := float64(streakAt(ws, p.at, loc)); p.v != want {
					t.Errorf("streak at %s: %v, counted %v", p.at, p.v, want)
				}
			}
		}
	}
}

// checkNoAlerts: with the rules evaluated every second over backfilled data alone, no alert but
// the one that says no exporter is scraped is pending or firing: the data alerts gate on up
// and peloton_source_up, which a backfill never writes.
func checkNoAlerts(t *testing.T, prom promClient) {
	t.Helper()
	time.Sleep(5 * evalInterval)
	// The check means something only if the rules can see the backfilled series now.
	sel := fmt.Sprintf(`{job=%q,instance=%q}`, job, backfilledInstance)
	if res, err := prom.queryAt("peloton_weekly_streak"+sel, time.Now()); err != nil || len(res) != 1 {
		t.Fatalf("the backfilled streak is not visible now (%v, %v): the rules could not see it either", res, err)
	}
	alerts, err := prom.alerts()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if a.Labels["alertname"] != "PelotonExporterAbsent" {
			t.Errorf("alert from backfilled data: %s", a)
		}
	}
}
