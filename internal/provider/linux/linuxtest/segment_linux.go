// Package linuxtest builds small layer-2 topologies in network namespaces
// for tests of the linux provider and the actions built on it: a bridge in
// its own namespace and one namespace per node, each with an eth0 on the
// bridge.
package linuxtest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/batonha/baton/internal/lab/labtest"
)

// Segment is one Ethernet segment: a Linux bridge (STP off, no forwarding
// delay, no multicast snooping) in namespace PREFIX-br, and per node a
// namespace PREFIX-NODE whose eth0 is attached to the bridge. Every
// namespace has IPv6 duplicate address detection off.
type Segment struct {
	Prefix string
	t      testing.TB
	nodes  []string
}

// NewSegment creates the segment with the given nodes and removes it when
// the test ends.
func NewSegment(t testing.TB, nodes ...string) *Segment {
	t.Helper()
	labtest.RequireRoot(t)
	labtest.RequireTool(t, "ip")
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	s := &Segment{Prefix: "bt" + hex.EncodeToString(b[:]), t: t}
	br := s.NS("br")
	s.addNS(br)
	s.IP(br, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
	s.IP(br, "link", "set", "br0", "up")
	for i, n := range nodes {
		ns := s.NS(n)
		s.addNS(ns)
		s.nodes = append(s.nodes, n)
		port := "p" + string(rune('0'+i/10)) + string(rune('0'+i%10))
		s.IP(br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		s.IP(br, "link", "set", port, "master", "br0", "up")
		s.IP(ns, "link", "set", "eth0", "up")
	}
	return s
}

func (s *Segment) addNS(ns string) {
	s.t.Helper()
	s.IP("", "netns", "add", ns)
	s.t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			s.t.Logf("deleting namespace %s: %v: %s", ns, err, out)
		}
	})
	s.IP(ns, "link", "set", "lo", "up")
	for _, k := range []string{"all", "default"} {
		s.Sysctl(ns, "net.ipv6.conf."+k+".accept_dad", "0")
		s.Sysctl(ns, "net.ipv6.conf."+k+".disable_ipv6", "0")
	}
}

// NS is the namespace name of node ("br" for the bridge's).
func (s *Segment) NS(node string) string { return s.Prefix + "-" + node }

// Path is the bind-mount path of node's namespace, for OpenNamespace.
func (s *Segment) Path(node string) string { return "/run/netns/" + s.NS(node) }

// IP runs `ip -n ns ARGS...` (`ip ARGS...` when ns is empty) and fails the
// test on error. It returns the output.
func (s *Segment) IP(ns string, args ...string) string {
	s.t.Helper()
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Exec runs a command inside node's namespace and returns its combined
// output and error.
func (s *Segment) Exec(node string, argv ...string) (string, error) {
	args := append([]string{"netns", "exec", s.NS(node)}, argv...)
	out, err := exec.Command("ip", args...).CombinedOutput()
	return string(out), err
}

// Sysctl sets key=value inside namespace ns.
func (s *Segment) Sysctl(ns, key, value string) {
	s.t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-q", "-w", key+"="+value).CombinedOutput()
	if err != nil {
		s.t.Fatalf("sysctl %s=%s in %s: %v: %s", key, value, ns, err, out)
	}
}

// AddAddr adds an address (CIDR) to node's eth0.
func (s *Segment) AddAddr(node, cidr string) {
	s.t.Helper()
	s.IP(s.NS(node), "addr", "add", cidr, "dev", "eth0")
}

// MAC returns the hardware address of dev in node's namespace.
func (s *Segment) MAC(node, dev string) net.HardwareAddr {
	s.t.Helper()
	out := s.IP(s.NS(node), "-o", "link", "show", dev)
	f := strings.Fields(out)
	for i, w := range f {
		if w == "link/ether" && i+1 < len(f) {
			mac, err := net.ParseMAC(f[i+1])
			if err != nil {
				s.t.Fatalf("parsing MAC of %s in %s: %v", dev, node, err)
			}
			return mac
		}
	}
	s.t.Fatalf("no link/ether in %q", out)
	return nil
}
