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
	"maps"
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
	profile  Profile
	// cut is a full download cut short (a timeout on a long history, say), kept in memory so
	// that the next sync goes on from where it stopped: a history too long for one refresh
	// still arrives, over several.
	cut *download
	// ours says the file at path was missing or held a history when read: only then is a
	// symlink there written through (atomicfile.Write).
	ours    bool
	failing bool // saving failed last time; reported once until it works again
	unsaved bool // details were set since the last save
	// fresh holds the details set since workouts was last copied: they join it in one copy
	// when it is next read (settleLocked), not in a copy of the whole history per detail.
	fresh map[string]*Detail
	// strings holds one copy of each text the workouts repeat (status, discipline, zone,
	// class title, instructor): a history of 2,000 workouts holds a few hundred distinct ones.
	strings map[string]string
	noted   map[string]bool // what was logged once: implausible workouts, a spent budget
}

// syncState is what the sync remembers of itself across restarts.
type syncState struct {
	// FullDownloads are the start times (Unix seconds) of the full downloads of the last
	// 24 hours counted against the budget (downloadAll says which): kept on disk, so that a
	// restart loop cannot multiply them.
	FullDownloads []int64 `json:"full_downloads,omitempty"`
	// Unkept is Peloton's total less the workouts the history kept, after the last full
	// download that read a list that did not change meanwhile (0 before any). A history can
	// never keep some of what Peloton counts (a workout listed without an id, say), so that
	// difference is not worth another full download; a new workout adds one to both sides. Any
	// other difference is: a deletion below the newest page, even when a new workout puts the
	// total back where it was.
	Unkept int `json:"unkept,omitempty"`
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
	Profile  Profile   `json:"profile"`
}

// Profile is what the exporter learned of the member besides the workouts, kept with them so
// that a backfill labels the past as the live exporter labels the present: the display names
// of the disciplines and the profile's time zone.
type Profile struct {
	Names    map[string]string `json:"names,omitempty"` // discipline slug -> display name
	Timezone string            `json:"timezone,omitempty"`
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
	s := &Store{path: path, logger: logger, noted: map[string]bool{}}
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
	s.userID, s.workouts, s.state, s.profile = f.UserID, s.intern(f.Workouts), f.Sync, f.Profile
	return s
}

// Workouts returns the history, newest first. The slice must not be modified.
func (s *Store) Workouts() []Workout {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked()
	return s.workouts
}

// intern makes the repeated texts of ws, which are not shared yet, one copy each. s.mu must
// be held (or s not yet shared).
func (s *Store) intern(ws []Workout) []Workout {
	if s.strings == nil {
		s.strings = map[string]string{}
	}
	one := func(v *string) {
		if c, ok := s.strings[*v]; ok {
			*v = c
		} else {
			s.strings[*v] = *v
		}
	}
	for i := range ws {
		w := &ws[i]
		for _, v := range []*string{&w.Status, &w.Discipline, &w.Timezone, &w.Title, &w.Instructor} {
			one(v)
		}
	}
	return ws
}

// settleLocked puts the details set since the last call into the workouts. Workouts returns
// the slice itself, so a workout is never changed in place (its readers hold no lock): the
// slice is copied, once for all of them. s.mu must be held.
func (s *Store) settleLocked() {
	if len(s.fresh) == 0 {
		return
	}
	ws := slices.Clone(s.workouts)
	for i := range ws {
		if d, ok := s.fresh[ws[i].ID]; ok {
			ws[i].Detail = d
		}
	}
	s.workouts = ws
	clear(s.fresh)
}

