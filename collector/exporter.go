// Package collector turns Peloton data into Prometheus metrics. It caches what it fetched for a
// TTL, shares one refresh between concurrent scrapes and keeps serving the last good data when
// Peloton fails. It knows the client's types and nothing of HTTP to Peloton.
package collector

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/history"
)

// Source is what the exporter needs of Peloton; *client.Client is one.
type Source interface {
	Me(ctx context.Context) (*client.Me, error)
	UserID(ctx context.Context) (string, error)
	Overview(ctx context.Context) (*client.Overview, error)
	Workouts(ctx context.Context, page, limit int) (*client.WorkoutPage, error)
	PerformanceGraph(ctx context.Context, workoutID string) (*client.PerformanceGraph, error)
	Settings(ctx context.Context) (*client.Settings, error)
	Challenges(ctx context.Context) (*client.Challenges, error)
	Challenge(ctx context.Context, challengeID string) (*client.Challenge, error)
	Stats() []client.RequestCount
	TokenExpiry() (time.Time, bool)
}

// credentialsReporter is what a Source offers when it logs in with a password
// (*client.Client does). It is apart from Source so that sources without logins, such as
// in-memory test sources, need not implement it.
type credentialsReporter interface {
	CredentialsRefused() bool
}

// Options tune the exporter; zero values take the defaults.
type Options struct {
	TTL            time.Duration  // how long fetched data is served before a scrape refreshes it (default 5m)
	RefreshTimeout time.Duration  // upper bound of one refresh, whoever waits for it (default 2m)
	History        *history.Store // the synced workout history (default: in memory only)
	Timezone       string         // IANA zone of streak weeks; "" takes the member's
	WeekStart      time.Weekday   // first day of streak weeks (mind: the zero value is Sunday)
	// DetailInterval is the least time between two requests for a workout's detail, which are
	// sent in the background (default 1s); NoDetail sends none.
	DetailInterval time.Duration
	NoDetail       bool
	// DetailShared is a pace the detail requests of several exporters share (a household's).
	DetailShared history.Limiter
	Logger       log.Logger
	Now          func() time.Time
}

// Exporter is a prometheus.Collector serving a cached snapshot of Peloton data.
type Exporter struct {
	src     Source
	opts    Options
	descs   *descs
	history *history.Store
	filler  *history.Filler // nil with NoDetail
	last    lastGood
	ctx     context.Context // ends refreshes on Close
	cancel  context.CancelFunc

	mu         sync.Mutex
	snap       snapshot
	inflight   chan struct{} // non-nil while a refresh runs; closed when it ends
	generation uint64        // counts finished refreshes: what Collect serves changes only then
	// detailsAdded says that workout detail arrived while a refresh was running: the refresh
	// builds its samples again before it ends.
	detailsAdded bool
}

// snapshot is the state of the last refresh, and the metrics of the last good one, built once
// per refresh so that a scrape only copies them.
type snapshot struct {
	data        []prometheus.Metric
	sourceUp    map[string]bool
	sourceLast  map[string]time.Time // when each source was last read, for alerts gated on it
	attempted   bool
	up          bool
	failures    int       // consecutive failed refreshes
	retryAt     time.Time // after a failed refresh, when the next one may start
	attemptEnd  time.Time
	lastSuccess time.Time
	duration    time.Duration
	lastErr     string
}

var _ prometheus.Collector = (*Exporter)(nil)

