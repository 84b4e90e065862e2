//go:build !unix

package testkit

import "os/exec"

// killGroupOnCancel: without process groups, the end of the context kills the command alone
// (exec's default), and WaitDelay bounds the wait for what it started.
func killGroupOnCancel(*exec.Cmd) {}
