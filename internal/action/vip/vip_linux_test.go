package vip_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/vip"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/provider/linux"
	"github.com/batonha/baton/internal/provider/linux/linuxtest"
)

const echoPort = 7007

// lab is a segment with nodes a and b (the pair), a client and optionally
// a third host; a and b run a UDP service answering with their name.
type lab struct {
	seg   *linuxtest.Segment
	hosts map[string]*linux.Host
}

func newLab(t *testing.T, nodes ...string) *lab {
	t.Helper()
	s := linuxtest.NewSegment(t, nodes...)
	l := &lab{seg: s, hosts: map[string]*linux.Host{}}
	for i, n := range nodes {
		s.AddAddr(n, netip.AddrFrom4([4]byte{10, 99, 0, byte(i + 1)}).String()+"/24")
		s.AddAddr(n, "fd00:99::"+string(rune('1'+i))+"/64")
		h, err := linux.OpenNamespace(s.Path(n))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		l.hosts[n] = h
	}
	return l
}

// serve answers every UDP datagram on echoPort in node's namespace with
// the node's name.
func (l *lab) serve(t *testing.T, node string) {
	t.Helper()
	var c net.PacketConn
	err := l.hosts[node].Do(func() (err error) {
		c, err = net.ListenPacket("udp", ":"+strconv.Itoa(echoPort))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo([]byte(node), from)
		}
	}()
}

