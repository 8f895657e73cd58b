package lab

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named network namespaces are bind-mounted, as iproute2
// expects them.
const netnsDir = "/var/run/netns"

// switchHost is the name of the namespace holding every segment's bridge.
const switchHost = "sw"

// Lab is a set of hosts (network namespaces) and the segments and links
// between them. Create it with New and always Close it, even when building
// the topology failed half way.
type Lab struct {
	// Prefix names every namespace of the lab: "<Prefix>-<host>".
	Prefix string

	log *slog.Logger

	mu       sync.Mutex
	hosts    map[string]*Host
	order    []*Host // creation order, for deterministic teardown
	sw       *Host
	segments map[string]bool
	procs    []*Proc
	swPorts  int
	closed   bool
}

// Host is one network namespace of a lab.
type Host struct {
	lab  *Lab
	name string
	ns   string
	nl   *netlink.Handle

	// mu guards handle: Close may run while a goroutine (a prober, say)
	// still enters the namespace, and a closed descriptor's number can be
	// reused for another file.
	mu     sync.RWMutex
	handle netns.NsHandle
}

// New returns an empty lab whose namespaces are named "<prefix>-<host>".
// It fails when namespaces with that prefix already exist.
func New(prefix string, log *slog.Logger) (*Lab, error) {
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	left, err := leftovers(prefix + "-")
	if err != nil {
		return nil, fmt.Errorf("creating lab %s: %w", prefix, err)
	}
	if len(left) > 0 {
		return nil, fmt.Errorf("creating lab %s: namespaces %s already exist (run Cleanup)", prefix, strings.Join(left, ", "))
	}
	return &Lab{
		Prefix:   prefix,
		log:      log.With("component", "lab", "lab", prefix),
		hosts:    map[string]*Host{},
		segments: map[string]bool{},
	}, nil
}

// Host returns the host called name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[name]
}

// AddHost creates the namespace "<prefix>-<name>" with its loopback up.
func (l *Lab) AddHost(name string) (*Host, error) {
	if name == switchHost {
		return nil, fmt.Errorf("adding host %q: the name is reserved for the switch namespace", name)
	}
	return l.addHost(name)
}

func (l *Lab) addHost(name string) (*Host, error) {
	if name == "" || strings.ContainsAny(name, "/ \t\n") {
		return nil, fmt.Errorf("adding host %q: invalid name", name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("adding host %s: lab %s is closed", name, l.Prefix)
	}
	if _, ok := l.hosts[name]; ok {
		return nil, fmt.Errorf("adding host %s: already exists", name)
	}
	nsName := l.Prefix + "-" + name
	var h netns.NsHandle
	err := onFreshThread(func() error {
		var err error
		h, err = netns.NewNamed(nsName)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating netns %s: %w", nsName, err)
	}
	host := &Host{lab: l, name: name, ns: nsName, handle: h}
	// Registered before anything else can fail so that Close removes it.
	l.hosts[name] = host
	l.order = append(l.order, host)
	host.nl, err = netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("opening netlink in netns %s: %w", nsName, err)
	}
	if err := host.SetLink("lo", true); err != nil {
		return nil, err
	}
	l.log.Debug("host added", "host", name, "netns", nsName)
	return host, nil
}

// AddSegment creates a Linux bridge called name (STP off, forward delay 0)
// in the lab's switch namespace "<prefix>-sw", which is created on first use.
func (l *Lab) AddSegment(name string) error {
	if len(name) == 0 || len(name) > 15 {
		return fmt.Errorf("adding segment %q: want a name of 1-15 characters", name)
	}
	sw, err := l.switchNS()
	if err != nil {
		return err
	}
	l.mu.Lock()
	exists := l.segments[name]
	l.mu.Unlock()
	if exists {
		return fmt.Errorf("adding segment %s: already exists", name)
	}
	err = sw.Do(func() error { return addBridge(name) })
	if err != nil {
		return fmt.Errorf("adding bridge %s in netns %s: %w", name, sw.ns, err)
	}
	if err := sw.SetLink(name, true); err != nil {
		return err
	}
	l.mu.Lock()
	l.segments[name] = true
	l.mu.Unlock()
	return nil
}

// addBridge creates a bridge with STP off and forward delay 0 in the calling
// thread's namespace. netlink.Bridge cannot set the forward delay, so the
// request is built by hand.
func addBridge(name string) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(nl.IFLA_BR_FORWARD_DELAY, nl.Uint32Attr(0))
	data.AddRtAttr(nl.IFLA_BR_STP_STATE, nl.Uint32Attr(0))
	req.AddData(info)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

func (l *Lab) switchNS() (*Host, error) {
	l.mu.Lock()
	sw := l.sw
	l.mu.Unlock()
	if sw != nil {
		return sw, nil
	}
	sw, err := l.addHost(switchHost)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.sw = sw
	l.mu.Unlock()
	return sw, nil
}

// Attach connects host to segment with a veth pair: the host's end is
// called ifname and gets cidr (such as "10.100.1.10/24"; "" for none), the
// other end is enslaved to the segment's bridge.
func (l *Lab) Attach(host *Host, ifname, segment, cidr string) error {
	l.mu.Lock()
	ok := l.segments[segment]
	sw := l.sw
	l.swPorts++
	port := fmt.Sprintf("p%d-%s", l.swPorts, host.name)
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("attaching %s/%s: no segment %s", host.name, ifname, segment)
	}
	if len(port) > 15 {
		port = port[:15]
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ifname},
		PeerName:      port,
		PeerNamespace: netlink.NsFd(int(sw.handle)),
	}
	if err := host.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("adding veth %s (%s) - %s (%s): %w", ifname, host.ns, port, sw.ns, err)
	}
	br, err := sw.nl.LinkByName(segment)
	if err != nil {
		return fmt.Errorf("finding bridge %s in %s: %w", segment, sw.ns, err)
	}
	p, err := sw.nl.LinkByName(port)
	if err != nil {
		return fmt.Errorf("finding port %s in %s: %w", port, sw.ns, err)
	}
	if err := sw.nl.LinkSetMaster(p, br); err != nil {
		return fmt.Errorf("enslaving %s to bridge %s in %s: %w", port, segment, sw.ns, err)
	}
	if err := sw.nl.LinkSetUp(p); err != nil {
		return fmt.Errorf("setting %s up in %s: %w", port, sw.ns, err)
	}
	return host.configure(ifname, cidr)
}

