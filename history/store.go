// Package history keeps the member's workout history in step with Peloton, on disk, and
// derives the signals the overview does not give: what was done this streak week, when each
// discipline was last done, and a weekly streak computed from the workouts themselves.
package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/peloton-exporter/peloton_exporter/client"
	"github.com/peloton-exporter/peloton_exporter/internal/atomicfile"
)

const (
	// PageSize is the largest page Peloton serves: 2,000 workouts in 20 requests.
	PageSize = 100
	// maxPages bounds a sync whatever Peloton says about further pages.
	maxPages     = 1000
	fileVersion  = 1
	statusActive = "IN_PROGRESS"
)

// Workout is one workout as kept on disk: only what the signals need.
type Workout struct {
	ID         string  `json:"id"`
	Start      int64   `json:"start"`
	End        int64   `json:"end,omitempty"` // 0 while in progress
	Status     string  `json:"status"`
	Discipline string  `json:"discipline"`
	Work       float64 `json:"work,omitempty"` // joules
	HasWork    bool    `json:"has_work,omitempty"`
	Timezone   string  `json:"tz,omitempty"`
}

// Completed says whether the workout is done and has an end time.
func (w Workout) Completed() bool { return w.Status != statusActive && w.End > 0 }

// FetchFunc reads one page of the history; (*client.Client).Workouts is one.
type FetchFunc func(ctx context.Context, page, limit int) (*client.WorkoutPage, error)

// Store is the synced history, newest first. It is safe for concurrent use.
type Store struct {
	path   string
	logger log.Logger

	mu       sync.Mutex
	userID   string
	workouts []Workout
	// resyncedAt is Peloton's total when the history was last downloaded in full (-1: never
	// since start): a total that still disagrees after that is not worth downloading again
	// until it changes.
	resyncedAt int
	// cut is a full download cut short (a timeout on a long history, say), kept in memory so
	// that the next sync goes on from where it stopped: a history too long for one refresh
	// still arrives, over several.
	cut     *cutDownload
	failing bool // saving failed last time; reported once until it works again
	// ours says the file at path was missing or held a history when read: only then is a
	// symlink there written through (atomicfile.Write).
	ours bool
}

type cutDownload struct {
	workouts []Workout // the pages fetched, newest first
	pages    int       // how many
}

type file struct {
	Version  int       `json:"version"`
	UserID   string    `json:"user_id"`
	Workouts []Workout `json:"workouts"`
}

// Open loads the history kept at path ("" keeps it in memory only). A missing file starts
// empty; a damaged one is logged and rebuilt by the next sync.
func Open(path string, logger log.Logger) *Store {
	s := &Store{path: path, logger: logger, resyncedAt: -1}
	if path == "" {
		return s
	}
	af, err := atomicfile.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		s.ours = true
		return s
	}
	var f file
	if err == nil {
		defer af.Close()
		err = json.Unmarshal(af.Data, &f)
		if err == nil && f.Version != fileVersion {
			err = fmt.Errorf("unknown version %d", f.Version)
		}
	}
	if err != nil {
		level.Warn(logger).Log("msg", "the workout history file is damaged; it will be downloaded again", "path", path, "err", err)
		return s
	}
	s.ours = true
	if af.Loose() {
		msg := "the workout history was readable by other users; its mode is now 0600"
		if err := af.Tighten(); err != nil {
			msg = "the workout history is readable by other users; cannot change its mode: " + err.Error()
		}
		level.Warn(logger).Log("msg", msg, "path", af.Path, "mode", af.Mode.String())
	}
	s.userID, s.workouts = f.UserID, f.Workouts
	return s
}

// Workouts returns the history, newest first. The slice must not be modified.
func (s *Store) Workouts() []Workout {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.workouts
}

// Sync brings the history up to date for the member userID. The first sync pages through
// everything; later ones stop at the first completed workout already known, which is usually
// on the first page. If Peloton's total then disagrees with what is kept (a workout deleted,
// say), the history is downloaded again in full, once per value of the total. On error the
// history does not change, but a full download cut short goes on at the next sync.
func (s *Store) Sync(ctx context.Context, userID string, fetch FetchFunc) (requests int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if userID != s.userID {
		s.userID, s.workouts, s.cut = userID, nil, nil // another account's history is of no use
	}
	if len(s.workouts) == 0 || s.cut != nil {
		ws, total, n, err := s.downloadAll(ctx, fetch)
		if err != nil {
			return n, err
		}
		s.workouts, s.resyncedAt = ws, total
		s.save()
		return n, nil
	}
	known := make(map[string]bool, len(s.workouts))
	for _, w := range s.workouts {
		if w.Completed() {
			known[w.ID] = true
		}
	}
	fresh, total, n, err := download(ctx, fetch, known, 0)
	requests += n
	if err != nil {
		return requests, err
	}
	merged := merge(fresh, s.workouts)
	if total >= 0 && total != len(merged) && total != s.resyncedAt {
		merged, _, n, err = s.downloadAll(ctx, fetch)
		requests += n
		if err != nil {
			return requests, err
		}
		s.resyncedAt = total
	}
	s.workouts = merged
	s.save()
	return requests, nil
}

