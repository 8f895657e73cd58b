package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listening on %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reading notification: %v", err)
	}
	return string(buf[:n])
}

// assertEmpty checks that nothing more is queued on c.
func assertEmpty(t *testing.T, c *net.UnixConn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("unexpected extra notification %q (err %v)", buf[:n], err)
	}
}

func TestNotifyPathSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "n.sock")
	c := listen(t, sock)
	n := New([]string{"FOO=bar", "NOTIFY_SOCKET=" + sock})
	if !n.Enabled() {
		t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
	}
	for _, msg := range []string{Ready, "STATUS=active, peer up", "READY=1\nSTATUS=x", Stopping} {
		if err := n.Notify(msg); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); got != msg {
			t.Errorf("received %q, want %q", got, msg)
		}
	}
	if err := n.Status("two\nlines"); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "STATUS=two lines" {
		t.Errorf("Status sent %q", got)
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@baton-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	c := listen(t, name)
	n := New([]string{"NOTIFY_SOCKET=" + name})
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != Ready {
		t.Errorf("received %q", got)
	}
}

func TestNotifyUnset(t *testing.T) {
	for _, n := range []*Notifier{New(nil), New([]string{"NOTIFY_SOCKET="}), nil, {}} {
		if n.Enabled() {
			t.Error("Enabled() = true without a socket")
		}
		if err := n.Notify(Ready); err != nil {
			t.Errorf("Notify without socket = %v, want nil", err)
		}
	}
}

func TestNotifyErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.sock")
	if err := New([]string{"NOTIFY_SOCKET=" + missing}).Notify(Ready); err == nil {
		t.Error("Notify to a missing socket succeeded")
	}
	if err := New([]string{"NOTIFY_SOCKET=relative.sock"}).Notify(Ready); err == nil {
		t.Error("Notify to a relative socket path succeeded")
	}
}

func TestWatchdogInterval(t *testing.T) {
	const pid = 4242
	cases := []struct {
		env  []string
		want time.Duration
		ok   bool
	}{
		{nil, 0, false},
		{[]string{"WATCHDOG_USEC=10000000"}, 5 * time.Second, true},
		{[]string{"WATCHDOG_USEC=10000000", "WATCHDOG_PID=4242"}, 5 * time.Second, true},
		{[]string{"WATCHDOG_USEC=10000000", "WATCHDOG_PID=1"}, 0, false},
		{[]string{"WATCHDOG_USEC=10000000", "WATCHDOG_PID=x"}, 0, false},
		{[]string{"WATCHDOG_USEC=0"}, 0, false},
		{[]string{"WATCHDOG_USEC=-5"}, 0, false},
		{[]string{"WATCHDOG_USEC=abc"}, 0, false},
		{[]string{"WATCHDOG_USEC=99999999999999999999"}, 0, false},
		{[]string{"WATCHDOG_USEC=3"}, 1500 * time.Nanosecond, true},
	}
	for _, c := range cases {
		got, ok := newForPID(c.env, pid).WatchdogInterval()
		if got != c.want || ok != c.ok {
			t.Errorf("env %q: WatchdogInterval() = %v, %v; want %v, %v", c.env, got, ok, c.want, c.ok)
		}
	}
	// New uses our own pid.
	env := []string{"WATCHDOG_USEC=2000000", fmt.Sprintf("WATCHDOG_PID=%d", os.Getpid())}
	if got, ok := New(env).WatchdogInterval(); !ok || got != time.Second {
		t.Errorf("New with our pid: %v, %v", got, ok)
	}
}
