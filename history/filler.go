package history

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/peloton-exporter/peloton_exporter/client"
)

// DetailSource is what the filler needs of Peloton; *client.Client is one.
type DetailSource interface {
	PerformanceGraph(ctx context.Context, workoutID string) (*client.PerformanceGraph, error)
	Settings(ctx context.Context) (*client.Settings, error)
}

// FillerOptions tune a Filler; zero values take the defaults.
type FillerOptions struct {
	// Interval is the least time between two detail requests (default 1s): the first fill of
	// a long history is one request per workout, and must not look like a scraper to Peloton.
	Interval time.Duration
	// MaxBackoff bounds the wait after failed requests (default 1h).
	MaxBackoff time.Duration
	// Pause is the wait after a round of requests that kept failing, doubling up to
	// MaxBackoff while rounds keep failing (default 1m).
	Pause time.Duration
	// SaveEvery is how often details fetched since the last save are saved, and announced
	// (default 30s): a long first fill resumes where it stopped after a restart, without
	// rewriting the history file for each workout.
	SaveEvery time.Duration
	// Changed is called, from the filler's goroutine, after new details were kept, or when
	// fetching them stops or starts working again.
	Changed func()
	Logger  log.Logger
	// Shared, when set, is waited for before every request as well: one pace for the fillers
	// of several accounts, whose requests all come from one address (a household's exporter
	// shares one limiter of --peloton.detail-interval among its accounts).
	Shared Limiter
}

// Limiter paces requests; *rate.Limiter (golang.org/x/time/rate) is one.
type Limiter interface {
	Wait(ctx context.Context) error
}

// Filler fetches the detail of each completed workout once, newest first, in the background
// and throttled, so that no scrape ever waits for it. After the first fill it fetches one
// detail per new workout. Kick wakes it after a sync.
type Filler struct {
	store *Store
	src   DetailSource
	opts  FillerOptions
	kick  chan struct{}
	stop  context.CancelFunc
	done  chan struct{}

	mu      sync.Mutex
	up      bool // fetching detail works
	tried   bool
	busy    bool // a round of requests is running
	kicked  bool // a kick is waiting to be taken
	lastErr string
}

// StartFiller starts filling the details of the store's workouts from src.
func StartFiller(store *Store, src DetailSource, opts FillerOptions) *Filler {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Hour
	}
	if opts.Pause <= 0 {
		opts.Pause = time.Minute
	}
	if opts.SaveEvery <= 0 {
		opts.SaveEvery = 30 * time.Second
	}
	if opts.Changed == nil {
		opts.Changed = func() {}
	}
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Filler{store: store, src: src, opts: opts, kick: make(chan struct{}, 1), stop: cancel, done: make(chan struct{})}
	go f.run(ctx)
	return f
}

// Kick asks the filler to look for workouts without detail; it never blocks.
func (f *Filler) Kick() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
		f.kicked = true
	default:
	}
}

// Close stops the filler, saves what it fetched and waits for it.
func (f *Filler) Close() {
	f.stop()
	<-f.done
}

// Idle says whether the filler has nothing to do until its next kick: no round running, none
// asked for. During the pause after a failed round it is idle too, though the pause's end
// starts a round by itself. Tests wait for it.
func (f *Filler) Idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.busy && !f.kicked
}

// Up says whether fetching detail works (down after a round in which nothing did), and
// whether a request was sent at all.
func (f *Filler) Up() (up, tried bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up, f.tried
}

// roundFailures ends a round of requests that failed that many times in a row: Peloton, or
// the way to it, is not answering, and the next round waits longer.
const roundFailures = 3

