package client

import (
	"encoding/json"
	"errors"
	"io/fs"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/peloton-exporter/peloton_exporter/internal/atomicfile"
)

const stateVersion = 1

// tokenState is what the state file holds, so that a restart reuses tokens instead of logging
// in again.
type tokenState struct {
	Version      int    `json:"version"`
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresAt    int64  `json:"expires_at,omitempty"` // Unix seconds; 0 when unknown
	IssuedAt     int64  `json:"issued_at,omitempty"`  // Unix seconds; 0 when unknown
	UserID       string `json:"user_id,omitempty"`
	// Supplied fingerprints the tokens the user gave on the command line (a short hash, not
	// the tokens), to notice when they are replaced.
	Supplied string `json:"supplied,omitempty"`
	// LoginStop is the refusal budget of password logins while it is not whole (gate.go).
	LoginStop *loginStop `json:"login_stop,omitempty"`
	// SignedInAt is when `peloton_exporter login` wrote these tokens (Unix seconds), so that a
	// running exporter takes them the next time it needs new ones.
	SignedInAt int64 `json:"signed_in_at,omitempty"`
}

// stateStore reads and writes the state file. Problems are logged and never fatal: the worst
// case is one more login.
type stateStore struct {
	path   string
	logger log.Logger

	mu      sync.Mutex
	failing bool // saving failed last time; reported once until it works again
	// ours says the file at path was missing or held a state file when read: only then is a
	// symlink there written through (atomicfile.Write).
	ours bool
}

func (s *stateStore) load() tokenState {
	if s.path == "" {
		return tokenState{}
	}
	f, err := atomicfile.Read(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.ours = true
		return tokenState{}
	}
	if err != nil {
		level.Warn(s.logger).Log("msg", "cannot read the state file; starting without saved tokens", "path", s.path, "err", err)
		return tokenState{}
	}
	defer f.Close()
	var st tokenState
	if err := json.Unmarshal(f.Data, &st); err != nil || st.Version != stateVersion {
		// Not tightened: a path that names some other file must not have it changed.
		level.Warn(s.logger).Log("msg", "the state file is damaged or of an unknown version; ignoring it", "path", s.path)
		return tokenState{}
	}
	s.ours = true
	if f.Loose() {
		// Tightened at once, the file that was read and proved to be a state file: the next
		// save may be days away.
		msg := "the state file holds tokens and was readable by other users; its mode is now 0600"
		if err := f.Tighten(); err != nil {
			msg = "the state file holds tokens and is readable by other users; cannot change its mode: " + err.Error()
		}
		level.Warn(s.logger).Log("msg", msg, "path", f.Path, "mode", f.Mode.String())
	}
	return st
}

func (s *stateStore) save(st tokenState) {
	if s.path == "" {
		return
	}
	b, err := json.Marshal(st)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		err = atomicfile.Write(s.path, b, s.ours)
	}
	if err == nil {
		s.ours = true
	}
	switch {
	case err != nil && !s.failing:
		level.Warn(s.logger).Log("msg", "cannot save tokens to the state file; a restart will need a new login", "path", s.path, "err", err)
	case err == nil && s.failing:
		level.Info(s.logger).Log("msg", "the state file is writable again", "path", s.path)
	}
	s.failing = err != nil
}
