package heartbeat

import (
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// setUserTimeout sets TCP_USER_TIMEOUT, so a connection whose sent data
// stays unacknowledged for d is dropped by the kernel.
func setUserTimeout(rc syscall.RawConn, d time.Duration) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	}); err != nil {
		return fmt.Errorf("reaching socket for TCP_USER_TIMEOUT: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("setting TCP_USER_TIMEOUT to %v: %w", d, serr)
	}
	return nil
}