func (f *Filler) run(ctx context.Context) {
	defer close(f.done)
	defer f.store.SaveDetails()
	var (
		last       time.Time            // of the last request
		pauseUntil time.Time            // no round before this, after a round that failed
		rounds     int                  // rounds that failed in a row
		retryAt    = map[string]int64{} // a workout whose graph failed: not asked again before (Unix s)
		tries      = map[string]int{}   // its failures
		unit       string               // the member's distance unit, once read
	)
	// distanceUnit is asked for only when a graph gives a distance without its unit; a failed
	// read is tried again with the next such graph.
	unitFailed := false
	distanceUnit := func() string {
		if unit == "" {
			if st, err := f.src.Settings(ctx); err == nil && st.DistanceUnit != "" {
				unit = string(st.DistanceUnit)
			} else {
				unitFailed = true
			}
		}
		return unit
	}
	var resume <-chan time.Time // the end of a pause after a failed round
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
			pausing := time.Now().Before(pauseUntil)
			f.state(func() { f.kicked, f.busy = false, !pausing })
			if pausing {
				continue // a refresh's kick during a pause, whose end resumes the fill
			}
		case <-resume:
			f.state(func() { f.busy = true })
		}
		resume = nil
		failures, added, lastSave := 0, 0, time.Now()
		var suspects []string // failed since the last request that worked
		worked := false       // a request of this round worked
		penalize := func() {
			// Others work: the workouts that failed meanwhile fail on their own, and wait
			// longer each time (an hour, doubling), so that one costs no request per refresh.
			for _, bad := range suspects {
				tries[bad]++
				retryAt[bad] = time.Now().Add(backoff(time.Hour, tries[bad]-1, 24*time.Hour)).Unix()
			}
			suspects = nil
		}
		for failures < roundFailures {
			now := time.Now().Unix()
			id, ok := f.store.PendingDetail(func(id string) bool { return retryAt[id] > now || slices.Contains(suspects, id) })
			if !ok {
				break
			}
			if !sleep(ctx, time.Until(last.Add(backoff(f.opts.Interval, failures, f.opts.MaxBackoff)))) {
				return
			}
			if f.opts.Shared != nil && f.opts.Shared.Wait(ctx) != nil {
				return // closed (or a wait the limiter says can never end)
			}
			last = time.Now()
			unitFailed = false
			g, err := f.src.PerformanceGraph(ctx, id)
			var d Detail
			if err == nil {
				if d = DetailFromGraph(g, distanceUnit); unitFailed {
					err = errors.New("settings: the member's distance unit cannot be read, and the graph gives a distance without one")
				}
			}
			switch {
			case err == nil:
				f.store.SetDetail(id, d)
				added++
			case isMissing(err):
				// Peloton has no graph for this workout (gone, or never recorded): not asked again.
				f.store.SetDetail(id, Detail{Unavailable: true})
			case ctx.Err() != nil:
				return
			default:
				suspects = append(suspects, id)
				failures++
			}
			if err == nil || isMissing(err) {
				penalize()
				worked, failures, rounds = true, 0, 0
				delete(retryAt, id)
				delete(tries, id)
				f.setUp(true)
			}
			f.note(err)
			if time.Since(lastSave) >= f.opts.SaveEvery {
				f.flush(&added)
				lastSave = time.Now()
			}
		}
		switch {
		case failures == 0:
		case worked && failures < roundFailures:
			penalize() // the last ones failed, after others worked
		default:
			// Nothing worked at the end of this round: Peloton, not the workouts, failed. The
			// next round waits (a minute, doubling); the workouts are not held against it.
			rounds++
			pause := backoff(f.opts.Pause, rounds-1, f.opts.MaxBackoff)
			pauseUntil, resume = time.Now().Add(pause), time.After(pause)
			f.setUp(false)
		}
		f.flush(&added)
		f.state(func() { f.busy = false })
	}
}

// state changes the filler's state under its lock.
func (f *Filler) state(change func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change()
}

// backoff is base doubled n times, at most most.
func backoff(base time.Duration, n int, most time.Duration) time.Duration {
	d := base
	for ; n > 0 && d < most; n-- {
		d *= 2
	}
	return min(d, most)
}

// flush saves the details fetched since the last flush and announces them.
func (f *Filler) flush(added *int) {
	f.store.SaveDetails()
	if *added > 0 {
		*added = 0
		f.opts.Changed()
	}
}

// setUp records whether fetching detail works: down when a round ended with nothing working,
// not for one workout whose graph fails. A change is announced.
func (f *Filler) setUp(up bool) {
	f.mu.Lock()
	changed := f.up != up || !f.tried
	f.tried, f.up = true, up
	f.mu.Unlock()
	if changed {
		f.opts.Changed()
	}
}

// note logs a request's failure once per change of cause.
func (f *Filler) note(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	msg := ""
	if err != nil && !isMissing(err) {
		msg = err.Error()
	}
	if msg != f.lastErr {
		if msg != "" {
			level.Warn(f.opts.Logger).Log("msg", "cannot fetch workout detail; trying again later, more slowly", "err", msg)
		} else {
			level.Info(f.opts.Logger).Log("msg", "fetching workout detail works again")
		}
		f.lastErr = msg
	}
}

// isMissing tells the answer of a workout without a graph: 404. Anything else (a 403 from a
// CDN, a 410, an outage) is a failure tried again later, never a verdict on the workout.
func isMissing(err error) bool {
	var he *client.HTTPError
	return errors.As(err, &he) && he.Status == http.StatusNotFound
}

// sleep waits d, or until ctx ends; it says whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
