package proc

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the process in its own process group and has the
// kernel kill it should the starting process die without stopping it.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
