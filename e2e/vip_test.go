package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonha/baton/internal/lab"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addresses of the VIP scenario on the front segment. The lab gives the
// front segment IPv4 only; the tests add an IPv6 prefix.
const (
	vip4       = "10.100.1.100"
	vip6       = "fd00:100:1::100"
	front6     = "fd00:100:1::"
	vipEcho    = 7007
	virtualMAC = "02:00:5e:00:01:64"
)

// vipEnv is the pair with a UDP echo service on both appliances and IPv6
// on the front segment.
type vipEnv struct {
	*env
	mac [2]net.HardwareAddr // the appliances' eth0 MACs
}

func newVIPEnv(t *testing.T) *vipEnv {
	t.Helper()
	e := newEnv(t, [2]lab.NodeOptions{{}, {}}, [2]string{})
	v := &vipEnv{env: e}
	hosts := map[*lab.Host]string{e.pair.Client: "10", e.pair.A: "11", e.pair.B: "12"}
	for h, suffix := range hosts {
		vipEnableIPv6(t, h, front6+suffix+"/64")
	}
	for i, h := range e.pair.Appliances() {
		l, err := h.Handle().LinkByName(lab.IfFront)
		if err != nil {
			t.Fatal(err)
		}
		v.mac[i] = l.Attrs().HardwareAddr
		vipServeEcho(t, h)
	}
	return v
}

// vipEnableIPv6 turns IPv6 on for the host's front interface (without
// duplicate address detection, so the address is usable at once) and adds
// cidr to it.
func vipEnableIPv6(t *testing.T, h *lab.Host, cidr string) {
	t.Helper()
	for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.eth0.disable_ipv6", "net.ipv6.conf.eth0.accept_dad"} {
		if err := h.Sysctl(k, "0"); err != nil {
			t.Fatal(err)
		}
	}
	vipAddAddr(t, h, cidr)
}

