package history

import (
	"context"
	"errors"
	"net/http"
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
	// SaveEvery is how often details fetched since the last save are saved, and announced
	// (default 30s): a long first fill resumes where it stopped after a restart, without
	// rewriting the history file for each workout.
	SaveEvery time.Duration
	// Changed is called, from the filler's goroutine, after new details were kept.
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
	up      bool // the last request worked
	tried   bool
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
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Close stops the filler, saves what it fetched and waits for it.
func (f *Filler) Close() {
	f.stop()
	<-f.done
}

// Up says whether the last detail request worked, and whether there was one.
func (f *Filler) Up() (up, tried bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up, f.tried
}

func (f *Filler) run(ctx context.Context) {
	defer close(f.done)
	defer f.store.SaveDetails()
	var last time.Time // of the last request
	// The member's distance unit, asked for only if a graph gives a distance without its unit.
	unit, unitKnown := "", false
	distanceUnit := func() string {
		if !unitKnown {
			unitKnown = true
			if st, err := f.src.Settings(ctx); err == nil {
				unit = string(st.DistanceUnit)
			}
		}
		return unit
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		}
		skip := map[string]bool{} // workouts failing in this round: tried again at the next kick
		failures := 0
		added, lastSave := 0, time.Now()
		for {
			id, ok := f.store.PendingDetail(skip)
			if !ok {
				break
			}
			wait := time.Until(last.Add(f.opts.Interval << min(failures, 16)))
			if !sleep(ctx, min(max(wait, 0), f.opts.MaxBackoff)) {
				return
			}
			if f.opts.Shared != nil && f.opts.Shared.Wait(ctx) != nil {
				return // closed (or a wait the limiter says can never end)
			}
			last = time.Now()
			g, err := f.src.PerformanceGraph(ctx, id)
			f.note(err)
			switch {
			case err == nil:
				failures = 0
				f.store.SetDetail(id, DetailFromGraph(g, distanceUnit))
				added++
			case isMissing(err):
				// Peloton has no graph for this workout (gone, or never recorded): not asked again.
				failures = 0
				f.store.SetDetail(id, Detail{Unavailable: true})
			case ctx.Err() != nil:
				return
			default:
				failures++
				skip[id] = true
			}
			if time.Since(lastSave) >= f.opts.SaveEvery {
				f.flush(&added)
				lastSave = time.Now()
			}
		}
		f.flush(&added)
	}
}

// flush saves the details fetched since the last flush and announces them.
func (f *Filler) flush(added *int) {
	f.store.SaveDetails()
	if *added > 0 {
		*added = 0
		f.opts.Changed()
	}
}

// note records the outcome of a request, logging a failure once per change of cause.
func (f *Filler) note(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tried = true
	f.up = err == nil || isMissing(err)
	msg := ""
	if !f.up {
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

// isMissing tells the answer of a workout without a graph: 404, or 403 for a workout that is
// not the member's.
func isMissing(err error) bool {
	var he *client.HTTPError
	return errors.As(err, &he) && (he.Status == http.StatusNotFound || he.Status == http.StatusForbidden || he.Status == http.StatusGone)
}

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
