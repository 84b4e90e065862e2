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
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/peloton-exporter/peloton_exporter/internal/atomicfile"
)

// maxFullDownloadsPerDay bounds the full downloads started in any 24 hours, whatever
// Peloton's answers or restarts do: a total that flips between two values, or a history that
// keeps disagreeing, must not make every refresh page through the whole history.
const maxFullDownloadsPerDay = 3

const fileVersion = 1

// Store is the synced history, newest first. It is safe for concurrent use.
type Store struct {
	path   string
	logger log.Logger

	mu       sync.Mutex
	userID   string
	workouts []Workout
	state    syncState
	// cut is a full download cut short (a timeout on a long history, say), kept in memory so
	// that the next sync goes on from where it stopped: a history too long for one refresh
	// still arrives, over several.
	cut *download
	// ours says the file at path was missing or held a history when read: only then is a
	// symlink there written through (atomicfile.Write).
	ours    bool
	failing bool            // saving failed last time; reported once until it works again
	unsaved bool            // details were set since the last save
	noted   map[string]bool // what was logged once: implausible workouts, a spent budget
}

// syncState is what the sync remembers of itself across restarts.
type syncState struct {
	// FullDownloads are the start times (Unix seconds) of the full downloads of the last
	// 24 hours: kept on disk, so that a restart loop cannot multiply them.
	FullDownloads []int64 `json:"full_downloads,omitempty"`
	// ResyncedTotal is Peloton's total after the last full download that read a list that
	// did not change meanwhile (-1: none). A total that still disagrees with the history is
	// not worth another full download until it changes (a workout listed without an id can
	// never be kept, say).
	ResyncedTotal int `json:"resynced_total"`
	// Recheck says that the last full download saw Peloton's total change between its pages:
	// the list moved under it (a workout deleted or added meanwhile), so pages may have
	// skipped or repeated workouts, and the count can agree by chance. The next sync
	// downloads it again.
	Recheck bool `json:"recheck,omitempty"`
}

type file struct {
	Version  int       `json:"version"`
	UserID   string    `json:"user_id"`
	Workouts []Workout `json:"workouts"`
	Sync     syncState `json:"sync"`
}

// PathBeside is where the history of an account whose tokens are kept in stateFile goes:
// beside it, named after it (state.json: state.history.json), so that exporters sharing a
// directory keep theirs apart. No state file, no history file ("").
func PathBeside(stateFile string) string {
	if stateFile == "" {
		return ""
	}
	return strings.TrimSuffix(stateFile, filepath.Ext(stateFile)) + ".history.json"
}

// Open loads the history kept at path ("" keeps it in memory only). A missing file starts
// empty; a damaged one is logged and rebuilt by the next sync.
func Open(path string, logger log.Logger) *Store {
	s := &Store{path: path, logger: logger, state: syncState{ResyncedTotal: -1}, noted: map[string]bool{}}
	if path == "" {
		return s
	}
	af, err := atomicfile.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		s.ours = true
		return s
	}
	f := file{Sync: syncState{ResyncedTotal: -1}}
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
	s.userID, s.workouts, s.state = f.UserID, f.Workouts, f.Sync
	return s
}

// Workouts returns the history, newest first. The slice must not be modified.
func (s *Store) Workouts() []Workout {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.workouts
}

// Sync brings the history up to date for the member userID, at now. The first sync pages
// through everything; later ones stop at the first completed workout already known, which is
// usually on the first page. The history is then checked against what Peloton said: its
// total, and its newest page, which must list the history's newest workouts in the same
// order. On a disagreement (a workout deleted, say) the history is downloaded again in full,
// at most maxFullDownloadsPerDay times a day. A failed sync leaves the history as it was,
// except that a full download cut short by a failed request goes on at the next sync.
func (s *Store) Sync(ctx context.Context, userID string, now time.Time, fetch FetchFunc) (requests int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if userID != s.userID { // another account's history is of no use
		s.userID, s.workouts, s.cut = userID, nil, nil
		s.state.ResyncedTotal, s.state.Recheck = -1, false
	}
	p := &pages{fetch: fetch, now: now}
	err = s.sync(ctx, p, now)
	s.noteImplausible(p.implausible)
	return p.requests, err
}

func (s *Store) sync(ctx context.Context, p *pages, now time.Time) error {
	if s.cut != nil || len(s.workouts) == 0 || s.state.Recheck {
		err := s.downloadAll(ctx, p, now)
		if !errors.Is(err, errBudgetSpent) || len(s.workouts) == 0 {
			return err
		}
		// No full download yet: the history there is still the best there is.
		s.noteBudgetSpent(err.Error())
	}
	known := make(map[string]bool, len(s.workouts))
	for _, w := range s.workouts {
		if w.Completed() {
			known[w.ID] = true
		}
	}
	d := newDownload()
	if err := p.read(ctx, d, known); err != nil {
		return err
	}
	s.workouts = merge(d.workouts, s.workouts)
	s.save()
	why := s.disagreement(d)
	if why == "" {
		return nil
	}
	if err := s.downloadAll(ctx, p, now); !errors.Is(err, errBudgetSpent) {
		return err
	}
	s.noteBudgetSpent(why)
	return nil
}

// noteBudgetSpent logs, once until the next full download, that one is needed but not allowed.
func (s *Store) noteBudgetSpent(why string) {
	if s.noted["budget"] {
		return
	}
	s.noted["budget"] = true
	level.Warn(s.logger).Log("msg", "the workout history needs a full download, but the day's are spent; it stays as it is until one is allowed", "why", why)
}

