//go:build unix

package testkit

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCommandContextKillsTheGroup: a command whose child keeps the output pipe open ends with
// its context, child included, without waiting for WaitDelay.
func TestCommandContextKillsTheGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := CommandContext(ctx, "sh", "-c", "sleep 30 & sleep 30").CombinedOutput()
	if err == nil {
		t.Error("the command succeeded")
	}
	if took := time.Since(start); took > waitDelay/2 {
		t.Errorf("the command took %v to end after its context", took)
	}
}

// TestStopKillsAfterTheGrace: a process that ignores SIGTERM is killed after the grace period,
// and Stop says so; the one given to the cleanup is then the exit status only.
func TestStopKillsAfterTheGrace(t *testing.T) {
	var atCleanup error
	var p *Process
	t.Run("owner", func(t *testing.T) {
		cmd := exec.Command("sh", "-c", `trap "" TERM; echo ready; exec sleep 30`) // sleep inherits the ignored SIGTERM
		var err error
		p, err = Start(t, cmd, 200*time.Millisecond, func(err error) { atCleanup = err })
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.Out.String(), "ready"); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no ready: %q", p.Out.String())
			}
		}
		if err := p.Stop(); !errors.Is(err, ErrKilled) {
			t.Errorf("Stop = %v, want ErrKilled", err)
		}
		if p.Running() {
			t.Error("still running after Stop")
		}
	})
	var ee *exec.ExitError
	if !errors.As(atCleanup, &ee) || errors.Is(atCleanup, ErrKilled) {
		t.Errorf("Stop at cleanup = %v, want the exit status", atCleanup)
	}
}

// TestStopAtCleanup: a process the test leaves running is stopped with SIGTERM when it ends.
func TestStopAtCleanup(t *testing.T) {
	var p *Process
	called := false
	t.Run("owner", func(t *testing.T) {
		var err error
		p, err = Start(t, exec.Command("sleep", "30"), 10*time.Second, func(error) { called = true })
		if err != nil {
			t.Fatal(err)
		}
	})
	if !called || p.Running() {
		t.Errorf("after the owner ended: stopped callback %v, running %v", called, p.Running())
	}
}
