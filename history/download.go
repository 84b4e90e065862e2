package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/peloton-exporter/peloton_exporter/client"
)

const (
	// PageSize is the largest page Peloton serves: 2,000 workouts in 20 requests.
	PageSize = 100
	// maxPages bounds a sync whatever Peloton says about further pages.
	maxPages = 1000
)

// FetchFunc reads one page of the history; (*client.Client).Workouts is one.
type FetchFunc func(ctx context.Context, page, limit int) (*client.WorkoutPage, error)

// errPaging marks a Peloton whose paging cannot be followed (pages that repeat, no end). A
// download that met it is not resumed: what it read is suspect.
var errPaging = errors.New("peloton's paging cannot be followed")

// pages reads the history newest first, one page after another, for one sync. It counts the
// requests, and notes what the sync's consistency checks need.
type pages struct {
	fetch       FetchFunc
	now         time.Time
	requests    int
	implausible []string // ids of workouts whose times were not plausible
}

// download is what a run of pages yielded.
type download struct {
	workouts []Workout // newest first
	// first is the ids of page 0, all of them, in Peloton's order (nil when page 0 was not
	// read): the newest workouts, which the history must list the same way.
	first []string
	// entries counts the entries read, keepable or not: on a whole download, Peloton's total.
	entries int
	// total is Peloton's total on the last page read (-1 when it gave none); totalChanged
	// says it differed between pages, so the list changed while it was being read.
	total        int
	totalChanged bool
	next         int // the page to read next, when cut short
	// started is when a full download started (Unix seconds), and charged whether it was
	// counted against the day's budget yet (Store.downloadAll says when it is).
	started int64
	charged bool
}

func newDownload() *download { return &download{total: -1} }

// read reads pages from d.next on, until a page holds a completed workout in known (nil: read
// to the end), or the last page. It adds what it read to d, so that a download cut short by
// an error can go on from d later. A page that says more follow but brings no workout not read
// before in this download means that Peloton repeats itself (it ignores page, say): reading
// stops at once.
func (p *pages) read(ctx context.Context, d *download, known map[string]bool) error {
	seen := make(map[string]bool, len(d.workouts))
	for _, w := range d.workouts {
		seen[w.ID] = true
	}
	for ; d.next < maxPages; d.next++ {
		page := d.next
		pg, err := p.fetch(ctx, page, PageSize)
		p.requests++
		if err != nil {
			return fmt.Errorf("workouts page %d: %w", page, err)
		}
		if pg.Total.Valid {
			t := int(pg.Total.Value)
			d.totalChanged = d.totalChanged || (d.total >= 0 && t != d.total)
			d.total = t
		}
		if page == 0 {
			listed := map[client.Text]bool{}
			for _, cw := range pg.Data {
				if cw.ID != "" && !listed[cw.ID] { // as merged: the first of an id
					listed[cw.ID] = true
					d.first = append(d.first, string(cw.ID))
				}
			}
		}
		fresh, old, stop := 0, 0, false
		for _, cw := range pg.Data {
			d.entries++
			w, ok, implausible := convert(cw, p.now)
			if !ok {
				continue
			}
			if implausible {
				p.implausible = append(p.implausible, w.ID)
			}
			if seen[w.ID] {
				old++ // also listed on an earlier page: the list moved, or Peloton repeats it
				continue
			}
			if known[w.ID] && w.Completed() {
				stop = true
				break
			}
			seen[w.ID] = true
			fresh++
			d.workouts = append(d.workouts, w)
		}
		switch {
		case stop || !hasNext(pg, page):
			d.next++
			return nil
		case fresh == 0:
			// Only workouts of earlier pages, or none that can be told apart: following
			// show_next would read the same page again and again.
			return fmt.Errorf("workouts page %d lists no workout that earlier pages did not (%d repeated, %d without an id): %w",
				page, old, len(pg.Data)-old, errPaging)
		}
	}
	return fmt.Errorf("workouts: more than %d pages: %w", maxPages, errPaging)
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
