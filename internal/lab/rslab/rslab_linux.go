// Package rslab builds a route-server lab in network namespaces for the
// BGP end-to-end tests and benchmark: one segment with a route-server
// stand-in (FRR bgpd+zebra with maximum-paths, or BIRD 2 with merge paths,
// AS 65515) and N appliance hosts, each running a baton daemon that
// announces a prefix. The route server installs the prefix in its kernel
// table with one next hop per announcing appliance (ECMP), which is what
// NextHops reads.
package rslab

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/batonha/baton/internal/lab"
)

// Kind selects the route-server implementation.
type Kind string

// Route-server stand-ins.
const (
	FRR  Kind = "frr"
	BIRD Kind = "bird"
)

// Addresses of the lab segment.
const (
	Subnet   = "10.77.0.0/24"
	RSAddr   = "10.77.0.2"
	RSASN    = 65515
	NodeASN  = 65001
	Announce = "192.0.2.0/24"
	// DummyPeer is the unused address every node's pair section points
	// at: the nodes run alone (active-active follows health, not the role).
	DummyPeer = "10.77.0.250"
)

// NodeAddr is appliance i's address (i from 0).
func NodeAddr(i int) string { return fmt.Sprintf("10.77.0.%d", 11+i) }

// Options shape the lab.
type Options struct {
	Kind  Kind
	Nodes int
	Dir   string // working directory (configs, logs)
	// Hold and Keepalive are the BGP timers on both sides; IdleHold is the
	// appliances' wait before reconnecting. Defaults 3s, 1s, 1s.
	Hold, Keepalive, IdleHold time.Duration
	// Neighbors lists the node indexes the route server is configured to
	// peer with at start; nil means every node. FRR only for changes later
	// (AddNeighbor, RemoveNeighbor).
	Neighbors []int
	// ExtraYAML is appended to every node's configuration.
	ExtraYAML string
	Logger    *slog.Logger
}

// Node is one appliance.
type Node struct {
	Index   int
	Name    string
	Addr    string
	Host    *lab.Host
	Dir     string
	Config  string
	LogPath string
	// Healthy is the file whose existence the node's exec check tests:
	// removing it fails the check.
	Healthy string
	Proc    *lab.Proc
}

// Lab is a running route-server lab.
type Lab struct {
	Lab   *lab.Lab
	RS    *lab.Host
	Nodes []*Node
	Kind  Kind
	// Bin is the baton binary, for the caller's convenience.
	Bin   string
	opt   Options
	rsDir string
}

// New builds the topology and starts the route server. Close it, even
// when New fails half way (it closes what it built then).
func New(prefix string, opt Options) (l *Lab, err error) {
	if opt.Hold == 0 {
		opt.Hold = 3 * time.Second
	}
	if opt.Keepalive == 0 {
		opt.Keepalive = time.Second
	}
	if opt.IdleHold == 0 {
		opt.IdleHold = time.Second
	}
	if opt.Neighbors == nil {
		for i := range opt.Nodes {
			opt.Neighbors = append(opt.Neighbors, i)
		}
	}
	ll, err := lab.New(prefix, opt.Logger)
	if err != nil {
		return nil, err
	}
	l = &Lab{Lab: ll, Kind: opt.Kind, opt: opt}
	defer func() {
		if err != nil {
			_ = l.Close()
			l = nil
		}
	}()
	// The route server's directory is outside Dir: zebra runs as the frr
	// user, which cannot enter a test's private temporary directory.
	if l.rsDir, err = os.MkdirTemp("", "rslab-"+prefix+"-"); err != nil {
		return l, fmt.Errorf("creating route-server directory: %w", err)
	}
	if err := ll.AddSegment("rsnet"); err != nil {
		return l, err
	}
	if l.RS, err = ll.AddHost("rs"); err != nil {
		return l, err
	}
	if err := ll.Attach(l.RS, "eth0", "rsnet", RSAddr+"/24"); err != nil {
		return l, err
	}
	key := filepath.Join(opt.Dir, "heartbeat.key")
	if err := lab.WriteKeyFile(key); err != nil {
		return l, err
	}
	for i := range opt.Nodes {
		n := &Node{Index: i, Name: fmt.Sprintf("nva-%d", i+1), Addr: NodeAddr(i)}
		if n.Host, err = ll.AddHost(n.Name); err != nil {
			return l, err
		}
		if err := ll.Attach(n.Host, "eth0", "rsnet", n.Addr+"/24"); err != nil {
			return l, err
		}
		n.Dir = filepath.Join(opt.Dir, n.Name)
		if err := os.MkdirAll(filepath.Join(n.Dir, "state"), 0o755); err != nil {
			return l, fmt.Errorf("creating node directory: %w", err)
		}
		n.Config, n.LogPath, n.Healthy = filepath.Join(n.Dir, "baton.yaml"), filepath.Join(n.Dir, "baton.log"), filepath.Join(n.Dir, "healthy")
		if err := os.WriteFile(n.Healthy, nil, 0o644); err != nil {
			return l, err
		}
		if err := os.WriteFile(n.Config, nodeConfig(n, key, opt), 0o644); err != nil {
			return l, fmt.Errorf("writing config for %s: %w", n.Name, err)
		}
		l.Nodes = append(l.Nodes, n)
	}
	switch opt.Kind {
	case FRR:
		err = l.startFRR()
	case BIRD:
		err = l.startBIRD()
	default:
		err = fmt.Errorf("unknown route server kind %q", opt.Kind)
	}
	return l, err
}

