package linux

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Host is the network stack of one network namespace.
type Host struct {
	ns netns.NsHandle // closed (-1) for the caller's own namespace
	nl *netlink.Handle
}

// Open returns a Host for the calling process's network namespace.
func Open() (*Host, error) {
	nl, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("opening netlink handle: %w", err)
	}
	return &Host{ns: netns.None(), nl: nl}, nil
}

// OpenNamespace returns a Host for the network namespace at path, for
// example /run/netns/NAME.
func OpenNamespace(path string) (*Host, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("opening netlink handle in %s: %w", path, err)
	}
	return &Host{ns: ns, nl: nl}, nil
}

// Close releases the namespace and netlink handles.
func (h *Host) Close() error {
	h.nl.Close()
	if h.ns.IsOpen() {
		return h.ns.Close()
	}
	return nil
}

// Do runs fn on an OS thread switched into the host's network namespace.
// Sockets fn creates belong to that namespace and may be used from any
// goroutine afterwards; goroutines fn starts do not run in the namespace.
func (h *Host) Do(fn func() error) error {
	if !h.ns.IsOpen() {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("reading current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(h.ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering network namespace: %w", err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime discards it when the
		// goroutine ends, so no other goroutine runs in the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("returning to the original network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

func (h *Host) link(name string) (netlink.Link, error) {
	l, err := h.nl.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("looking up interface %s: %w", name, err)
	}
	return l, nil
}

func hostIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// AddAddress adds p (the address with its prefix length) to iface. IPv6
// addresses are added without duplicate address detection so they are
// usable at once; use ProbeConflict first. Adding an address that is
// already there is not an error.
func (h *Host) AddAddress(ctx context.Context, iface string, p netip.Prefix) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("adding %s to %s: %w", p, iface, err)
	}
	l, err := h.link(iface)
	if err != nil {
		return fmt.Errorf("adding %s: %w", p, err)
	}
	a := &netlink.Addr{IPNet: hostIPNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.nl.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding %s to %s: %w", p, iface, err)
	}
	return nil
}

// RemoveAddress removes p from iface. Removing an absent address is not an
// error.
func (h *Host) RemoveAddress(ctx context.Context, iface string, p netip.Prefix) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("removing %s from %s: %w", p, iface, err)
	}
	l, err := h.nl.LinkByName(iface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil // the address went with its interface
		}
		return fmt.Errorf("removing %s: looking up interface %s: %w", p, iface, err)
	}
	err = h.nl.AddrDel(l, &netlink.Addr{IPNet: hostIPNet(p)})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing %s from %s: %w", p, iface, err)
	}
	return nil
}

// HasAddress reports whether iface holds p with the same prefix length. A
// missing interface holds no address.
func (h *Host) HasAddress(ctx context.Context, iface string, p netip.Prefix) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("listing addresses of %s: %w", iface, err)
	}
	l, err := h.nl.LinkByName(iface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return false, nil
		}
		return false, fmt.Errorf("listing addresses: looking up interface %s: %w", iface, err)
	}
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := h.nl.AddrList(l, family)
	if err != nil {
		return false, fmt.Errorf("listing addresses of %s: %w", iface, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if ok && ip.Unmap() == p.Addr() && ones == p.Bits() {
			return true, nil
		}
	}
	return false, nil
}

// Neighbor returns the link-layer address iface's neighbour table holds
// for ip, or nil when there is no entry with an address.
func (h *Host) Neighbor(ctx context.Context, iface string, ip netip.Addr) (net.HardwareAddr, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading neighbour %s on %s: %w", ip, iface, err)
	}
	l, err := h.link(iface)
	if err != nil {
		return nil, fmt.Errorf("reading neighbour %s: %w", ip, err)
	}
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	ns, err := h.nl.NeighList(l.Attrs().Index, family)
	if err != nil {
		return nil, fmt.Errorf("listing neighbours on %s: %w", iface, err)
	}
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip && len(n.HardwareAddr) > 0 {
			return n.HardwareAddr, nil
		}
	}
	return nil, nil
}

