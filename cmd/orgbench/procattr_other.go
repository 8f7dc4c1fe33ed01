//go:build !linux

package main

import "os/exec"

// setProcAttr leaves the process attributes as they are: the parent-death
// signal is Linux only, and the tool stops the service itself.
func setProcAttr(*exec.Cmd) {}
