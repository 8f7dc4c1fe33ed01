//go:build !linux

package chaos

import "os/exec"

// setProcAttr leaves the process attributes as they are: the parent-death
// signal is Linux only, and the runner stops the services itself.
func setProcAttr(*exec.Cmd) {}
