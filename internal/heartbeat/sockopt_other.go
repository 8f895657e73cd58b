//go:build !linux

package heartbeat

import (
	"syscall"
	"time"
)

// setUserTimeout is Linux only; elsewhere keepalive alone drops dead
// connections.
func setUserTimeout(syscall.RawConn, time.Duration) error { return nil }
