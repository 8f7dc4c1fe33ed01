package chaos

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the service in its own process group and has the kernel
// kill it should the runner die without stopping it.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
