package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonha/baton/internal/lab/labtest"
)

// newPair builds the pair topology and registers its teardown.
func newPair(t *testing.T) *Pair {
	t.Helper()
	labtest.RequireRoot(t)
	p, err := NewPair(RandomPrefix(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("closing lab: %v", err)
		}
	})
	return p
}

// echoServer answers every UDP datagram to addr on h with the same bytes.
func echoServer(t *testing.T, h *Host, addr string) {
	t.Helper()
	e, err := StartEcho(h, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
}

// udpRoundTrip sends a datagram from h to addr and waits up to 500 ms for
// the echo, three times at most (a fresh link may drop the first one
// while the neighbour is resolved).
func udpRoundTrip(h *Host, addr string) error {
	var err error
	for range 3 {
		if err = udpRoundTripOnce(h, addr); err == nil {
			return nil
		}
	}
	return err
}

func udpRoundTripOnce(h *Host, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := h.DialContext(ctx, "udp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "ping" {
		return fmt.Errorf("echo returned %q", buf[:n])
	}
	return nil
}

func namespacesWithPrefix(t *testing.T, prefix string) []string {
	t.Helper()
	names, err := leftovers(prefix + "-")
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestPairForwardsAndFollowsLinks(t *testing.T) {
	p := newPair(t)
	server := net.JoinHostPort(ServerBack, "7007")
	echoServer(t, p.Server, server)

	// client -> nva-a -> server and back through the forwarding appliance.
	if err := udpRoundTrip(p.Client, server); err != nil {
		t.Fatalf("client to server via nva-a: %v", err)
	}
	// The heartbeat link is a direct wire.
	echoServer(t, p.B, net.JoinHostPort(BHB, "7008"))
	if err := udpRoundTrip(p.A, net.JoinHostPort(BHB, "7008")); err != nil {
		t.Fatalf("nva-a to nva-b over hb: %v", err)
	}
	// A server whose answer is nil stays silent.
	quiet, err := StartUDPServer(p.B, "udp4", net.JoinHostPort(BHB, "7010"), func([]byte) []byte { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	if err := udpRoundTripOnce(p.A, net.JoinHostPort(BHB, "7010")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a server answering nil: %v, want no datagram at all", err)
	}

	// A dead back link on nva-a breaks the path.
	if err := p.A.SetLink(IfBack, false); err != nil {
		t.Fatal(err)
	}
	if err := udpRoundTrip(p.Client, server); err == nil {
		t.Fatal("client reached the server with nva-a's back link down")
	}
	// Steering both directions to nva-b restores it.
	if err := p.Steer(1); err != nil {
		t.Fatal(err)
	}
	if err := udpRoundTrip(p.Client, server); err != nil {
		t.Fatalf("client to server via nva-b: %v", err)
	}
	// And back to nva-a once its link is up again.
	if err := p.A.SetLink(IfBack, true); err != nil {
		t.Fatal(err)
	}
	if err := p.Steer(0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := udpRoundTrip(p.Client, server)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client to server via nva-a after link up: %v", err)
		}
	}
}

func TestPairSysctlAndAddresses(t *testing.T) {
	p := newPair(t)
	for _, h := range []*Host{p.A, p.B} {
		v, err := h.ReadSysctl("net.ipv4.ip_forward")
		if err != nil {
			t.Fatal(err)
		}
		if v != "1" {
			t.Errorf("%s ip_forward = %q, want 1", h.Name(), v)
		}
	}
	v, err := p.Client.ReadSysctl("net.ipv4.ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	if v != "0" {
		t.Errorf("client ip_forward = %q, want 0 (sysctl leaked across namespaces?)", v)
	}
	ok, err := p.A.HasAddr(AHB)
	if err != nil || !ok {
		t.Errorf("nva-a HasAddr(%s) = %v, %v; want true", AHB, ok, err)
	}
	ok, err = p.B.HasAddr(AHB)
	if err != nil || ok {
		t.Errorf("nva-b HasAddr(%s) = %v, %v; want false", AHB, ok, err)
	}
	links, err := p.A.Links()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(links, ","); got != "eth0,eth1,hb0" {
		t.Errorf("nva-a links = %s, want eth0,eth1,hb0", got)
	}
}

func TestCloseRemovesNamespacesAndKillsProcesses(t *testing.T) {
	labtest.RequireRoot(t)
	prefix := RandomPrefix()
	p, err := NewPair(prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if got := len(namespacesWithPrefix(t, prefix)); got != 5 {
		t.Fatalf("pair has %d namespaces, want 5 (4 hosts + switch)", got)
	}
	logPath := filepath.Join(t.TempDir(), "sleep.log")
	proc, err := p.A.Start("sleep", []string{"sleep", "60"}, nil, logPath)
	if err != nil {
		t.Fatal(err)
	}
	// The process runs in nva-a's namespace, as the program itself.
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(netnsDir, p.A.NS()), &st); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", proc.PID))
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", proc.PID))
		if link == fmt.Sprintf("net:[%d]", st.Ino) && strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: netns %q comm %q; want nva-a's netns and sleep", proc.PID, link, comm)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if proc.Exited() {
		t.Fatal("sleep exited early")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if !proc.Exited() {
		t.Error("Close left the process running")
	}
	if left := namespacesWithPrefix(t, prefix); len(left) != 0 {
		t.Errorf("Close left namespaces %v", left)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := p.A.Start("sleep", []string{"sleep", "1"}, nil, logPath); err == nil {
		t.Error("Start on a closed lab succeeded")
	}
}

func TestProcSignalWaitAndRun(t *testing.T) {
	labtest.RequireRoot(t)
	l, err := New(RandomPrefix(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	h, err := l.AddHost("h1")
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "out.log")
	proc, err := h.Start("sh", []string{"sh", "-c", "echo hello-$LABVAR; exec sleep 60"}, []string{"LABVAR=x1"}, logPath)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "hello-x1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log = %q, want the process's output with env applied", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	werr := proc.Wait()
	if !errors.As(werr, &ee) {
		t.Fatalf("Wait after SIGKILL = %v, want an exit error", werr)
	}
	if !proc.Exited() {
		t.Error("Exited() = false after Wait")
	}
	if err := proc.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after exit = %v, want ErrProcessDone", err)
	}

	out, err := h.Run(context.Background(), "cat", "/proc/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "lo:") || strings.Contains(string(out), "eth0") {
		t.Errorf("/proc/net/dev in a fresh host = %q, want only lo", out)
	}
	if _, err := h.Run(context.Background(), "false"); err == nil {
		t.Error("Run(false) succeeded")
	}
}

func TestHalfBuiltLabCloses(t *testing.T) {
	labtest.RequireRoot(t)
	prefix := RandomPrefix()
	l, err := New(prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	a, err := l.AddHost("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddHost("a"); err == nil {
		t.Error("duplicate host accepted")
	}
	if err := l.Attach(a, "eth0", "nosuch", "10.0.0.1/24"); err == nil {
		t.Error("Attach to a missing segment succeeded")
	}
	if err := l.AddSegment("s"); err != nil {
		t.Fatal(err)
	}
	if err := l.Attach(a, "eth0", "s", "not-a-cidr"); err == nil {
		t.Error("Attach with a bad CIDR succeeded")
	}
	if _, err := New(prefix, nil); err == nil {
		t.Error("New with a prefix in use succeeded")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left := namespacesWithPrefix(t, prefix); len(left) != 0 {
		t.Errorf("Close left %v", left)
	}
}

func TestCleanupRemovesLeftovers(t *testing.T) {
	labtest.RequireRoot(t)
	prefix := RandomPrefix()
	l, err := New(prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	h, err := l.AddHost("x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddHost("y"); err != nil {
		t.Fatal(err)
	}
	proc, err := h.Start("sleep", []string{"sleep", "60"}, nil, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	// A second lab whose prefix extends ours must survive Cleanup(prefix).
	other, err := New(prefix+"z", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	if _, err := other.AddHost("x"); err != nil {
		t.Fatal(err)
	}

	if err := Cleanup(prefix); err != nil {
		t.Fatal(err)
	}
	if left := namespacesWithPrefix(t, prefix); len(left) != 0 {
		t.Errorf("Cleanup left %v", left)
	}
	if len(namespacesWithPrefix(t, prefix+"z")) != 1 {
		t.Error("Cleanup removed another lab's namespace")
	}
	select {
	case <-proc.Done():
	case <-time.After(5 * time.Second):
		t.Error("Cleanup left the process in the namespace running")
	}
	if err := Cleanup("Bad/Prefix"); err == nil {
		t.Error("Cleanup accepted an invalid prefix")
	}
}
