//go:build !linux

package main

import "os/exec"

// setDeathSignal: only Linux has a parent-death signal; elsewhere killAll and the ceiling
// server's parent watch have to do.
func setDeathSignal(*exec.Cmd) {}
