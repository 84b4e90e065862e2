package client

import (
	"sync"
	"time"
)

// LoginSpacer spaces the password logins of several accounts that log in from one place: at
// most one login per spacing, whichever account it is. A household's accounts share the home's
// IP address, and Auth0's attack protection judges logins by IP as well as by user: its
// brute-force protection counts failures per user and IP, and its Suspicious IP Throttling,
// on by default, answers 429 to an IP that "rapidly attempts too many logins" across accounts
// (Auth0 docs, "Suspicious IP Throttling"; the Management API's default pre-login stage allows
// 100 attempts a day, one more every 14.4 minutes). So a burst of logins, say at start-up,
// must not come from one address.
//
// It never waits: an account that may not log in now is told when its turn comes (a
// LoginBackoffError with Turn set), and asks again then. Turns are handed out in the order
// accounts first ask, so that no account waits forever behind the others; a turn that is not
// taken is dropped after a while. One LoginSpacer is shared by the login gates of all the
// accounts (Config.LoginSpacer).
type LoginSpacer struct {
	spacing time.Duration

	mu    sync.Mutex
	last  time.Time                // the latest login allowed
	tail  time.Time                // the latest turn handed out or login allowed: newcomers queue after it
	turns map[*loginGate]time.Time // the accounts told to come back, and when
}

// turnKept is how long after its time a turn waits to be taken; an account that comes later
// queues again.
const turnKept = 10 * time.Minute

// NewLoginSpacer allows one password login per spacing.
func NewLoginSpacer(spacing time.Duration) *LoginSpacer {
	return &LoginSpacer{spacing: spacing, turns: map[*loginGate]time.Time{}}
}

// take allows g a login now, or returns when its turn comes.
func (s *LoginSpacer) take(g *loginGate, now time.Time) (turn time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.turns {
		if now.Sub(t) > turnKept {
			delete(s.turns, k)
		}
	}
	turn, waiting := s.turns[g]
	if !waiting {
		turn = maxTime(now, s.tail.Add(s.spacing))
		s.tail = turn
	}
	if now.Before(turn) {
		s.turns[g] = turn
		return turn, false
	}
	if next := s.last.Add(s.spacing); !s.last.IsZero() && now.Before(next) {
		// Its turn came, but an account that took its own turn late took this one too: the
		// next slot is this account's.
		s.turns[g] = next
		s.tail = maxTime(s.tail, next)
		return next, false
	}
	delete(s.turns, g)
	s.last = now
	s.tail = maxTime(s.tail, now)
	return time.Time{}, true
}