// nodeConfig is a baton configuration for one appliance: a dummy pair
// peer, an exec check on the Healthy file every 50ms, and the bgp section
// in active-active mode.
func nodeConfig(n *Node, key string, o Options) []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("node:\n  name: %s\n  state_dir: %q\n", n.Name, filepath.Join(n.Dir, "state"))
	w("log:\n  level: info\n  format: json\n")
	w("heartbeat:\n  interval: 100ms\n  misses: 3\n  listen: \"%s:5405\"\n  key_file: %q\n", n.Addr, key)
	w("peer:\n  name: nobody\n  paths:\n    - name: dummy\n      address: \"%s:5405\"\n", DummyPeer)
	w("probe:\n  mode: \"off\"\n")
	w("api:\n  socket: %q\n", filepath.Join(n.Dir, "baton.sock"))
	w("metrics:\n  listen: \"off\"\n")
	w("checks:\n  - name: firewall\n    type: exec\n    command: [test, -e, %q]\n    interval: 50ms\n    timeout: 50ms\n    rise: 1\n    fall: 1\n", n.Healthy)
	w("bgp:\n  mode: active-active\n  asn: %d\n  router_id: %s\n  prefixes: [%s]\n", NodeASN, n.Addr, Announce)
	w("  peers:\n    - address: %s\n      asn: %d\n", RSAddr, RSASN)
	w("  timers:\n    hold: %s\n    keepalive: %s\n    connect_retry: 1s\n    idle_hold: %s\n", o.Hold, o.Keepalive, o.IdleHold)
	if o.ExtraYAML != "" {
		w("%s\n", o.ExtraYAML)
	}
	return b.Bytes()
}

func secs(d time.Duration) int { return int(d / time.Second) }

