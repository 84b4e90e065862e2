package e2e_test

import "syscall"

// sysProcAttr makes the kernel kill a child process when the test binary dies, so that even a
// test killed by go test's -timeout leaves no Prometheus, Alertmanager or exporter behind.
// (t.Cleanup stops them in every other case.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
