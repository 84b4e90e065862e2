package main

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel SIGKILL the child when the bench dies, even by SIGKILL, when
// none of the bench's own clean-up can run.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
