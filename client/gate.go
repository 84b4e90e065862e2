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

// The refusal budget. Auth0's brute-force protection counts the failed logins of one user from
// one IP in a row, whatever password each tried, and blocks the pair after 10 until the member
// unblocks it, changes the password or an administrator lifts it (Auth0 docs, "User/Password
// Authentication Rate Limits": "more than 10 times consecutively from a single IP address";
// auth0/docs articles/anomaly-detection/references/brute-force-protection-triggers-actions.md).
// So the budget is kept in two counts, both in the state file:
//   - Consecutive: every refused password login since the last successful one, of any
//     credentials. Only a success resets it (a browser sign-in cuts it: see afterSignIn). At
//     maxConsecutiveRefusals no password login is tried at all, whatever the credentials.
//   - Refusals: those of the credentials in use. At maxRefusals they are not tried again;
//     changed credentials are tried at once, within the ceiling above.
//
// An attempt is counted, and saved, before the credentials are posted (charge), and given back
// when the answer is anything but a refusal (record): a post whose answer is lost, to a
// timeout or to a SIGKILL between Auth0's 401 and the save, stays counted, since Auth0 may
// have counted it.
const (
	// maxRefusals is how many refused password logins one set of credentials may have: room
	// for the member's own typos, and a crash-looping container cannot count up to 10.
	maxRefusals = 3
	// maxConsecutiveRefusals is the ceiling of refusals in a row with any credentials, well
	// below Auth0's 10: two wrong passwords at most, and 4 attempts left to the member.
	maxConsecutiveRefusals = 6
	// maxRejections is how many login requests in a row Peloton may reject as malformed (403
	// AnomalyDetected) before password logins stop until a restart: retrying an outdated
	// request cannot help.
	maxRejections = 3
)

// loginStop is the refusal budget, kept in the state file while it is not whole.
type loginStop struct {
	Refusals    int  `json:"refusals,omitempty"`    // refused posts of the fingerprinted credentials
	Consecutive int  `json:"consecutive,omitempty"` // refused posts of any credentials since the last success
	Blocked     bool `json:"blocked,omitempty"`     // Auth0 blocked the account for these credentials
	// Verification: Peloton answered these credentials with a verification step (an e-mailed
	// code, MFA), which a headless login cannot do and each try may e-mail again.
	Verification bool  `json:"verification,omitempty"`
	Last         int64 `json:"last"` // Unix seconds of the latest counted attempt, for the back-off after a restart
	// Credentials fingerprints the username and password that Refusals, Blocked and
	// Verification are about, so that a change is noticed: "salt:key", base64, of Argon2id
	// over the pair with a random salt, cut to fpKeyLen bytes. It is empty when only
	// Consecutive stands.
	Credentials string `json:"credentials,omitempty"`
}

// loginGate decides when a password login may be tried. It owns the rate limit (at most one
// login per LoginInterval, exponential back-off after failures up to MaxLoginBackoff) and the
// refusal budget. Logins run one at a time (the token source's flight), so the gate is
// consulted by one caller at a time; its mutex is for readers of the metric.
type loginGate struct {
	cfg Config

	mu         sync.Mutex
	next       time.Time // no password login before this
	failures   int       // consecutive failed logins since the last success
	rejections int       // consecutive requests Peloton rejected as malformed, since the start
	lastErr    error
	fpFor      string // the fingerprint whose match is cached in fpMatch
	fpMatch    bool
}

func newLoginGate(cfg Config) *loginGate { return &loginGate{cfg: cfg} }

// credentials is what the fingerprint covers.
func (g *loginGate) credentials() string { return g.cfg.Username + "\x00" + g.cfg.Password }

// matches tells whether fp fingerprints the configured credentials. The Argon2id check is
// costly on purpose, so its answer is cached per fingerprint.
func (g *loginGate) matches(fp string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fpFor != fp {
		g.fpFor, g.fpMatch = fp, fingerprintMatches(fp, g.credentials())
	}
	return g.fpMatch
}

// current is stop as it bears on the configured credentials: what it records of other
// credentials (their refusals, a block, a verification step) is dropped, the count in a row
// is kept. changed tells that such a record was dropped.
func (g *loginGate) current(stop *loginStop) (cur *loginStop, changed bool) {
	if stop == nil {
		return nil, false
	}
	next := *stop
	next.Consecutive = max(next.Consecutive, next.Refusals) // every refusal is one in a row too
	if next.Credentials == "" || !g.matches(next.Credentials) {
		changed = next.Credentials != ""
		next.Refusals, next.Blocked, next.Verification, next.Credentials = 0, false, false, ""
	}
	if next == (loginStop{Last: next.Last}) {
		return nil, changed
	}
	if next == *stop {
		return stop, false
	}
	return &next, changed
}

// stopped is why no password login may be tried with the budget cur (from current), or nil.
func (g *loginGate) stopped(cur *loginStop) *LoginStoppedError {
	g.mu.Lock()
	rejections := g.rejections
	g.mu.Unlock()
	e := &LoginStoppedError{Rejections: rejections}
	if cur != nil {
		e.Refusals, e.Consecutive, e.Blocked, e.Verification = cur.Refusals, cur.Consecutive, cur.Blocked, cur.Verification
	}
	if e.Blocked || e.Verification || e.Refusals >= maxRefusals || e.Consecutive >= maxConsecutiveRefusals || e.Rejections >= maxRejections {
		return e
	}
	return nil
}

// stops tells whether password logins with the configured credentials are stopped.
func (g *loginGate) stops(stop *loginStop) bool {
	if g.cfg.Password == "" {
		return false
	}
	cur, _ := g.current(stop)
	return g.stopped(cur) != nil
}

