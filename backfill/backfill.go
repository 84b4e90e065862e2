// Package backfill writes the series the exporter derives from the workout history, over the
// whole history, as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`, with
// the values the live exporter would have exported at each past moment.
//
// What Prometheus needs of the file (measured on promtool 2.42, peloton-api.md §6): timestamps
// in seconds, each series in ascending time order (an out-of-order sample is silently
// dropped), and "# EOF" at the end. And what its queries need: PromQL looks back 5 minutes
// only, so a series written only when it changes is invisible most of the time. Every series
// is therefore also written once per Step (a day) while it exists, and the dashboard reads the
// history-derived series through last_over_time(…[1d]); peloton_workout_in_progress, read as
// is, is written every LiveStep (4 minutes) during each workout.
package backfill

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peloton-exporter/peloton_exporter/collector"
	"github.com/peloton-exporter/peloton_exporter/history"
)

const (
	// DefaultStep is how often every series is written at least: the dashboard's
	// last_over_time windows are this long.
	DefaultStep = 24 * time.Hour
	// DefaultLiveStep is how often peloton_workout_in_progress is written during a workout,
	// under PromQL's 5-minute lookback.
	DefaultLiveStep = 4 * time.Minute
	inProgress      = "peloton_workout_in_progress"
)

// Options tune Write; zero values take the defaults.
type Options struct {
	// Labels are added to every series: the target labels (job, instance) that Prometheus
	// adds to what it scrapes, so that the past joins the present.
	Labels   []collector.Label
	Until    time.Time // nothing is written after it (required)
	Step     time.Duration
	LiveStep time.Duration
}

