// Package procgroup runs external commands (hooks, check scripts) so that a
// timeout kills everything they started, not only the first process.
package procgroup

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// KillOnCancel puts cmd in a new process group and makes cancelling its
// context kill the whole group, so that the command's children die with it.
func KillOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
}
