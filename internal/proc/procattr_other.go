//go:build !linux

package proc

import "os/exec"

// setProcAttr leaves the process attributes as they are: the parent-death
// signal is Linux only, and the caller stops the process itself.
func setProcAttr(*exec.Cmd) {}