// Stats say what was written.
type Stats struct {
	Series, Samples int
	Bytes           int64
	From, To        time.Time // the first and last timestamp written
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// CheckLabels validates target labels: valid names, none reserved, no name twice, and job and
// instance among them (without them the series would be other series than those scraped).
func CheckLabels(labels []collector.Label) error {
	seen := map[string]bool{}
	for _, l := range labels {
		switch {
		case !labelNameRE.MatchString(l.Name) || strings.HasPrefix(l.Name, "__"):
			return fmt.Errorf("%q is not a label name Prometheus allows", l.Name)
		case seen[l.Name]:
			return fmt.Errorf("label %s is given twice", l.Name)
		}
		seen[l.Name] = true
	}
	var missing []string
	for _, name := range []string{"job", "instance"} {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the labels %s are required: give the job and instance labels Prometheus scrapes the exporter with (e.g. --label job=peloton --label instance=peloton-exporter:10070), or the backfilled series will not join the scraped ones", strings.Join(missing, " and "))
	}
	return nil
}

// series is one series' samples, in time order.
type series struct {
	name, help string
	labels     []collector.Label
	ts         []int64
	vs         []float64
}

// moment kinds: a workout started or ended, or a week began (the values change: computed
// again); or only the series are written again, all of them (the daily step) or only
// peloton_workout_in_progress (during a workout).
const (
	event = 1 << iota
	step
	live
)

// Write writes the history's series from its first workout to opts.Until.
func Write(w io.Writer, workouts []history.Workout, hs *collector.HistorySeries, opts Options) (Stats, error) {
	if err := CheckLabels(opts.Labels); err != nil {
		return Stats{}, err
	}
	if opts.Until.IsZero() {
		return Stats{}, errors.New("backfill: no end time")
	}
	if opts.Step <= 0 {
		opts.Step = DefaultStep
	}
	if opts.LiveStep <= 0 {
		opts.LiveStep = DefaultLiveStep
	}
	all := map[string]*series{}
	current := map[string]collector.Sample{}
	for _, m := range timeline(workouts, hs, opts) {
		t := time.Unix(m.at, 0)
		if m.kind&event != 0 {
			next := map[string]collector.Sample{}
			for _, smp := range hs.At(workouts, t) {
				k := key(smp)
				next[k] = smp
				again := m.kind&step != 0 || (m.kind&live != 0 && smp.Name == inProgress)
				if old, ok := current[k]; !ok || old.Value != smp.Value || again {
					record(all, k, smp, m.at)
				}
			}
			current = next
			continue
		}
		for k, smp := range current {
			if m.kind&step != 0 || smp.Name == inProgress {
				record(all, k, smp, m.at)
			}
		}
	}
	if err := checkClashes(all, opts.Labels); err != nil {
		return Stats{}, err
	}
	return writeText(w, all, opts.Labels)
}

type moment struct {
	at   int64 // Unix seconds
	kind int
}

// timeline lists the moments to write, in time order: every start and end of a workout and
// every week's start (the values change then, and only then), the daily steps, the live
// steps during each workout, and the end.
func timeline(workouts []history.Workout, hs *collector.HistorySeries, opts Options) []moment {
	until := opts.Until.Unix()
	kinds := map[int64]int{}
	var first int64 = math.MaxInt64
	for _, w := range workouts {
		if w.Discipline == "" || w.Start == 0 || w.Start > until {
			continue
		}
		first = min(first, w.Start)
		kinds[w.Start] |= event
		end := until // a workout going on now is in progress until the end
		switch {
		case w.Completed() && w.End <= until:
			kinds[w.End] |= event
			end = w.End
		case !w.Completed() && !w.Going():
			continue // never ended, never in progress
		}
		for t := w.Start + int64(opts.LiveStep/time.Second); t < end; t += int64(opts.LiveStep / time.Second) {
			kinds[t] |= live
		}
	}
	if first == math.MaxInt64 {
		return nil // no workout before the end: nothing to write
	}
	_, next := hs.Week(time.Unix(first, 0))
	for ; next.Unix() <= until; _, next = hs.Week(next) {
		kinds[next.Unix()] |= event
	}
	stepSecs := int64(opts.Step / time.Second)
	for t := (first/stepSecs + 1) * stepSecs; t <= until; t += stepSecs {
		kinds[t] |= step
	}
	kinds[until] |= event | step
	out := make([]moment, 0, len(kinds))
	for t, k := range kinds {
		out = append(out, moment{t, k})
	}
	slices.SortFunc(out, func(a, b moment) int { return int(a.at - b.at) })
	return out
}

func key(s collector.Sample) string {
	var b strings.Builder
	b.WriteString(s.Name)
	for _, l := range s.Labels {
		b.WriteByte(0xff)
		b.WriteString(l.Value)
	}
	return b.String()
}

func record(all map[string]*series, k string, smp collector.Sample, at int64) {
	s := all[k]
	if s == nil {
		s = &series{name: smp.Name, help: smp.Help, labels: smp.Labels}
		all[k] = s
	}
	if n := len(s.ts); n > 0 && s.ts[n-1] == at {
		s.vs[n-1] = smp.Value // one sample per timestamp, the latest value
		return
	}
	s.ts = append(s.ts, at)
	s.vs = append(s.vs, smp.Value)
}

// checkClashes refuses a target label that a series has already: the series would lose one.
func checkClashes(all map[string]*series, target []collector.Label) error {
	for _, s := range all {
		for _, l := range s.labels {
			for _, t := range target {
				if t.Name == l.Name {
					return fmt.Errorf("the label %s is one of %s's own: choose another name", t.Name, s.name)
				}
			}
		}
	}
	return nil
}

// writeText writes the series as OpenMetrics text: one metric family after another, each
// series' samples in time order, "# EOF" at the end.
func writeText(w io.Writer, all map[string]*series, target []collector.Label) (Stats, error) {
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<16)
	var st Stats
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	slices.Sort(keys) // by metric name, then label values: families stay together
	family := ""
	var line []byte
	for _, k := range keys {
		s := all[k]
		if s.name != family {
			family = s.name
			fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s gauge\n", s.name, escapeHelp(s.help), s.name)
		}
		prefix := labelled(s.name, target, s.labels)
		for i, t := range s.ts {
			line = append(line[:0], prefix...)
			line = append(line, ' ')
			line = strconv.AppendFloat(line, s.vs[i], 'g', -1, 64)
			line = append(line, ' ')
			line = strconv.AppendInt(line, t, 10)
			line = append(line, '\n')
			_, _ = bw.Write(line) // bufio keeps the first error for Flush
			if st.Samples == 0 || t < st.From.Unix() {
				st.From = time.Unix(t, 0)
			}
			if t > st.To.Unix() {
				st.To = time.Unix(t, 0)
			}
			st.Samples++
		}
		st.Series++
	}
	_, _ = bw.WriteString("# EOF\n")
	if err := bw.Flush(); err != nil {
		return st, err
	}
	st.Bytes = cw.n
	return st, nil
}

// labelled is a series' name with its labels, the target's first, escaped for the text format.
func labelled(name string, target, own []collector.Label) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, l := range append(slices.Clone(target), own...) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(labelEscaper.Replace(l.Value))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeHelp(s string) string { return helpEscaper.Replace(s) }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