func (l *Lab) startFRR() error {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("frr defaults traditional\nhostname rs\n!\nrouter bgp %d\n bgp router-id %s\n", RSASN, RSAddr)
	w(" no bgp ebgp-requires-policy\n no bgp network import-check\n")
	for _, i := range l.opt.Neighbors {
		w("%s", frrNeighbor(NodeAddr(i), l.opt))
	}
	w(" address-family ipv4 unicast\n  maximum-paths 16\n exit-address-family\n!\n")
	conf := filepath.Join(l.rsDir, "bgpd.conf")
	zconf := filepath.Join(l.rsDir, "zebra.conf")
	if err := os.WriteFile(conf, b.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(zconf, nil, 0o644); err != nil {
		return err
	}
	// zebra refuses to run as root outside the frrvty group: it runs as
	// frr; bgpd runs as root without changing user (-S).
	if err := os.Chmod(l.rsDir, 0o777); err != nil {
		return err
	}
	zsock := filepath.Join(l.rsDir, "zserv.api")
	ns := l.Lab.Prefix
	if _, err := l.RS.Start("zebra", []string{"/usr/lib/frr/zebra", "-N", ns, "-u", "frr", "-g", "frr", "-P", "0",
		"-f", zconf, "-i", filepath.Join(l.rsDir, "zebra.pid"), "--vty_socket", l.rsDir, "-z", zsock,
		"--log", "file:" + filepath.Join(l.rsDir, "zebra.log")}, nil, filepath.Join(l.rsDir, "zebra.out")); err != nil {
		return err
	}
	if err := waitFile(zsock, 10*time.Second); err != nil {
		return fmt.Errorf("waiting for zebra: %w", err)
	}
	if _, err := l.RS.Start("bgpd", []string{"/usr/lib/frr/bgpd", "-N", ns, "-S", "-P", "0",
		"-f", conf, "-i", filepath.Join(l.rsDir, "bgpd.pid"), "--vty_socket", l.rsDir, "-z", zsock,
		"--log", "file:" + filepath.Join(l.rsDir, "bgpd.log")}, nil, filepath.Join(l.rsDir, "bgpd.out")); err != nil {
		return err
	}
	return waitFile(filepath.Join(l.rsDir, "bgpd.vty"), 10*time.Second)
}

func frrNeighbor(ip string, o Options) string {
	return fmt.Sprintf(" neighbor %s remote-as %d\n neighbor %s timers %d %d\n neighbor %s timers connect 1\n",
		ip, NodeASN, ip, secs(o.Keepalive), secs(o.Hold), ip)
}

// Vtysh runs FRR commands on the route server.
func (l *Lab) Vtysh(ctx context.Context, cmds ...string) ([]byte, error) {
	if l.Kind != FRR {
		return nil, fmt.Errorf("vtysh: the route server is %s", l.Kind)
	}
	argv := []string{"vtysh", "--vty_socket", l.rsDir}
	for _, c := range cmds {
		argv = append(argv, "-c", c)
	}
	return l.RS.Run(ctx, argv...)
}

// AddNeighbor configures the FRR route server to peer with ip.
func (l *Lab) AddNeighbor(ctx context.Context, ip string) error {
	lines := strings.Split(strings.TrimSpace(frrNeighbor(ip, l.opt)), "\n")
	cmds := []string{"configure terminal", fmt.Sprintf("router bgp %d", RSASN)}
	for _, ln := range lines {
		cmds = append(cmds, strings.TrimSpace(ln))
	}
	_, err := l.Vtysh(ctx, cmds...)
	return err
}

// RemoveNeighbor removes the FRR route server's peering with ip.
func (l *Lab) RemoveNeighbor(ctx context.Context, ip string) error {
	_, err := l.Vtysh(ctx, "configure terminal", fmt.Sprintf("router bgp %d", RSASN), "no neighbor "+ip)
	return err
}

// Neighbors lists the FRR route server's configured neighbors and whether
// each session is established.
func (l *Lab) Neighbors(ctx context.Context) (map[string]bool, error) {
	out, err := l.Vtysh(ctx, "show bgp neighbors json")
	if err != nil {
		return nil, err
	}
	return parseFRRNeighbors(out)
}

func (l *Lab) startBIRD() error {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("router id %s;\nprotocol device { scan time 1; }\n", RSAddr)
	w("protocol kernel {\n\tmerge paths yes;\n\tipv4 { import none; export all; };\n}\n")
	for _, i := range l.opt.Neighbors {
		w("protocol bgp nva%d {\n\tlocal %s as %d;\n\tneighbor %s as %d;\n", i+1, RSAddr, RSASN, NodeAddr(i), NodeASN)
		w("\thold time %d;\n\tkeepalive time %d;\n\tconnect retry time 1;\n\terror wait time 1, 3;\n", secs(l.opt.Hold), secs(l.opt.Keepalive))
		w("\tipv4 { import all; export none; };\n}\n")
	}
	conf := filepath.Join(l.rsDir, "bird.conf")
	if err := os.WriteFile(conf, b.Bytes(), 0o644); err != nil {
		return err
	}
	sock := filepath.Join(l.rsDir, "bird.ctl")
	if _, err := l.RS.Start("bird", []string{"bird", "-f", "-c", conf, "-s", sock, "-P", filepath.Join(l.rsDir, "bird.pid")},
		nil, filepath.Join(l.rsDir, "bird.out")); err != nil {
		return err
	}
	return waitFile(sock, 10*time.Second)
}

func waitFile(path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %v", path, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartNode runs `bin run` on node i.
func (l *Lab) StartNode(i int, bin string) error {
	n := l.Nodes[i]
	p, err := n.Host.Start("baton-"+n.Name, []string{bin, "run", "--config", n.Config}, nil, n.LogPath)
	if err != nil {
		return err
	}
	n.Proc = p
	return nil
}

// NextHops returns the next hops of the announced prefix in the route
// server's kernel table, sorted (empty when there is no route).
func (l *Lab) NextHops() ([]string, error) {
	_, dst, _ := net.ParseCIDR(Announce)
	routes, err := l.RS.Handle().RouteListFiltered(unix.AF_INET, &netlink.Route{Dst: dst, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("listing routes to %s on the route server: %w", Announce, err)
	}
	var out []string
	for _, r := range routes {
		if r.Gw != nil {
			out = append(out, r.Gw.String())
		}
		for _, nh := range r.MultiPath {
			if nh.Gw != nil {
				out = append(out, nh.Gw.String())
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Has reports whether node i's address is among hops.
func Has(hops []string, i int) bool {
	for _, h := range hops {
		if h == NodeAddr(i) {
			return true
		}
	}
	return false
}

// WaitHops polls NextHops every poll until cond holds or limit passes,
// and returns when it held (zero time on timeout) and the last hops.
func (l *Lab) WaitHops(limit, poll time.Duration, cond func([]string) bool) (time.Time, []string, error) {
	deadline := time.Now().Add(limit)
	var last []string
	for {
		hops, err := l.NextHops()
		if err != nil {
			return time.Time{}, nil, err
		}
		last = hops
		if cond(hops) {
			return time.Now(), hops, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, last, nil
		}
		time.Sleep(poll)
	}
}

// Close stops everything and removes the namespaces and the route
// server's directory.
func (l *Lab) Close() error {
	err := l.Lab.Close()
	if l.rsDir != "" {
		_ = os.RemoveAll(l.rsDir)
	}
	return err
}

// Available reports why kind cannot run here ("" when it can).
func Available(kind Kind) string {
	switch kind {
	case FRR:
		for _, p := range []string{"/usr/lib/frr/zebra", "/usr/lib/frr/bgpd"} {
			if _, err := os.Stat(p); err != nil {
				return "FRR is not installed (apt-get install frr)"
			}
		}
		if _, err := exec.LookPath("vtysh"); err != nil {
			return "vtysh is not installed (apt-get install frr)"
		}
	case BIRD:
		if _, err := exec.LookPath("bird"); err != nil {
			return "BIRD is not installed (apt-get install bird2)"
		}
	}
	return ""
}
