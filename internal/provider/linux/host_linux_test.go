package linux_test

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/provider/linux"
	"github.com/batonha/baton/internal/provider/linux/linuxtest"
)

func openHost(t *testing.T, s *linuxtest.Segment, node string) *linux.Host {
	t.Helper()
	h, err := linux.OpenNamespace(s.Path(node))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// waitNeighbor polls node's neighbour table until ip maps to want.
func waitNeighbor(t *testing.T, h *linux.Host, ip netip.Addr, want net.HardwareAddr) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	var got net.HardwareAddr
	for time.Now().Before(deadline) {
		var err error
		got, err = h.Neighbor(context.Background(), "eth0", ip)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(got, want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("neighbour entry for %s is %v, want %v", ip, got, want)
}

func TestAddressLifecycle(t *testing.T) {
	s := linuxtest.NewSegment(t, "a")
	h := openHost(t, s, "a")
	ctx := context.Background()
	for _, p := range []netip.Prefix{netip.MustParsePrefix("10.99.0.100/24"), netip.MustParsePrefix("fd00:99::100/64")} {
		if ok, err := h.HasAddress(ctx, "eth0", p); err != nil || ok {
			t.Fatalf("%s present before add: %v %v", p, ok, err)
		}
		for range 2 { // idempotent
			if err := h.AddAddress(ctx, "eth0", p); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := h.HasAddress(ctx, "eth0", p); err != nil || !ok {
			t.Fatalf("%s missing after add: %v %v", p, ok, err)
		}
		out := s.IP(s.NS("a"), "addr", "show", "dev", "eth0")
		if !strings.Contains(out, p.String()) {
			t.Fatalf("ip addr does not show %s:\n%s", p, out)
		}
		if p.Addr().Is6() && strings.Contains(out, "tentative") {
			t.Errorf("IPv6 VIP is tentative (DAD not skipped):\n%s", out)
		}
		other := netip.PrefixFrom(p.Addr(), p.Bits()-8)
		if ok, _ := h.HasAddress(ctx, "eth0", other); ok {
			t.Errorf("HasAddress matched %s with another prefix length", other)
		}
		for range 2 {
			if err := h.RemoveAddress(ctx, "eth0", p); err != nil {
				t.Fatal(err)
			}
		}
		if ok, _ := h.HasAddress(ctx, "eth0", p); ok {
			t.Fatalf("%s present after remove", p)
		}
	}
	if err := h.AddAddress(ctx, "nosuch0", netip.MustParsePrefix("10.1.1.1/32")); err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("adding to a missing interface: %v", err)
	}
	if ok, err := h.HasAddress(ctx, "nosuch0", netip.MustParsePrefix("10.1.1.1/32")); ok || err != nil {
		t.Errorf("missing interface: %v %v", ok, err)
	}
}

// TestAnnounceMovesNeighbor: the client has an entry for the VIP pointing
// at a; b's gratuitous ARP / unsolicited NA repoints it at b.
func TestAnnounceMovesNeighbor(t *testing.T) {
	s := linuxtest.NewSegment(t, "a", "b", "client")
	s.AddAddr("client", "10.99.0.10/24")
	s.AddAddr("client", "fd00:99::10/64")
	b := openHost(t, s, "b")
	client := openHost(t, s, "client")
	macA, macB := s.MAC("a", "eth0"), s.MAC("b", "eth0")
	for _, vip := range []string{"10.99.0.100", "fd00:99::100"} {
		ip := netip.MustParseAddr(vip)
		s.IP(s.NS("client"), "neigh", "replace", vip, "lladdr", macA.String(), "dev", "eth0", "nud", "stale")
		waitNeighbor(t, client, ip, macA)
		if err := b.AddAddress(context.Background(), "eth0", netip.PrefixFrom(ip, ip.BitLen())); err != nil {
			t.Fatal(err)
		}
		if ip.Is4() {
			err := b.SendGratuitousARP(context.Background(), "eth0", ip, 3, 10*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
		} else {
			if err := b.SendUnsolicitedNA(context.Background(), "eth0", ip, 3, 10*time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		waitNeighbor(t, client, ip, macB)
	}
}

func TestProbeConflict(t *testing.T) {
	s := linuxtest.NewSegment(t, "a", "third")
	s.AddAddr("a", "10.99.0.1/24")
	s.AddAddr("third", "10.99.0.100/24")
	s.AddAddr("third", "fd00:99::100/64")
	a := openHost(t, s, "a")
	third := s.MAC("third", "eth0")
	ctx := context.Background()
	for _, c := range []struct {
		ip   string
		want net.HardwareAddr
	}{
		{"10.99.0.100", third},
		{"fd00:99::100", third},
		{"10.99.0.101", nil},
		{"fd00:99::101", nil},
	} {
		start := time.Now()
		got, err := a.ProbeConflict(ctx, "eth0", netip.MustParseAddr(c.ip), 300*time.Millisecond)
		if err != nil {
			t.Fatalf("%s: %v", c.ip, err)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s: conflict %v, want %v", c.ip, got, c.want)
		}
		if c.want == nil && time.Since(start) < 250*time.Millisecond {
			t.Errorf("%s: gave up after %v, before the timeout", c.ip, time.Since(start))
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.ProbeConflict(cctx, "eth0", netip.MustParseAddr("10.99.0.101"), time.Second); err == nil {
		t.Error("cancelled probe returned no error")
	}
}

// TestProbeConflictIgnoresPeer: the crashed peer still answers for the
// address; with its MAC ignored the probe reports a third host that also
// answers, and nothing when only the peer does.
func TestProbeConflictIgnoresPeer(t *testing.T) {
	s := linuxtest.NewSegment(t, "a", "peer", "third")
	s.AddAddr("a", "10.99.0.1/24")
	s.AddAddr("peer", "10.99.0.100/24")
	s.AddAddr("peer", "10.99.0.101/24")
	s.AddAddr("third", "10.99.0.100/24")
	s.AddAddr("peer", "fd00:99::100/64")
	s.AddAddr("third", "fd00:99::100/64")
	a := openHost(t, s, "a")
	peer, third := s.MAC("peer", "eth0"), s.MAC("third", "eth0")
	ctx := context.Background()
	for _, c := range []struct {
		ip   string
		want net.HardwareAddr
	}{
		{"10.99.0.100", third},
		{"fd00:99::100", third},
		{"10.99.0.101", nil},
	} {
		for range 3 { // whoever answers first, the third host is found
			got, err := a.ProbeConflict(ctx, "eth0", netip.MustParseAddr(c.ip), 200*time.Millisecond, peer)
			if err != nil {
				t.Fatalf("%s: %v", c.ip, err)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("%s ignoring the peer %v: conflict %v, want %v", c.ip, peer, got, c.want)
			}
		}
	}
	// Without the ignore list the peer's answer is a conflict.
	if got, err := a.ProbeConflict(ctx, "eth0", netip.MustParseAddr("10.99.0.101"), 200*time.Millisecond); err != nil || !bytes.Equal(got, peer) {
		t.Fatalf("10.99.0.101 without ignore: %v %v, want the peer %v", got, err, peer)
	}
}

func TestMacvlan(t *testing.T) {
	s := linuxtest.NewSegment(t, "a")
	h := openHost(t, s, "a")
	mac := net.HardwareAddr{0x02, 0xba, 0x70, 0, 0, 1}
	name := linux.MacvlanName("eth0")
	for range 2 {
		if err := h.EnsureMacvlan("eth0", name, mac); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.MAC("a", name); !bytes.Equal(got, mac) {
		t.Fatalf("macvlan MAC %v, want %v", got, mac)
	}
	out := s.IP(s.NS("a"), "-d", "link", "show", name)
	if !strings.Contains(out, "macvlan mode bridge") || !strings.Contains(out, "UP") {
		t.Errorf("link is not an up bridge-mode macvlan:\n%s", out)
	}
	if out := s.IP(s.NS("a"), "-6", "addr", "show", "dev", name); strings.Contains(out, "fe80") {
		t.Errorf("macvlan has a link-local address:\n%s", out)
	}
	if out, _ := s.Exec("a", "cat", "/proc/sys/net/ipv4/conf/eth0/arp_ignore"); strings.TrimSpace(out) != "1" {
		t.Errorf("arp_ignore on parent = %q, want 1", out)
	}
	// A wrong MAC is corrected.
	s.IP(s.NS("a"), "link", "set", name, "address", "02:ba:70:00:00:09")
	if err := h.EnsureMacvlan("eth0", name, mac); err != nil {
		t.Fatal(err)
	}
	if got := s.MAC("a", name); !bytes.Equal(got, mac) {
		t.Fatalf("macvlan MAC %v after repair, want %v", got, mac)
	}
	// A non-macvlan of that name is refused.
	if err := h.EnsureMacvlan("eth0", "lo", mac); err == nil {
		t.Error("EnsureMacvlan accepted the loopback device")
	}
	for range 2 {
		if err := h.DeleteLink(name); err != nil {
			t.Fatal(err)
		}
	}
	if out, _ := s.Exec("a", "ip", "link", "show", name); !strings.Contains(out, "does not exist") {
		t.Errorf("macvlan still there: %s", out)
	}
}

func TestMacvlanName(t *testing.T) {
	if got := linux.MacvlanName("eth0"); got != "vip-eth0" {
		t.Errorf("got %q", got)
	}
	long := linux.MacvlanName("enp0s31f6.1234")
	if len(long) > 15 || long != linux.MacvlanName("enp0s31f6.1234") || long == linux.MacvlanName("enp0s31f6.1235") {
		t.Errorf("long name %q", long)
	}
}