// Sync brings the history up to date for the member userID, at now. The first sync pages
// through everything; later ones stop at the first completed workout already known, which is
// usually on the first page. The history is then checked against what Peloton said: its
// total (less the workouts the last full download could not keep), and its newest page, which must list the history's newest workouts in the same
// order. On a disagreement (a workout deleted, say) the history is downloaded again in full,
// at most maxFullDownloadsPerDay times a day. A failed sync leaves the history as it was,
// except that a full download cut short by a failed request goes on at the next sync.
func (s *Store) Sync(ctx context.Context, userID string, now time.Time, fetch FetchFunc) (requests int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked()
	if userID != s.userID { // another account's history is of no use
		s.userID, s.workouts, s.cut, s.profile, s.strings = userID, nil, nil, Profile{}, nil
		s.state.Unkept, s.state.Recheck = 0, false
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
	// A refresh with nothing new leaves the history as it was, and the file unwritten unless
	// it is behind (the last save failed, or details wait to be saved).
	if merged := merge(s.intern(d.workouts), s.workouts); !slices.Equal(merged, s.workouts) || s.failing || s.unsaved {
		s.workouts = merged
		s.save()
	}
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
	if d.total >= 0 && d.total-len(s.workouts) != s.state.Unkept {
		return fmt.Sprintf("Peloton counts %d workouts, the history %d (%d fewer were expected)", d.total, len(s.workouts), s.state.Unkept)
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
//
// Each full download counts against the day's budget, but when depends on what is served
// meanwhile. A history that is there is charged at the start, and saved at once: neither a
// failure nor a restart gives the download back, and once the budget is spent the sync goes
// on without it, serving the history as it is. An empty history has nothing to serve, so a
// download that fails must not keep the next from being tried: it is charged only once it
// completes with workouts (the refresh back-off spaces the attempts), or the history could
// stay empty for a day after Peloton recovered. One that completes with none (a member with
// no workout yet) read a single page: a page of nothing keepable ends a download.
func (s *Store) downloadAll(ctx context.Context, p *pages, now time.Time) error {
	if s.cut == nil {
		if err := s.fullDownloadAllowed(now); err != nil {
			return err
		}
		s.cut = newDownload()
		s.cut.started = now.Unix()
		if len(s.workouts) > 0 {
			s.chargeFullDownload(s.cut)
			s.save()
		}
	}
	d := s.cut
	if err := p.read(ctx, d, nil); err != nil {
		if errors.Is(err, errPaging) {
			s.cut = nil // what it read is suspect: the next download starts afresh
		}
		return err
	}
	s.cut = nil
	if len(d.workouts) > 0 {
		s.chargeFullDownload(d)
	}
	s.workouts = keepDetails(s.intern(d.workouts), s.workouts)
	s.state.Recheck = d.totalChanged
	s.state.Unkept = 0
	if !d.totalChanged && d.total >= 0 {
		s.state.Unkept = d.total - len(s.workouts)
	}
	delete(s.noted, "budget")
	s.save()
	return nil
}

// fullDownloadAllowed says whether the day's budget allows another full download at now,
// forgetting those more than 24 hours old.
func (s *Store) fullDownloadAllowed(now time.Time) error {
	dayAgo := now.Add(-24 * time.Hour).Unix()
	recent := s.state.FullDownloads[:0]
	for _, t := range s.state.FullDownloads {
		if t > dayAgo && t <= now.Unix() {
			recent = append(recent, t)
		}
	}
	s.state.FullDownloads = recent
	if len(recent) >= maxFullDownloadsPerDay {
		next := time.Unix(slices.Min(recent), 0).Add(24 * time.Hour).UTC()
		return fmt.Errorf("the workout history needs a full download, but %d were started in the last 24 hours; the next may start at %s: %w",
			len(recent), next.Format(time.RFC3339), errBudgetSpent)
	}
	return nil
}

// chargeFullDownload counts d against the budget, once, as started when it started.
func (s *Store) chargeFullDownload(d *download) {
	if !d.charged {
		d.charged = true
		s.state.FullDownloads = append(s.state.FullDownloads, d.started)
	}
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

// Profile returns what was learned of the member (see Profile). The map must not be modified.
func (s *Store) Profile() Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.profile
}

// SetProfile adds what p says to what was learned, and saves it when that changed. What p
// leaves out (a zone or names not read this time: the profile or the overview failed) keeps
// its earlier value rather than being forgotten.
func (s *Store) SetProfile(p Profile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := Profile{Names: maps.Clone(s.profile.Names), Timezone: s.profile.Timezone}
	if p.Timezone != "" {
		next.Timezone = p.Timezone
	}
	for slug, name := range p.Names {
		if next.Names == nil {
			next.Names = map[string]string{}
		}
		next.Names[slug] = name
	}
	if next.Timezone == s.profile.Timezone && maps.Equal(next.Names, s.profile.Names) {
		return
	}
	s.profile = next
	if len(s.workouts) > 0 { // an empty history is not worth a file yet
		s.save()
	}
}

// PendingDetail returns the id of the newest completed workout whose detail was not fetched
// yet, skipping those for which skip says so.
func (s *Store) PendingDetail(skip func(id string) bool) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workouts {
		if w.Detail == nil && s.fresh[w.ID] == nil && w.Completed() && !skip(w.ID) {
			return w.ID, true
		}
	}
	return "", false
}

// PendingDetails counts the completed workouts whose detail was not fetched yet.
func (s *Store) PendingDetails() int { return Pending(s.Workouts()) }

// Pending counts the completed workouts of ws whose detail was not fetched yet.
func Pending(ws []Workout) int {
	n := 0
	for _, w := range ws {
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
	if !slices.ContainsFunc(s.workouts, func(w Workout) bool { return w.ID == id }) {
		return // gone with a sync meanwhile
	}
	if s.fresh == nil {
		s.fresh = map[string]*Detail{}
	}
	s.fresh[id] = &d
	s.unsaved = true
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
	s.settleLocked()
	b, err := json.Marshal(file{Version: fileVersion, UserID: s.userID, Workouts: s.workouts, Sync: s.state, Profile: s.profile})
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