// ask sends to ip:echoPort from the client until the answer is want, for
// at most 5 s, and fails otherwise.
func (l *lab) ask(t *testing.T, ip netip.Addr, want string) {
	t.Helper()
	var c net.PacketConn
	if err := l.hosts["client"].Do(func() (err error) {
		c, err = net.ListenPacket("udp", ":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, echoPort))
	deadline := time.Now().Add(5 * time.Second)
	last := "(no answer)"
	buf := make([]byte, 64)
	for i := 0; time.Now().Before(deadline) && i < 100; i++ {
		if _, err := c.WriteTo([]byte("who"), to); err != nil {
			last = err.Error()
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, err := c.ReadFrom(buf); err == nil {
			last = string(buf[:n])
			if last == want {
				return
			}
		}
	}
	t.Fatalf("client asking %s: last answer %q, want %q", ip, last, want)
}

// neighbor polls the client's neighbour entry for ip until it is want.
func (l *lab) neighbor(t *testing.T, ip netip.Addr, want net.HardwareAddr) {
	t.Helper()
	var got net.HardwareAddr
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if got, err = l.hosts["client"].Neighbor(context.Background(), "eth0", ip); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(got, want) {
			return
		}
	}
	t.Fatalf("client's neighbour entry for %s is %v, want %v", ip, got, want)
}

func (l *lab) action(t *testing.T, node string, cfg vip.Config) *vip.VIP {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil)).With("node", node)
	v, err := vip.NewWith(cfg, l.hosts[node], linux.MacvlanName, clock.Real{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func (l *lab) has(t *testing.T, node, dev string, p netip.Prefix) bool {
	t.Helper()
	ok, err := l.hosts[node].HasAddress(context.Background(), dev, p)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

var (
	vip4 = netip.MustParsePrefix("10.99.0.100/32")
	vip6 = netip.MustParsePrefix("fd00:99::100/128")
	tk   = action.Takeover{Term: 1, Reason: "test"}
)

func pairConfig() vip.Config {
	return vip.Config{
		Addresses:    []vip.Address{{Address: vip4.String(), Interface: "eth0"}, {Address: vip6.String(), Interface: "eth0"}},
		GARPCount:    3,
		GARPInterval: 50 * time.Millisecond,
	}
}

func TestFailoverMovesClient(t *testing.T) {
	l := newLab(t, "a", "b", "client")
	l.serve(t, "a")
	l.serve(t, "b")
	a, b := l.action(t, "a", pairConfig()), l.action(t, "b", pairConfig())
	ctx := context.Background()
	macA, macB := l.seg.MAC("a", "eth0"), l.seg.MAC("b", "eth0")

	if err := a.Activate(ctx, tk); err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{vip4, vip6} {
		l.ask(t, p.Addr(), "a")
		l.neighbor(t, p.Addr(), macA)
	}
	if err := a.Deactivate(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if l.has(t, "a", "eth0", vip4) || l.has(t, "a", "eth0", vip6) {
		t.Fatal("a still holds the VIP after Deactivate")
	}
	if err := b.Activate(ctx, tk); err != nil {
		t.Fatal(err)
	}
	// The announcements repoint the client's existing entries at b.
	for _, p := range []netip.Prefix{vip4, vip6} {
		l.neighbor(t, p.Addr(), macB)
		l.ask(t, p.Addr(), "b")
	}
}

func TestConflictWithThirdHost(t *testing.T) {
	l := newLab(t, "a", "client", "third")
	for _, p := range []netip.Prefix{vip4, vip6} {
		l.seg.AddAddr("third", p.String())
	}
	macThird := l.seg.MAC("third", "eth0")
	for _, p := range []netip.Prefix{vip4, vip6} {
		cfg := pairConfig()
		cfg.Addresses = []vip.Address{{Address: p.String(), Interface: "eth0"}}
		cfg.ConflictCheck = true
		a := l.action(t, "a", cfg)
		err := a.Activate(context.Background(), tk)
		var ce *vip.ConflictError
		if !errors.Is(err, vip.ErrConflict) || !errors.As(err, &ce) {
			t.Fatalf("%s: Activate returned %v, want a conflict", p, err)
		}
		if !bytes.Equal(ce.MAC, macThird) {
			t.Errorf("%s: conflict MAC %v, want the third host's %v", p, ce.MAC, macThird)
		}
		if l.has(t, "a", "eth0", p) {
			t.Errorf("%s: a took the address despite the conflict", p)
		}
	}
	// A free address passes the probe.
	cfg := pairConfig()
	cfg.Addresses = []vip.Address{{Address: "10.99.0.200/32", Interface: "eth0"}, {Address: "fd00:99::200/128", Interface: "eth0"}}
	cfg.ConflictCheck = true
	if err := l.action(t, "a", cfg).Activate(context.Background(), tk); err != nil {
		t.Fatalf("free address refused: %v", err)
	}
}

func TestDriftRepairAndCleanup(t *testing.T) {
	l := newLab(t, "a", "b", "client")
	l.serve(t, "a")
	a, b := l.action(t, "a", pairConfig()), l.action(t, "b", pairConfig())
	ctx := context.Background()
	if err := a.Activate(ctx, tk); err != nil {
		t.Fatal(err)
	}
	l.seg.IP(l.seg.NS("a"), "addr", "del", vip4.String(), "dev", "eth0")
	if l.has(t, "a", "eth0", vip4) {
		t.Fatal("address not deleted by the test")
	}
	if err := a.Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !l.has(t, "a", "eth0", vip4) {
		t.Fatal("Verify(active) did not re-add the address")
	}
	l.ask(t, vip4.Addr(), "a")

	// b crashed while active earlier: its stale VIP goes at start.
	l.seg.IP(l.seg.NS("b"), "addr", "add", vip4.String(), "dev", "eth0")
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if l.has(t, "b", "eth0", vip4) {
		t.Fatal("Cleanup left the stale address")
	}
	// A standby that finds the address removes it on Verify.
	l.seg.IP(l.seg.NS("b"), "addr", "add", vip6.String(), "dev", "eth0", "nodad")
	if err := b.Verify(ctx, false); err != nil {
		t.Fatal(err)
	}
	if l.has(t, "b", "eth0", vip6) {
		t.Fatal("Verify(standby) left the address")
	}
}

func TestVirtualMACKeepsClientEntry(t *testing.T) {
	l := newLab(t, "a", "b", "client")
	l.serve(t, "a")
	l.serve(t, "b")
	cfg := pairConfig()
	cfg.VirtualMAC = "02:ba:70:00:01:0a"
	vmac, _ := net.ParseMAC(cfg.VirtualMAC)
	a, b := l.action(t, "a", cfg), l.action(t, "b", cfg)
	ctx := context.Background()
	dev := linux.MacvlanName("eth0")

	if err := a.Activate(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if !l.has(t, "a", dev, vip4) {
		t.Fatalf("VIP not on %s", dev)
	}
	for _, p := range []netip.Prefix{vip4, vip6} {
		l.ask(t, p.Addr(), "a")
		l.neighbor(t, p.Addr(), vmac)
	}
	if err := a.Deactivate(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if out, _ := l.seg.Exec("a", "ip", "link", "show", dev); !strings.Contains(out, "does not exist") {
		t.Fatalf("macvlan left on a: %s", out)
	}
	if err := b.Activate(ctx, tk); err != nil {
		t.Fatal(err)
	}
	for _, p := range []netip.Prefix{vip4, vip6} {
		l.ask(t, p.Addr(), "b")
		if got, _ := l.hosts["client"].Neighbor(ctx, "eth0", p.Addr()); !bytes.Equal(got, vmac) {
			t.Errorf("client's entry for %s changed to %v; want the virtual MAC %v", p.Addr(), got, vmac)
		}
	}
}