// downloadAll downloads the whole history, going on from a download cut short if there is one;
// if this one is cut short too, what it fetched is kept for the next.
func (s *Store) downloadAll(ctx context.Context, fetch FetchFunc) ([]Workout, int, int, error) {
	var before []Workout
	from := 0
	if s.cut != nil {
		before, from = s.cut.workouts, s.cut.pages
	}
	fresh, total, n, err := download(ctx, fetch, nil, from)
	fresh = append(before, fresh...)
	if err != nil {
		s.cut = &cutDownload{workouts: fresh, pages: from + n}
		return nil, 0, n, err
	}
	s.cut = nil
	return merge(fresh, nil), total, n, nil
}

// download reads pages newest first, from page from on, until it meets a known completed
// workout or the end. It returns the new workouts, Peloton's total (-1 when not given) and the
// pages read; on error, the workouts of the pages read before it.
func download(ctx context.Context, fetch FetchFunc, known map[string]bool, from int) ([]Workout, int, int, error) {
	var fresh []Workout
	total := -1
	for page := from; page < maxPages; page++ {
		p, err := fetch(ctx, page, PageSize)
		if err != nil {
			return fresh, 0, page - from, fmt.Errorf("workouts page %d: %w", page, err)
		}
		if p.Total.Valid {
			total = int(p.Total.Value)
		}
		for _, cw := range p.Data {
			w, ok := convert(cw)
			if !ok {
				continue
			}
			if known[w.ID] {
				return fresh, total, page + 1 - from, nil
			}
			fresh = append(fresh, w)
		}
		if !hasNext(p, page) {
			return fresh, total, page + 1 - from, nil
		}
	}
	return nil, 0, maxPages - from, fmt.Errorf("workouts: more than %d pages", maxPages)
}

func hasNext(p *client.WorkoutPage, page int) bool {
	switch {
	case len(p.Data) == 0:
		return false
	case p.ShowNext != nil:
		return *p.ShowNext
	case p.PageCount.Valid:
		return page+1 < int(p.PageCount.Value)
	}
	return len(p.Data) == PageSize
}

// merge puts fresh (newest first) before the kept workouts it does not replace.
func merge(fresh, kept []Workout) []Workout {
	seen := make(map[string]bool, len(fresh))
	out := make([]Workout, 0, len(fresh)+len(kept))
	for _, w := range append(fresh, kept...) {
		if !seen[w.ID] {
			seen[w.ID] = true
			out = append(out, w)
		}
	}
	return out
}

// convert keeps a workout as Peloton described it. One without an id cannot be kept (nor told
// apart from others); one lacking a discipline or start is kept but not counted (Summarize).
func convert(cw client.Workout) (Workout, bool) {
	w := Workout{
		ID:         string(cw.ID),
		Status:     string(cw.Status),
		Discipline: string(cw.FitnessDiscipline),
		Timezone:   string(cw.Timezone),
		Work:       cw.TotalWork.Value,
		HasWork:    cw.TotalWork.Valid,
	}
	if w.ID == "" {
		return Workout{}, false
	}
	w.Start = int64(cw.StartTime.Value)
	if cw.EndTime.Valid && w.Status != statusActive {
		w.End = int64(cw.EndTime.Value)
	}
	return w, true
}

func (s *Store) save() {
	if s.path == "" {
		return
	}
	b, err := json.Marshal(file{Version: fileVersion, UserID: s.userID, Workouts: s.workouts})
	if err == nil {
		err = atomicfile.Write(s.path, b, s.ours)
	}
	if err == nil {
		s.ours = true
	}
	if err != nil && !s.failing {
		level.Warn(s.logger).Log("msg", "cannot save the workout history; a restart will download it again", "path", s.path, "err", err)
	}
	s.failing = err != nil
}
