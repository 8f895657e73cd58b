// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) without dependencies: readiness, status text, stopping,
// and watchdog keep-alives sent as datagrams to $NOTIFY_SOCKET.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Common states for Notify.
const (
	Ready     = "READY=1"
	Stopping  = "STOPPING=1"
	Reloading = "RELOADING=1"
	Watchdog  = "WATCHDOG=1"
)

// Notifier sends notifications to the service manager. The zero value and
// a Notifier built from an environment without NOTIFY_SOCKET do nothing.
type Notifier struct {
	socket   string        // NOTIFY_SOCKET; "@name" is an abstract socket
	watchdog time.Duration // WATCHDOG_USEC, 0 when unset or not for us
}

// New reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from environ
// (in os.Environ form). The watchdog is enabled only when WATCHDOG_USEC is
// a positive integer and WATCHDOG_PID is unset or names this process.
func New(environ []string) *Notifier {
	return newForPID(environ, os.Getpid())
}

func newForPID(environ []string, pid int) *Notifier {
	env := make(map[string]string)
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	n := &Notifier{socket: env["NOTIFY_SOCKET"]}
	usec, err := strconv.ParseUint(env["WATCHDOG_USEC"], 10, 63)
	if err != nil || usec == 0 || usec > uint64(time.Duration(1<<63-1)/time.Microsecond) {
		return n
	}
	if p, ok := env["WATCHDOG_PID"]; ok && p != "" {
		wp, err := strconv.Atoi(p)
		if err != nil || wp != pid {
			return n
		}
	}
	n.watchdog = time.Duration(usec) * time.Microsecond
	return n
}

// Enabled reports whether a notification socket is configured.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// Notify sends state (one or more newline-separated VAR=value
// assignments, e.g. "READY=1\nSTATUS=active") to the service manager. It
// does nothing and returns nil when no socket is configured.
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	if !strings.HasPrefix(n.socket, "/") && !strings.HasPrefix(n.socket, "@") {
		return fmt.Errorf("notifying systemd: unsupported NOTIFY_SOCKET %q", n.socket)
	}
	// Go maps a leading '@' to the abstract namespace on Linux.
	addr := &net.UnixAddr{Name: n.socket, Net: "unixgram"}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("connecting to systemd notify socket %s: %w", n.socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sending %q to systemd notify socket %s: %w", firstLine(state), n.socket, err)
	}
	return nil
}

// Status sends a free-form status line (STATUS=...), shown by systemctl
// status. Newlines in s are replaced by spaces.
func (n *Notifier) Status(s string) error {
	return n.Notify("STATUS=" + strings.ReplaceAll(s, "\n", " "))
}

// WatchdogInterval is how often to send WATCHDOG=1: half of WATCHDOG_USEC,
// as sd_watchdog_enabled(3) recommends. The bool is false when systemd
// does not expect keep-alives from this process.
func (n *Notifier) WatchdogInterval() (time.Duration, bool) {
	if n == nil || n.watchdog == 0 {
		return 0, false
	}
	return n.watchdog / 2, true
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + "..."
	}
	return s
}