// vipAddAddr adds cidr to the host's eth0 (IPv6 without DAD).
func vipAddAddr(t *testing.T, h *lab.Host, cidr string) {
	t.Helper()
	l, err := h.Handle().LinkByName(lab.IfFront)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if a.IP.To4() == nil {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.Handle().AddrAdd(l, a); err != nil {
		t.Fatalf("adding %s to %s: %v", cidr, h.Name(), err)
	}
}

// vipServeEcho answers every UDP datagram to port vipEcho (any address, both
// families) in h's namespace with the host's name, so the client can tell
// which appliance holds the VIP.
func vipServeEcho(t *testing.T, h *lab.Host) {
	t.Helper()
	name := []byte(h.Name())
	e, err := lab.StartUDPServer(h, "udp", fmt.Sprintf(":%d", vipEcho), func([]byte) []byte { return name })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
}

// vipYAML is the vip: section for both nodes; addrs are written in the
// order given.
func vipYAML(extra string, addrs ...string) string {
	var b strings.Builder
	b.WriteString("vip:\n  addresses:\n")
	for _, a := range addrs {
		fmt.Fprintf(&b, "    - address: %s\n      interface: eth0\n", a)
	}
	b.WriteString("  garp_count: 3\n  garp_interval: 100ms\n")
	b.WriteString(extra)
	return b.String()
}

// appendConfig appends YAML to node i's configuration before it starts.
func (v *vipEnv) appendConfig(i int, yaml string) {
	v.t.Helper()
	f, err := os.OpenFile(v.nodes[i].Config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		v.t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, yaml); err != nil {
		v.t.Fatal(err)
	}
}

// ask sends one request to ip's echo service from the client and returns
// the name of the appliance that answered ("" on a timeout).
func (v *vipEnv) ask(ip string) string {
	c, err := v.pair.Client.ListenPacket("udp", ":0")
	if err != nil {
		v.t.Fatal(err)
	}
	defer c.Close()
	dst := &net.UDPAddr{IP: net.ParseIP(ip), Port: vipEcho}
	if _, err := c.WriteTo([]byte("who"), dst); err != nil {
		return ""
	}
	_ = c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	buf := make([]byte, 64)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// answeredBy waits until the client's requests to ip are answered by the
// appliance named want.
func (v *vipEnv) answeredBy(ip, want string, limit time.Duration) {
	v.t.Helper()
	last := ""
	v.eventually(fmt.Sprintf("%s answered by %s", ip, want), limit, func() bool {
		last = v.ask(ip)
		return last == want
	})
}

// neighbor returns the MAC in the client's neighbour table for ip, or nil.
func (v *vipEnv) neighbor(ip string) net.HardwareAddr {
	v.t.Helper()
	h := v.pair.Client
	l, err := h.Handle().LinkByName(lab.IfFront)
	if err != nil {
		v.t.Fatal(err)
	}
	family := netlink.FAMILY_V4
	if strings.Contains(ip, ":") {
		family = netlink.FAMILY_V6
	}
	ns, err := h.Handle().NeighList(l.Attrs().Index, family)
	if err != nil {
		v.t.Fatal(err)
	}
	want := net.ParseIP(ip)
	for _, n := range ns {
		if n.IP.Equal(want) && len(n.HardwareAddr) > 0 {
			return n.HardwareAddr
		}
	}
	return nil
}

// neighborIs waits until the client's neighbour entry for ip is mac.
func (v *vipEnv) neighborIs(ip string, mac net.HardwareAddr, limit time.Duration) {
	v.t.Helper()
	v.eventually(fmt.Sprintf("client's neighbour entry for %s = %s", ip, mac), limit, func() bool {
		return v.neighbor(ip).String() == mac.String()
	})
}

// holds reports whether appliance i has ip on any interface.
func (v *vipEnv) holds(i int, ip string) bool {
	v.t.Helper()
	ok, err := v.pair.Appliances()[i].HasAddr(ip)
	if err != nil {
		v.t.Fatal(err)
	}
	return ok
}

func (v *vipEnv) logContains(i int, s string) bool {
	b, err := os.ReadFile(v.nodes[i].LogPath)
	return err == nil && strings.Contains(string(b), s)
}

// TestVIPFailoverMovesClient: the active holds both VIPs and the client
// reaches them; after SIGKILL of the active the standby takes them and
// announces them, the client's neighbour entries move to its MAC and the
// traffic resumes; the crashed node, restarted, removes the VIPs it left
// behind. Conflict checking is on, ignoring the peer's MAC (a crashed
// active still answers for the VIP).
func TestVIPFailoverMovesClient(t *testing.T) {
	v := newVIPEnv(t)
	for i := range 2 {
		ignore := fmt.Sprintf("  conflict_check: true\n  conflict_timeout: 150ms\n  conflict_ignore: [%q]\n", v.mac[1-i])
		v.appendConfig(i, vipYAML(ignore, vip4+"/24", vip6+"/64"))
	}
	v.start(0)
	v.start(1)
	v.roles("ACTIVE", "STANDBY", 10*time.Second)
	v.allPathsUp(5 * time.Second)
	for _, ip := range []string{vip4, vip6} {
		v.answeredBy(ip, "nva-a", 5*time.Second)
		if got := v.neighbor(ip); got.String() != v.mac[0].String() {
			t.Fatalf("client's entry for %s is %v, want nva-a's %v", ip, got, v.mac[0])
		}
		if v.holds(1, ip) {
			t.Fatalf("the standby holds %s", ip)
		}
	}

	killed := time.Now()
	v.kill(0, syscall.SIGKILL)
	for _, ip := range []string{vip4, vip6} {
		v.answeredBy(ip, "nva-b", 5*time.Second)
		v.neighborIs(ip, v.mac[1], 2*time.Second)
	}
	t.Logf("client served by nva-b on both VIPs %v after SIGKILL", time.Since(killed))
	// A killed daemon cannot clean up: the kernel keeps its addresses, so
	// nva-a answered nva-b's conflict probes throughout; with its MAC in
	// conflict_ignore that did not stop the takeover.
	if !v.holds(0, vip4) || !v.holds(0, vip6) {
		t.Fatal("the SIGKILLed nva-a should still hold the VIPs (nothing removed them)")
	}

	// Restarted after the crash, nva-a drops the VIPs it left behind and
	// stands by (no preempt).
	v.start(0)
	v.eventually("restarted nva-a removes its stale VIPs", 5*time.Second, func() bool {
		return !v.holds(0, vip4) && !v.holds(0, vip6)
	})
	if !v.logContains(0, "removed stale vip left by a previous run") {
		t.Error("nva-a's log does not record removing the stale VIPs")
	}
	v.roles("STANDBY", "ACTIVE", 10*time.Second)
	for _, ip := range []string{vip4, vip6} {
		v.answeredBy(ip, "nva-b", 2*time.Second)
		if !v.holds(1, ip) {
			t.Errorf("nva-b lost %s", ip)
		}
	}

	// Drift: someone removes the VIP from the active; the reconciler puts
	// it back and announces it.
	if _, err := v.pair.B.Run(context.Background(), "ip", "addr", "del", vip4+"/24", "dev", lab.IfFront); err != nil {
		t.Fatal(err)
	}
	v.eventually("nva-b re-adds the removed VIP", 5*time.Second, func() bool { return v.holds(1, vip4) })
	if !v.logContains(1, "vip missing while active; re-adding") {
		t.Error("nva-b's log does not record the drift repair")
	}
	v.answeredBy(vip4, "nva-b", 2*time.Second)
}

// TestVIPVirtualMAC: with a virtual MAC the client's neighbour entries
// hold the virtual MAC before and after the failover; only the switch
// relearns.
func TestVIPVirtualMAC(t *testing.T) {
	v := newVIPEnv(t)
	for i := range 2 {
		v.appendConfig(i, vipYAML(fmt.Sprintf("  virtual_mac: %q\n", virtualMAC), vip4+"/24", vip6+"/64"))
	}
	vmac, _ := net.ParseMAC(virtualMAC)
	v.start(0)
	v.start(1)
	v.roles("ACTIVE", "STANDBY", 10*time.Second)
	v.allPathsUp(5 * time.Second)
	for _, ip := range []string{vip4, vip6} {
		v.answeredBy(ip, "nva-a", 5*time.Second)
		v.neighborIs(ip, vmac, time.Second)
	}

	v.kill(0, syscall.SIGKILL)
	for _, ip := range []string{vip4, vip6} {
		v.answeredBy(ip, "nva-b", 5*time.Second)
		if got := v.neighbor(ip); got.String() != vmac.String() {
			t.Errorf("client's entry for %s is %v after the failover, want the virtual MAC %v", ip, got, vmac)
		}
	}
	// The restarted node removes its stale macvlan with the VIPs.
	v.start(0)
	v.eventually("restarted nva-a removes its stale macvlan", 5*time.Second, func() bool {
		_, err := v.pair.A.Handle().LinkByName("vip-eth0")
		var nf netlink.LinkNotFoundError
		return errors.As(err, &nf) && !v.holds(0, vip4) && !v.holds(0, vip6)
	})
	v.roles("STANDBY", "ACTIVE", 10*time.Second)
	v.answeredBy(vip4, "nva-b", 2*time.Second)
}

// TestVIPConflictFaults: a third host on the segment already holds both
// VIPs. Neither node takes them; each goes FAULT and `baton status --json`
// names the address and the other host's MAC. nva-a lists the IPv4 VIP
// first (ARP probe), nva-b the IPv6 one (duplicate address detection).
func TestVIPConflictFaults(t *testing.T) {
	v := newVIPEnv(t)
	rogue, err := v.pair.AddHost("rogue")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.pair.Attach(rogue, lab.IfFront, "front", vip4+"/24"); err != nil {
		t.Fatal(err)
	}
	vipEnableIPv6(t, rogue, vip6+"/64")
	rl, err := rogue.Handle().LinkByName(lab.IfFront)
	if err != nil {
		t.Fatal(err)
	}
	rogueMAC := rl.Attrs().HardwareAddr.String()
	check := "  conflict_check: true\n"
	v.appendConfig(0, vipYAML(check, vip4+"/24", vip6+"/64"))
	v.appendConfig(1, vipYAML(check, vip6+"/64", vip4+"/24"))
	v.start(0)
	v.start(1)
	v.roles("FAULT", "FAULT", 10*time.Second)
	for i, want := range []string{vip4 + "/24", vip6 + "/64"} {
		out, err := exec.CommandContext(context.Background(), v.bin, "status", "--json", "--socket", filepath.Join(v.nodes[i].Dir, "baton.sock")).CombinedOutput()
		if err != nil {
			t.Fatalf("baton status --json: %v\n%s", err, out)
		}
		reason := fmt.Sprintf("vip %s on eth0 is already in use by the host with MAC %s", netip.MustParsePrefix(want), rogueMAC)
		if !strings.Contains(string(out), reason) {
			t.Errorf("%s: status does not give the reason %q:\n%s", lab.ApplianceName(i), reason, out)
		}
		for _, ip := range []string{vip4, vip6} {
			if v.holds(i, ip) {
				t.Errorf("%s took %s although another host uses it", lab.ApplianceName(i), ip)
			}
		}
	}
	// The rogue keeps its address: the client still reaches it, not an
	// appliance.
	if got := v.ask(vip4); got != "" {
		t.Errorf("an appliance answered on the VIP: %q", got)
	}
}
