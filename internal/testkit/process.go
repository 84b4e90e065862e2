package testkit

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/peloton-exporter/peloton_exporter/internal/syncbuf"
)

// ErrKilled is in the error of a Stop that had to kill the process.
var ErrKilled = errors.New("killed")

// Process is a running child process, with its stdout and stderr in Out.
type Process struct {
	Cmd *exec.Cmd
	Out *syncbuf.Buffer

	grace  time.Duration
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

// Start starts cmd, configured by the caller, and stops it (see Stop) when owner ends: the
// test, or the subtest that needs it only. stopped, when not nil, is then given what Stop
// returned. Where the OS allows it, the process also dies with the test binary.
func Start(owner testing.TB, cmd *exec.Cmd, grace time.Duration, stopped func(error)) (*Process, error) {
	p := &Process{Cmd: cmd, Out: &syncbuf.Buffer{}, grace: grace, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Out, p.Out
	cmd.WaitDelay = waitDelay
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	owner.Cleanup(func() {
		err := p.Stop()
		if stopped != nil {
			stopped(err)
		}
	})
	return p, nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is the exit status, once Exited is closed.
func (p *Process) Err() error { return p.err }

// Running tells whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM, waits up to the grace period, then kills. It returns the exit status, or
// an error wrapping ErrKilled when the process had to be killed. Stopping an exited process
// returns its exit status.
func (p *Process) Stop() error {
	if !p.Running() {
		return p.err
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(p.grace):
	}
	_ = p.Cmd.Process.Kill()
	<-p.exited // a killed process is reaped at once, and WaitDelay bounds the wait for its output
	return fmt.Errorf("did not stop within %v of SIGTERM and was %w", p.grace, ErrKilled)
}