// MacvlanName is the name baton gives the macvlan that carries a virtual
// MAC on top of parent: "vip-" and the parent's name, or a hash of it when
// that would exceed the 15 characters Linux allows.
func MacvlanName(parent string) string {
	if n := "vip-" + parent; len(n) <= 15 {
		return n
	}
	f := fnv.New32a()
	f.Write([]byte(parent))
	return fmt.Sprintf("vip-%08x", f.Sum32())
}

// EnsureMacvlan makes a macvlan link name (bridge mode) on parent with the
// hardware address mac, up, without an IPv6 link-local address (the peer
// uses the same MAC, so the derived link-local address would collide). It
// also sets arp_ignore=1 on parent and on the macvlan so that only the
// macvlan answers ARP for the addresses it holds, with the virtual MAC.
func (h *Host) EnsureMacvlan(parent, name string, mac net.HardwareAddr) error {
	pl, err := h.link(parent)
	if err != nil {
		return fmt.Errorf("creating macvlan %s: %w", name, err)
	}
	l, err := h.nl.LinkByName(name)
	var nf netlink.LinkNotFoundError
	switch {
	case err == nil:
		mv, ok := l.(*netlink.Macvlan)
		if !ok {
			return fmt.Errorf("creating macvlan %s: a %s link of that name exists", name, l.Type())
		}
		if mv.ParentIndex != pl.Attrs().Index {
			return fmt.Errorf("creating macvlan %s: it exists on another parent (index %d, want %s)", name, mv.ParentIndex, parent)
		}
		if mv.HardwareAddr.String() != mac.String() {
			if err := h.nl.LinkSetHardwareAddr(l, mac); err != nil {
				return fmt.Errorf("setting MAC %s on macvlan %s: %w", mac, name, err)
			}
		}
	case errors.As(err, &nf):
		mv := &netlink.Macvlan{
			LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: pl.Attrs().Index, HardwareAddr: mac},
			Mode:      netlink.MACVLAN_MODE_BRIDGE,
		}
		if err := h.nl.LinkAdd(mv); err != nil {
			return fmt.Errorf("creating macvlan %s on %s with MAC %s: %w", name, parent, mac, err)
		}
		if l, err = h.nl.LinkByName(name); err != nil {
			return fmt.Errorf("looking up new macvlan %s: %w", name, err)
		}
		// IN6_ADDR_GEN_MODE_NONE: no automatic link-local address.
		if err := h.nl.LinkSetIP6AddrGenMode(l, 1); err != nil {
			return fmt.Errorf("disabling IPv6 link-local address on macvlan %s: %w", name, err)
		}
	default:
		return fmt.Errorf("creating macvlan %s: looking it up: %w", name, err)
	}
	for _, dev := range []string{parent, name} {
		if err := h.setSysctl("net/ipv4/conf/"+dev+"/arp_ignore", "1"); err != nil {
			return fmt.Errorf("creating macvlan %s: %w", name, err)
		}
	}
	if err := h.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("setting macvlan %s up: %w", name, err)
	}
	return nil
}

// DeleteLink deletes the link name; a missing link is not an error.
func (h *Host) DeleteLink(name string) error {
	l, err := h.nl.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("deleting link %s: looking it up: %w", name, err)
	}
	if err := h.nl.LinkDel(l); err != nil {
		return fmt.Errorf("deleting link %s: %w", name, err)
	}
	return nil
}

// setSysctl writes value to /proc/sys/key inside the host's namespace.
func (h *Host) setSysctl(key, value string) error {
	return h.Do(func() error {
		if err := os.WriteFile("/proc/sys/"+key, []byte(value), 0); err != nil {
			return fmt.Errorf("setting sysctl %s=%s: %w", key, value, err)
		}
		return nil
	})
}
