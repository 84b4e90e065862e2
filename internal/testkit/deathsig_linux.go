package testkit

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the child when the test binary dies, so that even a test
// killed by go test's -timeout leaves no process behind. (Test cleanup stops it in every other
// case.)
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