// disagreement says how the history, just merged with the pages of d, disagrees with what
// Peloton said on them ("" when it does not).
func (s *Store) disagreement(d *download) string {
	if d.total >= 0 && d.total != len(s.workouts) && d.total != s.state.ResyncedTotal {
		return fmt.Sprintf("Peloton counts %d workouts, the history %d", d.total, len(s.workouts))
	}
	for i, id := range d.first {
		if i >= len(s.workouts) || s.workouts[i].ID != id {
			return fmt.Sprintf("Peloton's newest page lists workout %d differently", i+1)
		}
	}
	return ""
}

var errBudgetSpent = errors.New("no full download allowed yet")

// downloadAll downloads the whole history, going on from a download cut short if there is
// one; if this one is cut short by a failed request, what it read is kept for the next.
func (s *Store) downloadAll(ctx context.Context, p *pages, now time.Time) error {
	if s.cut == nil {
		if err := s.spendFullDownload(now); err != nil {
			return err
		}
		s.cut = newDownload()
	}
	d := s.cut
	if err := p.read(ctx, d, nil); err != nil {
		if errors.Is(err, errPaging) {
			s.cut = nil // what it read is suspect: the next download starts afresh
		}
		return err
	}
	s.cut = nil
	s.workouts = keepDetails(d.workouts, s.workouts)
	s.state.Recheck = d.totalChanged
	s.state.ResyncedTotal = -1
	if !d.totalChanged {
		s.state.ResyncedTotal = d.total
	}
	delete(s.noted, "budget")
	s.save()
	return nil
}

// spendFullDownload takes one full download of the day's budget, and saves at once: a restart
// must not give the budget back.
func (s *Store) spendFullDownload(now time.Time) error {
	dayAgo := now.Add(-24 * time.Hour).Unix()
	recent := s.state.FullDownloads[:0]
	for _, t := range s.state.FullDownloads {
		if t > dayAgo && t <= now.Unix() {
			recent = append(recent, t)
		}
	}
	s.state.FullDownloads = recent
	if len(recent) >= maxFullDownloadsPerDay {
		next := time.Unix(recent[0], 0).Add(24 * time.Hour).UTC()
		return fmt.Errorf("the workout history needs a full download, but %d were started in the last 24 hours; the next may start at %s: %w",
			len(recent), next.Format(time.RFC3339), errBudgetSpent)
	}
	s.state.FullDownloads = append(s.state.FullDownloads, now.Unix())
	s.save()
	return nil
}

// noteImplausible logs, once per workout, those whose times were not plausible.
func (s *Store) noteImplausible(ids []string) {
	var fresh []string
	for _, id := range ids {
		if !s.noted["implausible "+id] {
			s.noted["implausible "+id] = true
			fresh = append(fresh, id)
		}
	}
	if len(fresh) > 0 {
		level.Warn(s.logger).Log("msg", "workouts with implausible times (before 2012, in the future, or ending before they start) are kept out of the metrics", "count", len(fresh), "first_id", fresh[0])
	}
}

// merge puts fresh (newest first) before the kept workouts it does not replace.
func merge(fresh, kept []Workout) []Workout {
	fresh = keepDetails(fresh, kept)
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

// keepDetails gives the workouts of fresh, read from a workout list, the details fetched
// before for the same workouts in kept: a list never carries them, and fetching them again
// would cost a request each.
func keepDetails(fresh, kept []Workout) []Workout {
	details := make(map[string]*Detail, len(kept))
	for _, w := range kept {
		if w.Detail != nil {
			details[w.ID] = w.Detail
		}
	}
	for i := range fresh {
		if fresh[i].Detail == nil {
			fresh[i].Detail = details[fresh[i].ID]
		}
	}
	return fresh
}

// PendingDetail returns the id of the newest completed workout whose detail was not fetched
// yet, skipping those in skip.
func (s *Store) PendingDetail(skip map[string]bool) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workouts {
		if w.Detail == nil && w.Completed() && !skip[w.ID] {
			return w.ID, true
		}
	}
	return "", false
}

// PendingDetails counts the completed workouts whose detail was not fetched yet.
func (s *Store) PendingDetails() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, w := range s.workouts {
		if w.Detail == nil && w.Completed() {
			n++
		}
	}
	return n
}

// SetDetail keeps the detail of a workout. It is saved by the next SaveDetails or sync, so
// that a long first fill does not rewrite the file for every workout.
func (s *Store) SetDetail(id string, d Detail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Workouts returns the slice itself, so a workout is never changed in place: its readers
	// hold no lock. The slice is copied instead, as a sync would replace it.
	for i, w := range s.workouts {
		if w.ID == id {
			ws := slices.Clone(s.workouts)
			ws[i].Detail = &d
			s.workouts = ws
			s.unsaved = true
			return
		}
	}
}

// SaveDetails saves the details kept since the last save.
func (s *Store) SaveDetails() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsaved {
		s.save()
	}
}

func (s *Store) save() {
	if s.path == "" {
		return
	}
	b, err := json.Marshal(file{Version: fileVersion, UserID: s.userID, Workouts: s.workouts, Sync: s.state})
	if err == nil {
		err = atomicfile.Write(s.path, b, s.ours)
	}
	if err == nil {
		s.ours, s.unsaved = true, false
	}
	if err != nil && !s.failing {
		level.Warn(s.logger).Log("msg", "cannot save the workout history; a restart will download it again", "path", s.path, "err", err)
	}
	s.failing = err != nil
}
