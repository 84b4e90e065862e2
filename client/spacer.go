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
// The spacing holds between the credentials posts, which is what Auth0 sees: a login that is
// allowed holds the slot until it posts its credentials (after the login page, which may take
// a while) or ends without posting them, and the next login is spaced from then.
//
// While Auth0 throttles the address, no account logs in at all (blockUntil).
//
// It never waits: an account that may not log in now is told when its turn comes (a
// LoginBackoffError with Turn set), and asks again then. Turns are handed out in the order
// accounts first ask, so that no account waits forever behind the others; a turn that is not
// taken is dropped after a while. One LoginSpacer is shared by the login gates of all the
// accounts (Config.LoginSpacer).
type LoginSpacer struct {
	spacing time.Duration

	mu    sync.Mutex
	last  time.Time                // the latest credentials post, or end of a login that posted none
	busy  *loginGate               // the login allowed that has not posted yet, if any
	block time.Time                // Auth0 throttles this address's logins until then
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

// take allows g a login now (nil), or says until when it waits: a LoginBackoffError with its
// turn, or a RateLimitedError while Auth0 throttles the address. An allowed login must be
// followed by done.
func (s *LoginSpacer) take(g *loginGate, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(s.block) {
		return &RateLimitedError{Endpoint: "login", Until: s.block, Reason: "Auth0 throttles logins from this IP, as another account " +
			"was told; no account logs in with its password until it lifts, by itself"}
	}
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
		return &LoginBackoffError{Until: turn, Turn: true}
	}
	// Its turn came, but the slot is not free: a login in flight has yet to post (so the next
	// post is a spacing after now at the earliest), or one posted less than a spacing ago (an
	// account that took its own turn late took this one too). The next slot is this account's.
	next := time.Time{}
	switch {
	case s.busy != nil:
		next = now.Add(s.spacing)
	case !s.last.IsZero():
		next = s.last.Add(s.spacing)
	}
	if now.Before(next) {
		s.turns[g] = next
		s.tail = maxTime(s.tail, next)
		return &LoginBackoffError{Until: next, Turn: true}
	}
	delete(s.turns, g)
	s.busy = g
	s.tail = maxTime(s.tail, now)
	return nil
}

// done tells that g's login posted its credentials at now, or ended at now without posting
// them: the next login is spaced from then. Only the first call of a login counts.
func (s *LoginSpacer) done(g *loginGate, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy == g {
		s.busy, s.last = nil, maxTime(s.last, now)
	}
}

// release drops g's place: a client that is done with gives up the turn it was told to come
// back for, which would otherwise stay booked for up to turnKept and push the accounts that
// ask next a slot back.
func (s *LoginSpacer) release(g *loginGate, now time.Time) {
	s.done(g, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.turns, g)
	s.tail = s.last
	for _, t := range s.turns {
		s.tail = maxTime(s.tail, t)
	}
}

// blockUntil stops every account's password logins until until: Auth0's Suspicious IP
// Throttling answered one of them, and it throttles the address, not the account. It tells
// whether no block was in force at now, so that a throttle is logged once.
//
// Token refreshes go on: they are no login attempts. The throttle's stages are pre-login
// (logins), pre-user-registration (signups) and pre-custom-token-exchange (Custom Token
// Exchange's /oauth/token requests) (Auth0 Management API, suspicious-ip-throttling settings;
// Auth0 docs, "Suspicious IP Throttling" and "Custom Token Exchange attack protection"); no
// stage covers the refresh-token grant, and the simulator throttles only the credentials post.
func (s *LoginSpacer) blockUntil(until, now time.Time) (started bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	started = !now.Before(s.block)
	s.block = maxTime(s.block, until)
	return started
}
