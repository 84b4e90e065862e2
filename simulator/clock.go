package simulator

import (
	"sync"
	"time"
)

// Clock is a settable clock for tests: give its Now to the simulator, the client and the
// exporter, then Advance it to cross token expiries, cache TTLs and week boundaries at once.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

func NewClock(start time.Time) *Clock { return &Clock{t: start} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