// admit says whether a password login may be tried now. It returns the budget to go on with:
// stop as it bears on the configured credentials. Changed credentials are tried at once, with
// a clean back-off, unless the ceiling of refusals in a row is reached.
func (g *loginGate) admit(stop *loginStop) (*loginStop, error) {
	now := g.cfg.Now()
	cur, changed := g.current(stop)
	if changed {
		g.mu.Lock()
		g.next, g.failures, g.lastErr = time.Time{}, 0, nil
		g.mu.Unlock()
	}
	if e := g.stopped(cur); e != nil {
		return cur, e
	}
	// After a restart the in-memory back-off is gone; the refusals are not.
	if cur != nil {
		if until := time.Unix(cur.Last, 0).Add(g.backoff(cur.Refusals)); now.Before(until) {
			g.mu.Lock()
			g.next = maxTime(g.next, until)
			g.mu.Unlock()
		}
	}
	g.mu.Lock()
	next, lastErr := g.next, g.lastErr
	g.mu.Unlock()
	if now.Before(next) {
		return cur, &LoginBackoffError{Until: next, Cause: lastErr}
	}
	// Last, so that a login the spacer allows is a login tried (and ended by record).
	if sp := g.cfg.LoginSpacer; sp != nil {
		if err := sp.take(g, now); err != nil {
			return cur, err
		}
	}
	return cur, nil
}

// releaseSlot frees the spacer's slot that admit took: the next account's login is spaced from
// now. It is called as the credentials go out, since the spacing that Auth0 sees runs from
// there and not from admit, which came before the login page; and when the login ends, which
// frees a slot that no post did.
func (g *loginGate) releaseSlot() {
	if sp := g.cfg.LoginSpacer; sp != nil {
		sp.done(g, g.cfg.Now())
	}
}

// charge is the budget cur (from admit) with one more refused attempt: what is saved before
// the credentials are posted.
func (g *loginGate) charge(cur *loginStop) *loginStop {
	next := g.forCredentials(cur)
	next.Refusals++
	next.Consecutive++
	next.Last = g.cfg.Now().Unix()
	return next
}

// forCredentials is a copy of cur that fingerprints the configured credentials.
func (g *loginGate) forCredentials(cur *loginStop) *loginStop {
	next := &loginStop{}
	if cur != nil {
		*next = *cur
	}
	if next.Credentials == "" {
		fp := fingerprint(g.credentials()) // Argon2id: not under the mutex
		next.Credentials = fp
		g.mu.Lock()
		g.fpFor, g.fpMatch = fp, true
		g.mu.Unlock()
	}
	return next
}

// record takes the outcome of a login that admit allowed and returns the budget after it.
// cur is admit's budget, charged charge's (nil when no credentials were posted). A refusal, or
// a post that got no answer, keeps the charge; any other answer gives it back.
func (g *loginGate) record(cur, charged *loginStop, err error) *loginStop {
	now := g.cfg.Now()
	g.releaseSlot()
	g.mu.Lock()
	if err == nil {
		g.failures, g.rejections, g.lastErr = 0, 0, nil
		g.next = now.Add(g.cfg.LoginInterval)
		g.mu.Unlock()
		return nil // a success makes the budget whole
	}
	g.failures++
	g.lastErr = err
	g.next = now.Add(g.backoff(g.failures))
	if errors.Is(err, ErrLoginRejected) {
		g.rejections++
	} else {
		g.rejections = 0
	}
	g.mu.Unlock()
	switch {
	case errors.Is(err, ErrCredentialsRefused), errors.Is(err, errUnanswered):
		if charged == nil { // not seen: a refusal comes after the post
			charged = g.charge(cur)
		}
		return charged
	case errors.Is(err, ErrAccountBlocked), errors.Is(err, ErrVerificationRequired):
		next := g.forCredentials(cur)
		next.Blocked = next.Blocked || errors.Is(err, ErrAccountBlocked)
		next.Verification = next.Verification || errors.Is(err, ErrVerificationRequired)
		next.Last = now.Unix()
		return next
	}
	return cur
}

// signedIn forgets, after a browser sign-in, what only the process knew: the rejections.
func (g *loginGate) signedIn() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rejections = 0
}

// afterSignIn is the budget after a browser sign-in. The member has acted, so nothing of the
// credentials' record stands (refusals, a block, a verification step), and password logins
// may go on. The count in a row is cut, not reset, to leave maxRefusals below the ceiling: the
// sign-in may come from another network, and a success from there does not reset Auth0's
// count for the exporter's.
func (s *loginStop) afterSignIn() *loginStop {
	if s == nil {
		return nil
	}
	n := min(max(s.Consecutive, s.Refusals), maxConsecutiveRefusals-maxRefusals)
	if n == 0 {
		return nil
	}
	return &loginStop{Consecutive: n, Last: s.Last}
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

// The fingerprint only has to notice that the credentials changed, not to tell credentials
// apart: so it is cut to fpKeyLen = 2 bytes. A change goes unnoticed with a chance of 2⁻¹⁶
// (the new credentials would then stay stopped until a sign-in), while whoever reads the state
// file cannot confirm a password guess with it: one guess in 65,536 matches by chance, so a
// match says next to nothing. A full-length hash would let them confirm guesses offline.
// Since the truncation is the protection, Argon2id's cost only has to make sieving a word list
// slow, not impossible: 1 MiB and 4 passes (about 2 ms here) rather than OWASP's 19 MiB for
// stored password hashes, which doubled the exporter's resident memory for one check.
const (
	fpTime    = 4
	fpMemory  = 1024
	fpThreads = 1
	fpKeyLen  = 2
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