// Wire connects two hosts directly with a veth pair: a's end is ifA with
// cidrA, b's end is ifB with cidrB.
func (l *Lab) Wire(a *Host, ifA, cidrA string, b *Host, ifB, cidrB string) error {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ifA},
		PeerName:      ifB,
		PeerNamespace: netlink.NsFd(int(b.handle)),
	}
	if err := a.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("adding veth %s (%s) - %s (%s): %w", ifA, a.ns, ifB, b.ns, err)
	}
	if err := a.configure(ifA, cidrA); err != nil {
		return err
	}
	return b.configure(ifB, cidrB)
}

// configure gives ifname its address (if any) and sets it up.
func (h *Host) configure(ifname, cidr string) error {
	link, err := h.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("finding %s in %s: %w", ifname, h.ns, err)
	}
	if cidr != "" {
		addr, err := netlink.ParseAddr(cidr)
		if err != nil {
			return fmt.Errorf("parsing address %q for %s/%s: %w", cidr, h.name, ifname, err)
		}
		if err := h.nl.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("adding %s to %s in %s: %w", cidr, ifname, h.ns, err)
		}
	}
	if err := h.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting %s up in %s: %w", ifname, h.ns, err)
	}
	return nil
}

// Close kills every process started through the lab (by PID, then any
// process still living in one of the lab's namespaces, such as a daemon's
// children) and deletes the lab's namespaces. It is safe to call more than
// once and on a lab whose construction failed half way.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := slices.Clone(l.procs)
	hosts := slices.Clone(l.order)
	l.mu.Unlock()

	var errs []error
	for _, p := range procs {
		if err := p.kill(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for _, h := range hosts {
		if err := killInNamespace(h.ns); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(hosts) - 1; i >= 0; i-- {
		h := hosts[i]
		if h.nl != nil {
			h.nl.Close()
		}
		h.mu.Lock()
		if h.handle.IsOpen() {
			_ = h.handle.Close()
		}
		h.mu.Unlock()
		if err := deleteNamed(h.ns); err != nil {
			errs = append(errs, err)
		}
	}
	l.log.Debug("lab closed", "hosts", len(hosts), "procs", len(procs))
	return errors.Join(errs...)
}

// Cleanup deletes every network namespace whose name starts with prefix+"-"
// after killing the processes inside it. An empty prefix means every lab of
// the default family: namespaces starting with DefaultPrefix. It is what
// `baton lab down` runs after a crashed demo or test.
func Cleanup(prefix string) error {
	match := prefix + "-"
	if prefix == "" {
		match = DefaultPrefix
	} else if err := ValidPrefix(prefix); err != nil {
		return err
	}
	names, err := leftovers(match)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if err := killInNamespace(n); err != nil {
			errs = append(errs, err)
		}
		if err := deleteNamed(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// leftovers lists the named namespaces whose names start with match.
func leftovers(match string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", netnsDir, err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), match) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func deleteNamed(name string) error {
	p := filepath.Join(netnsDir, name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting netns %s: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing netns %s: %w", name, err)
	}
	return nil
}

// killInNamespace SIGKILLs every process whose network namespace is the
// named one and waits briefly for them to go.
func killInNamespace(name string) error {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(netnsDir, name), &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("reading netns %s: %w", name, err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids := pidsInNetns(want)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v in netns %s survived SIGKILL", pids, name)
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pidsInNetns lists processes (not zombies' parents' business: a zombie has
// no namespace link and is skipped) whose /proc/PID/ns/net reads want.
func pidsInNetns(want string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == self {
			continue
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err == nil && link == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// onFreshThread runs fn on a goroutine locked to its OS thread and restores
// the thread's network namespace afterwards. If the restore fails the thread
// stays locked, so the runtime discards it when the goroutine ends.
func onFreshThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("reading the thread's netns: %w", err)
			return // thread stays locked and dies: we don't know its state
		}
		defer orig.Close()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("restoring the thread's netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Name is the host's name within the lab, such as "nva-a".
func (h *Host) Name() string { return h.name }

// NS is the host's namespace name, such as "bt1234x-nva-a".
func (h *Host) NS() string { return h.ns }

// Handle is the netlink handle operating inside the host's namespace.
func (h *Host) Handle() *netlink.Handle { return h.nl }

// NsHandle is an open handle on the host's namespace.
func (h *Host) NsHandle() netns.NsHandle {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.handle
}

// Do runs fn on an OS thread switched into the host's namespace, so that
// sockets and netlink sockets fn creates live there, and switches the thread
// back afterwards.
func (h *Host) Do(fn func() error) error {
	var ferr error
	err := onFreshThread(func() error {
		h.mu.RLock()
		open := h.handle.IsOpen()
		var err error
		if open {
			err = netns.Set(h.handle)
		}
		h.mu.RUnlock()
		if !open {
			return fmt.Errorf("entering netns %s: the lab is closed", h.ns)
		}
		if err != nil {
			return fmt.Errorf("entering netns %s: %w", h.ns, err)
		}
		ferr = fn()
		return nil
	})
	if err != nil {
		return err
	}
	return ferr
}

// SetLink sets ifname up or down.
func (h *Host) SetLink(ifname string, up bool) error {
	link, err := h.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("finding %s in %s: %w", ifname, h.ns, err)
	}
	if up {
		err = h.nl.LinkSetUp(link)
	} else {
		err = h.nl.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("setting %s up=%t in %s: %w", ifname, up, h.ns, err)
	}
	return nil
}

// Links lists the names of the host's interfaces other than lo.
func (h *Host) Links() ([]string, error) {
	links, err := h.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing links in %s: %w", h.ns, err)
	}
	var out []string
	for _, l := range links {
		if n := l.Attrs().Name; n != "lo" {
			out = append(out, n)
		}
	}
	return out, nil
}

// AddRoute adds a route to dst (a CIDR or "default") via the gateway via.
func (h *Host) AddRoute(dst, via string) error {
	r, err := h.route(dst, via)
	if err != nil {
		return err
	}
	if err := h.nl.RouteAdd(r); err != nil {
		return fmt.Errorf("adding route %s via %s in %s: %w", dst, via, h.ns, err)
	}
	return nil
}

// ReplaceRoute adds or replaces the route to dst (a CIDR or "default") so
// that it goes via the gateway via.
func (h *Host) ReplaceRoute(dst, via string) error {
	r, err := h.route(dst, via)
	if err != nil {
		return err
	}
	if err := h.nl.RouteReplace(r); err != nil {
		return fmt.Errorf("replacing route %s via %s in %s: %w", dst, via, h.ns, err)
	}
	return nil
}

// DelRoute deletes the route to dst (a CIDR or "default"); a missing route
// is not an error.
func (h *Host) DelRoute(dst string) error {
	d, err := parseDst(dst)
	if err != nil {
		return err
	}
	err = h.nl.RouteDel(&netlink.Route{Dst: d})
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("deleting route %s in %s: %w", dst, h.ns, err)
	}
	return nil
}

func parseDst(dst string) (*net.IPNet, error) {
	if dst == "default" {
		return &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, nil
	}
	_, d, err := net.ParseCIDR(dst)
	if err != nil {
		return nil, fmt.Errorf("parsing route destination %q: %w", dst, err)
	}
	return d, nil
}

func (h *Host) route(dst, via string) (*netlink.Route, error) {
	d, err := parseDst(dst)
	if err != nil {
		return nil, err
	}
	gw := net.ParseIP(via)
	if gw == nil {
		return nil, fmt.Errorf("parsing gateway %q for route %s: not an IP address", via, dst)
	}
	return &netlink.Route{Dst: d, Gw: gw}, nil
}

// Sysctl writes value to the sysctl key (such as "net.ipv4.ip_forward")
// inside the host's namespace.
func (h *Host) Sysctl(key, value string) error {
	p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	err := h.Do(func() error { return os.WriteFile(p, []byte(value), 0o644) })
	if err != nil {
		return fmt.Errorf("setting sysctl %s=%s in %s: %w", key, value, h.ns, err)
	}
	return nil
}

// ReadSysctl reads the sysctl key inside the host's namespace.
func (h *Host) ReadSysctl(key string) (string, error) {
	p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	var b []byte
	err := h.Do(func() error {
		var err error
		b, err = os.ReadFile(p)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("reading sysctl %s in %s: %w", key, h.ns, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// HasAddr reports whether the IP address ip is on any interface of the host.
func (h *Host) HasAddr(ip string) (bool, error) {
	want := net.ParseIP(ip)
	if want == nil {
		return false, fmt.Errorf("parsing address %q: not an IP", ip)
	}
	addrs, err := h.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return false, fmt.Errorf("listing addresses in %s: %w", h.ns, err)
	}
	for _, a := range addrs {
		if a.IP.Equal(want) {
			return true, nil
		}
	}
	return false, nil
}
