package client

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// maxRefusals is how many refused password logins the exporter risks with one set of
// credentials, in total and across restarts. Auth0's brute-force protection blocks a user
// from an IP after 10 failed logins (Auth0 docs, "Brute-Force Protection"); 3 leaves the
// member room for their own typos, and a crash-looping container cannot count up to 10.
const maxRefusals = 3

// loginStop is the refusal budget, kept in the state file while it is not whole: how often
// Peloton refused the credentials it fingerprints, or that it blocked the account.
type loginStop struct {
	Refusals int   `json:"refusals,omitempty"`
	Blocked  bool  `json:"blocked,omitempty"`
	Last     int64 `json:"last"` // Unix seconds of the latest refusal, for the back-off after a restart
	// Credentials fingerprints the refused username and password so that a change lifts the
	// stop at once: "salt:hash", base64, of Argon2id over the pair. It is kept only while a
	// stop stands, so it is a fingerprint of credentials Peloton refused (or of a blocked
	// account's); like any check value it would confirm a guess, which the memory-hard
	// Argon2id with a random salt makes slow, and the 0600 state file holds the far more
	// useful refresh token anyway. It cannot be turned back into the password.
	Credentials string `json:"credentials"`
}

// loginGate decides when a password login may be tried. It owns the rate limit (at most one
// login per LoginInterval, exponential back-off after failures up to MaxLoginBackoff) and the
// refusal budget (maxRefusals refused logins per set of credentials, none once the account is
// blocked). Logins run one at a time (the token source's flight), so the gate is consulted by
// one caller at a time; its mutex is for readers of the metric.
type loginGate struct {
	cfg Config

	mu       sync.Mutex
	next     time.Time // no password login before this
	failures int       // consecutive failed logins since the last success
	lastErr  error
	fpFor    string // the stop fingerprint whose match is cached in fpMatch
	fpMatch  bool
}

func newLoginGate(cfg Config) *loginGate { return &loginGate{cfg: cfg} }

// credentials is what the fingerprint covers.
func (g *loginGate) credentials() string { return g.cfg.Username + "\x00" + g.cfg.Password }

// applies tells whether stop was recorded for the configured credentials. The Argon2id check
// is costly on purpose, so its answer is cached per stop.
func (g *loginGate) applies(stop *loginStop) bool {
	if stop == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fpFor != stop.Credentials {
		g.fpFor, g.fpMatch = stop.Credentials, fingerprintMatches(stop.Credentials, g.credentials())
	}
	return g.fpMatch
}

// stops tells whether stop forbids password logins with the configured credentials.
func (g *loginGate) stops(stop *loginStop) bool {
	return g.cfg.Password != "" && g.applies(stop) && (stop.Blocked || stop.Refusals >= maxRefusals)
}

// admit says whether a password login may be tried now. It returns the budget to go on with:
// nil when the credentials changed since the stop was recorded (the new ones are tried at
// once, with a clean back-off).
func (g *loginGate) admit(stop *loginStop) (*loginStop, error) {
	now := g.cfg.Now()
	if stop != nil && !g.applies(stop) {
		g.mu.Lock()
		g.next, g.failures, g.lastErr = time.Time{}, 0, nil
		g.mu.Unlock()
		stop = nil
	}
	if stop != nil {
		if stop.Blocked || stop.Refusals >= maxRefusals {
			return stop, &LoginStoppedError{Refusals: stop.Refusals, Blocked: stop.Blocked}
		}
		// After a restart the in-memory back-off is gone; the refusals are not.
		if until := time.Unix(stop.Last, 0).Add(g.backoff(stop.Refusals)); now.Before(until) {
			g.mu.Lock()
			g.next = maxTime(g.next, until)
			g.mu.Unlock()
		}
	}
	g.mu.Lock()
	next, lastErr := g.next, g.lastErr
	g.mu.Unlock()
	if now.Before(next) {
		return stop, &LoginBackoffError{Until: next, Cause: lastErr}
	}
	// Last, so that a login the spacer allows is a login tried.
	if sp := g.cfg.LoginSpacer; sp != nil {
		if turn, ok := sp.take(g, now); !ok {
			return stop, &LoginBackoffError{Until: turn, Turn: true}
		}
	}
	return stop, nil
}

// record takes the outcome of a login that admit allowed and returns the budget after it.
func (g *loginGate) record(stop *loginStop, err error) *loginStop {
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		g.failures, g.lastErr = 0, nil
		g.next = now.Add(g.cfg.LoginInterval)
		if stop != nil && stop.Refusals == 0 && !stop.Blocked {
			return stop
		}
		return nil // a success makes the budget whole
	}
	g.failures++
	g.lastErr = err
	g.next = now.Add(g.backoff(g.failures))
	refused, blocked := errors.Is(err, ErrCredentialsRefused), errors.Is(err, ErrAccountBlocked)
	if !refused && !blocked {
		return stop
	}
	next := loginStop{Last: now.Unix()}
	if stop != nil {
		next = *stop
		next.Last = now.Unix()
	} else {
		next.Credentials = fingerprint(g.credentials())
		g.fpFor, g.fpMatch = next.Credentials, true
	}
	if refused {
		next.Refusals++
	}
	next.Blocked = next.Blocked || blocked
	return &next
}

// backoff is the wait after the n-th consecutive failure: LoginInterval doubled n-1 times, at
// most MaxLoginBackoff.
func (g *loginGate) backoff(n int) time.Duration {
	if n < 1 {
		return 0
	}
	return min(g.cfg.LoginInterval<<min(n-1, 20), g.cfg.MaxLoginBackoff)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Argon2id parameters: OWASP's minimum recommendation (19 MiB, 2 passes, 1 thread).
const (
	fpTime    = 2
	fpMemory  = 19 * 1024
	fpThreads = 1
	fpKeyLen  = 16
)

func fingerprint(credentials string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	return fingerprintWith(salt, credentials)
}

func fingerprintWith(salt []byte, credentials string) string {
	key := argon2.IDKey([]byte(credentials), salt, fpTime, fpMemory, fpThreads, fpKeyLen)
	enc := base64.RawStdEncoding
	return enc.EncodeToString(salt) + ":" + enc.EncodeToString(key)
}

func fingerprintMatches(fp, credentials string) bool {
	saltText, _, ok := strings.Cut(fp, ":")
	salt, err := base64.RawStdEncoding.DecodeString(saltText)
	if !ok || err != nil || len(salt) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(fingerprintWith(salt, credentials)), []byte(fp)) == 1
}
