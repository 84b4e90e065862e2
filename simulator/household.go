package simulator

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// A Peloton membership serves a household: up to 20 profiles on one subscription, and every
// profile signs in with its own credentials (peloton-api.md, "Household": the owner's
// /api/user/{id}/subscriptions lists them in shared_user_set). So the simulator holds several
// members, each with its own login, its own id, its own history and settings; a token is
// issued for the member whose credentials were posted and reads that member's data only.

// Member is one profile of the simulated membership. Zero values take the defaults of Config
// (a seed of its own, 1800 workouts, America/Chicago, imperial units, a heart-rate strap).
type Member struct {
	Username, Password string // both required
	Seed               int64
	Workouts           int
	InProgress         bool
	Timezone           string
	DistanceUnit       string // "imperial" or "metric"
	NoHeartRate        bool
	ManualFTP          int
	Imports            int
	NoAnnualChallenge  bool
}

// DemoMember is the i-th profile of the demo's household; 0 is the member of DemoUsername.
// They differ where riders differ: units, a heart-rate strap, the FTP's source, the time zone
// and how long they have ridden. Beyond the third, profiles are generated from their seed.
func DemoMember(i int) Member {
	switch i {
	case 0:
		return Member{Username: DemoUsername, Password: DemoPassword}
	case 1: // newer to Peloton, in Berlin, metric, never wore a heart-rate strap
		return Member{Username: "sam@peloton.example", Password: "demo-password-sam", Seed: 2, Workouts: 420,
			Timezone: "Europe/Berlin", DistanceUnit: "metric", NoHeartRate: true}
	case 2: // sets the FTP by hand, imports runs from Apple Health, skipped the Annual Challenge
		return Member{Username: "kim@peloton.example", Password: "demo-password-kim", Seed: 3, Workouts: 900,
			Timezone: "America/Los_Angeles", ManualFTP: 185, Imports: 12, NoAnnualChallenge: true}
	default:
		n := i + 1
		return Member{Username: fmt.Sprintf("rider%d@peloton.example", n), Password: fmt.Sprintf("demo-password-rider%d", n), Seed: int64(n)}
	}
}

func (m Member) withDefaults(seed int64) Member {
	if m.Seed == 0 {
		m.Seed = seed
	}
	if m.Workouts <= 0 {
		m.Workouts = defaultWorkouts
	}
	if m.Timezone == "" {
		m.Timezone = defaultTimezone
	}
	if m.DistanceUnit == "" {
		m.DistanceUnit = "imperial"
	}
	return m
}

// primaryMember is the member that Config's own fields describe.
func (c Config) primaryMember() Member {
	return Member{Username: c.Username, Password: c.Password, Seed: c.Seed, Workouts: c.Workouts, InProgress: c.InProgress,
		Timezone: c.Timezone, DistanceUnit: c.DistanceUnit, NoHeartRate: c.NoHeartRate, ManualFTP: c.ManualFTP,
		Imports: c.Imports, NoAnnualChallenge: c.NoAnnualChallenge}
}

// buildMember generates a member; s.mu must be held, or s not yet shared.
func (s *Simulator) buildMember(p Member) (*member, error) {
	if p.Username == "" || p.Password == "" {
		return nil, errors.New("simulator: a member needs a username and a password")
	}
	for _, m := range s.members {
		if strings.EqualFold(m.login, p.Username) {
			return nil, fmt.Errorf("simulator: two members sign in as %s", p.Username)
		}
	}
	p = p.withDefaults(defaultSeed + int64(len(s.members)))
	loc, err := time.LoadLocation(p.Timezone)
	if err != nil {
		return nil, fmt.Errorf("simulator: member timezone: %w", err)
	}
	return newMember(p, loc, s.cfg.Now()), nil
}

// AddMember adds a profile to the membership while the simulator runs.
func (s *Simulator) AddMember(p Member) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.buildMember(p)
	if err != nil {
		return err
	}
	s.members = append(s.members, m)
	return nil
}

// primary is the member of Config's own fields, the one the single-member helpers act on.
func (s *Simulator) primary() *member { return s.members[0] }

// memberByID finds a member by user id; s.mu must be held.
func (s *Simulator) memberByID(id string) *member {
	for _, m := range s.members {
		if m.userID == id {
			return m
		}
	}
	return nil
}

// memberByLogin finds a member by what it signs in with; e-mail addresses compare
// case-insensitively at Auth0. s.mu must be held.
func (s *Simulator) memberByLogin(login string) *member {
	for _, m := range s.members {
		if strings.EqualFold(m.login, login) {
			return m
		}
	}
	return nil
}

// errUnknownMember is what the per-member helpers return for a username no member has.
var errUnknownMember = errors.New("simulator: no member signs in with that username")

// UserIDOf is the user id of the member who signs in as username.
func (s *Simulator) UserIDOf(username string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.memberByLogin(username); m != nil {
		return m.userID, nil
	}
	return "", errUnknownMember
}

// IssueTokensFor is IssueTokens for the member who signs in as username.
func (s *Simulator) IssueTokensFor(username string) (access, refresh string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.memberByLogin(username)
	if m == nil {
		return "", "", errUnknownMember
	}
	t := s.issueTokensLocked(defaultScope, "", nil, m)
	return t.AccessToken, t.RefreshToken, nil
}

// AddWorkoutFor is AddWorkout for the member who signs in as username.
func (s *Simulator) AddWorkoutFor(username string, w Workout) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.memberByLogin(username)
	if m == nil {
		return errUnknownMember
	}
	m.add(w, s.cfg.Now())
	return nil
}

// SignIn is one credentials post that reached the check of the password.
type SignIn struct {
	Username string    // as posted
	At       time.Time // by the wall clock, whatever Config.Now says
	Accepted bool
}

// maxSignIns bounds the record of sign-ins.
const maxSignIns = 1000

// SignIns lists the credentials posts so far, oldest first (the newest thousand): what Auth0's
// anomaly detection sees of the exporter, for tests of how logins are spaced.
func (s *Simulator) SignIns() []SignIn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SignIn(nil), s.signIns...)
}

// noteSignInLocked records a credentials post; s.mu must be held.
func (s *Simulator) noteSignInLocked(username string, accepted bool) {
	s.signIns = append(s.signIns, SignIn{Username: username, At: time.Now(), Accepted: accepted})
	if over := len(s.signIns) - maxSignIns; over > 0 {
		s.signIns = append(s.signIns[:0], s.signIns[over:]...)
	}
}

// bearerMember is the member whose live access token the request carries, or nil.
func (s *Simulator) bearerMember(r *http.Request) *member {
	id, ok := s.bearerUser(r)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memberByID(id)
}
