//go:build !linux

package testkit

import "os/exec"

// dieWithParent: only Linux can tie a child's life to its parent's; elsewhere test cleanup alone
// stops the child processes.
func dieWithParent(*exec.Cmd) {}
