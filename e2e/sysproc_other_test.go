//go:build !linux

package e2e_test

import "syscall"

// sysProcAttr: only Linux can tie a child's life to its parent's; elsewhere t.Cleanup alone
// stops the child processes.
func sysProcAttr() *syscall.SysProcAttr { return nil }
