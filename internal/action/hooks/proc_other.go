//go:build !linux

package hooks

import "os/exec"

// killGroupOnCancel leaves os/exec's default: only the process is killed.
func killGroupOnCancel(*exec.Cmd) {}