func New(src Source, opts Options) *Exporter {
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Minute
	}
	if opts.RefreshTimeout <= 0 {
		opts.RefreshTimeout = 2 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.History == nil {
		opts.History = history.Open("", opts.Logger)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Exporter{
		src:     src,
		opts:    opts,
		descs:   newDescs(fmt.Sprintf("cached for up to %s.", opts.TTL)),
		history: opts.History,
		last:    lastGood{names: map[string]string{}, units: map[string]bool{}},
		ctx:     ctx,
		cancel:  cancel,
	}
	if !opts.NoDetail {
		e.filler = history.StartFiller(opts.History, src, history.FillerOptions{
			Interval: opts.DetailInterval, Changed: e.detailsChanged, Logger: opts.Logger, Shared: opts.DetailShared,
		})
	}
	return e
}

// Close stops a refresh in progress and the detail filler, and waits for them.
func (e *Exporter) Close() {
	e.cancel()
	if e.filler != nil {
		e.filler.Close()
	}
	e.mu.Lock()
	ch := e.inflight
	e.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// DetailIdle says whether the background detail filler has nothing to do until the next
// refresh (always so without it). Tests and benchmarks wait for it.
func (e *Exporter) DetailIdle() bool { return e.filler == nil || e.filler.Idle() }

// detailsChanged rebuilds the samples from the data at hand, without asking Peloton, when the
// filler kept new workout detail: a new workout's detail shows at once rather than a TTL
// later. It takes the refresh's place, so that the two never build at the same time; during a
// refresh it leaves the rebuild to the refresh.
func (e *Exporter) detailsChanged() {
	e.mu.Lock()
	if e.inflight != nil || !e.snap.attempted {
		e.detailsAdded = true
		e.mu.Unlock()
		return
	}
	if e.ctx.Err() != nil { // closed
		e.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	e.inflight = ch
	up := maps.Clone(e.snap.sourceUp)
	e.mu.Unlock()

	res := e.build(up)

	e.mu.Lock()
	defer close(ch)
	defer e.mu.Unlock()
	e.inflight = nil
	e.generation++
	e.snap.data, e.snap.sourceUp = res.metrics, res.sourceUp
}

// retryInterval is how soon a failed refresh is tried again: a minute after the first failure,
// so that data recovers quickly, then doubling up to the TTL, so that a source that is gone
// for good is not polled more often than a healthy one.
func (e *Exporter) retryInterval(failures int) time.Duration {
	return min(e.opts.TTL, time.Minute<<min(max(failures-1, 0), 10))
}

// retryAfter is when a refresh that failed at end may be tried again: after the retry
// interval, or at the account's turn to log in if that comes sooner (the turns of a
// household's logins are a spacing apart, and an account that missed its turn would queue
// again behind the others). Trying early costs no request: the login gate answers.
func (e *Exporter) retryAfter(end time.Time, failures int, turn time.Time) time.Time {
	at := end.Add(e.retryInterval(failures))
	if turn.After(end) && turn.Before(at) {
		return turn
	}
	return at
}

func (e *Exporter) staleLocked() bool {
	s := e.snap
	switch {
	case !s.attempted:
		return true
	case !s.up:
		return !e.opts.Now().Before(s.retryAt)
	default:
		return e.opts.Now().Sub(s.lastSuccess) >= e.opts.TTL
	}
}

// Refresh makes sure the data is no older than the TTL, fetching it if needed. Concurrent
// callers share one fetch. It waits until the fetch ends or ctx is done, whichever is first;
// a fetch outlives an impatient caller so that its result serves the next scrape.
func (e *Exporter) Refresh(ctx context.Context) {
	// Twice at most: what was in flight may have been a rebuild with the workout detail (see
	// detailsChanged), after which the data may still be stale.
	for range 2 {
		e.mu.Lock()
		if !e.staleLocked() {
			e.mu.Unlock()
			return
		}
		ch := e.inflight
		if ch == nil {
			if e.ctx.Err() != nil { // closed
				e.mu.Unlock()
				return
			}
			ch = make(chan struct{})
			e.inflight = ch
			go e.refresh(ch)
		}
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

func (e *Exporter) refresh(done chan struct{}) {
	ctx, cancel := context.WithTimeout(e.ctx, e.opts.RefreshTimeout)
	defer cancel()
	start := e.opts.Now()
	res := e.fetch(ctx)
	end := e.opts.Now()
	if e.publish(res, start, end, done) {
		e.detailsChanged() // detail that arrived while this refresh was building
	}
}

// publish makes a refresh's result the snapshot and ends the refresh. It says whether workout
// detail arrived meanwhile.
func (e *Exporter) publish(res result, start, end time.Time, done chan struct{}) (detailsAdded bool) {
	e.mu.Lock()
	defer close(done)
	defer e.mu.Unlock()
	e.inflight = nil
	e.generation++
	detailsAdded, e.detailsAdded = e.detailsAdded, false
	s := &e.snap
	s.attempted, s.attemptEnd, s.duration = true, end, end.Sub(start)
	s.data, s.sourceUp, s.up = res.metrics, res.sourceUp, res.err == nil
	last := make(map[string]time.Time, len(sourceNames))
	for _, name := range sourceNames {
		if res.sourceUp[name] {
			last[name] = end
		} else if t, ok := s.sourceLast[name]; ok {
			last[name] = t
		}
	}
	s.sourceLast = last // a new map: Collect reads the old one without the lock
	if res.err != nil {
		s.failures++
		s.retryAt = e.retryAfter(end, s.failures, res.loginTurn)
		if msg := res.err.Error(); msg != s.lastErr {
			// Logged once per change of cause, not once per scrape. Waiting for a turn to log
			// in is what a household's accounts do at start-up: no failure.
			if !res.loginTurn.IsZero() {
				level.Info(e.opts.Logger).Log("msg", "waiting for this account's turn to log in", "err", msg)
			} else {
				level.Error(e.opts.Logger).Log("msg", "refresh from Peloton failed; serving the last good data", "err", msg)
			}
			s.lastErr = msg
		}
		return detailsAdded
	}
	if s.lastErr != "" {
		level.Info(e.opts.Logger).Log("msg", "refresh from Peloton recovered")
	}
	s.lastErr, s.lastSuccess, s.failures = "", end, 0
	return detailsAdded
}

// Up says whether the most recent refresh read every source (peloton_up); false before the
// first one ends.
func (e *Exporter) Up() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.snap.up
}

// RetryAt is when a refresh that failed may run again (its retry interval, or the account's
// turn to log in); false while the last refresh succeeded or before the first one ends.
func (e *Exporter) RetryAt() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.snap.retryAt, e.snap.attempted && !e.snap.up
}

// Generation changes whenever a refresh finishes, and only then does Collect change; an HTTP
// cache of the encoded metrics keys on it.
func (e *Exporter) Generation() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.generation
}

func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range e.descs.all() {
		ch <- d
	}
}

// Collect serves the snapshot; it never calls Peloton (Refresh does, bounded by the scrape).
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	s := e.snap
	e.mu.Unlock()
	for _, m := range s.data {
		ch <- m
	}
	d := e.descs
	up := 0.0
	if s.up {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(d.up, prometheus.GaugeValue, up)
	if s.attempted {
		ch <- prometheus.MustNewConstMetric(d.refreshDuration, prometheus.GaugeValue, s.duration.Seconds())
		for _, name := range sourceNames {
			if name == sourceDetail && e.filler == nil {
				continue
			}
			v := 0.0
			if s.sourceUp[name] {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(d.sourceUp, prometheus.GaugeValue, v, name)
			if t, ok := s.sourceLast[name]; ok {
				ch <- prometheus.MustNewConstMetric(d.sourceLastSuccess, prometheus.GaugeValue, unixSeconds(t), name)
			}
		}
	}
	if !s.lastSuccess.IsZero() {
		ch <- prometheus.MustNewConstMetric(d.lastSuccess, prometheus.GaugeValue, unixSeconds(s.lastSuccess))
	}
	if exp, ok := e.src.TokenExpiry(); ok {
		ch <- prometheus.MustNewConstMetric(d.tokenExpiry, prometheus.GaugeValue, float64(exp.Unix()))
	}
	if cr, ok := e.src.(credentialsReporter); ok {
		v := 0.0
		if cr.CredentialsRefused() {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(d.credentialsRefused, prometheus.GaugeValue, v)
	}
	for _, st := range e.src.Stats() {
		ch <- prometheus.MustNewConstMetric(d.apiRequests, prometheus.CounterValue, float64(st.Count), st.Endpoint, st.Code)
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }
