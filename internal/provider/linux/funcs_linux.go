package linux

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// withHost runs fn with a Host for the calling process's namespace.
func withHost(fn func(h *Host) error) error {
	h, err := Open()
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h)
}

// AddAddress adds p to iface in the current namespace; see Host.AddAddress.
func AddAddress(ctx context.Context, iface string, p netip.Prefix) error {
	return withHost(func(h *Host) error { return h.AddAddress(ctx, iface, p) })
}

// RemoveAddress removes p from iface in the current namespace.
func RemoveAddress(ctx context.Context, iface string, p netip.Prefix) error {
	return withHost(func(h *Host) error { return h.RemoveAddress(ctx, iface, p) })
}

// HasAddress reports whether iface holds p in the current namespace.
func HasAddress(ctx context.Context, iface string, p netip.Prefix) (bool, error) {
	var ok bool
	err := withHost(func(h *Host) (err error) { ok, err = h.HasAddress(ctx, iface, p); return err })
	return ok, err
}

// SendGratuitousARP sends count rounds of gratuitous ARP for ip on iface.
func SendGratuitousARP(ctx context.Context, iface string, ip netip.Addr, count int, gap time.Duration) error {
	return withHost(func(h *Host) error { return h.SendGratuitousARP(ctx, iface, ip, count, gap) })
}

// SendUnsolicitedNA sends count unsolicited neighbour advertisements for ip.
func SendUnsolicitedNA(ctx context.Context, iface string, ip netip.Addr, count int, gap time.Duration) error {
	return withHost(func(h *Host) error { return h.SendUnsolicitedNA(ctx, iface, ip, count, gap) })
}

// ProbeConflict reports the MAC of another host (not in ignore) using ip on
// iface's segment.
func ProbeConflict(ctx context.Context, iface string, ip netip.Addr, timeout time.Duration, ignore ...net.HardwareAddr) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := withHost(func(h *Host) (err error) { mac, err = h.ProbeConflict(ctx, iface, ip, timeout, ignore...); return err })
	return mac, err
}

// EnsureMacvlan creates or fixes the macvlan name on parent with mac.
func EnsureMacvlan(parent, name string, mac net.HardwareAddr) error {
	return withHost(func(h *Host) error { return h.EnsureMacvlan(parent, name, mac) })
}

// DeleteLink deletes the link name if it exists.
func DeleteLink(name string) error {
	return withHost(func(h *Host) error { return h.DeleteLink(name) })
}
