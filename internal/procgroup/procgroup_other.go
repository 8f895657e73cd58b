//go:build !linux

// Package procgroup runs external commands (hooks, check scripts) so that a
// timeout kills everything they started, not only the first process.
package procgroup

import "os/exec"

// KillOnCancel leaves os/exec's default elsewhere: only the process is killed.
func KillOnCancel(*exec.Cmd) {}
