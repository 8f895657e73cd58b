package localroutes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Netlink is the Kernel of one network namespace.
type Netlink struct {
	h  *netlink.Handle
	ns netns.NsHandle // for the subscription; -1: the current one
}

// NewNetlink returns the kernel of the namespace h works in (ns for the
// change subscription; netns.None() for the current namespace).
func NewNetlink(h *netlink.Handle, ns netns.NsHandle) *Netlink { return &Netlink{h: h, ns: ns} }

// List returns the routes of table.
func (k *Netlink) List(table int) ([]Route, error) {
	rs, err := k.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("listing the routes of table %d: %w", table, err)
	}
	out := make([]Route, 0, len(rs))
	for _, r := range rs {
		if r.Type != unix.RTN_UNICAST || len(r.MultiPath) > 0 {
			continue
		}
		rt := Route{Metric: r.Priority, Protocol: int(r.Protocol), Scope: int(r.Scope), Table: r.Table}
		if r.Dst != nil {
			p, ok := netip.AddrFromSlice(r.Dst.IP)
			if !ok {
				continue
			}
			ones, _ := r.Dst.Mask.Size()
			rt.Dst = netip.PrefixFrom(p.Unmap(), ones).String()
		} else if r.Family == unix.AF_INET6 {
			rt.Dst = "::/0"
		} else {
			rt.Dst = "0.0.0.0/0"
		}
		if r.Gw != nil {
			rt.Gw = r.Gw.String()
		}
		if r.LinkIndex > 0 {
			if l, err := k.h.LinkByIndex(r.LinkIndex); err == nil {
				rt.Dev = l.Attrs().Name
			}
		}
		out = append(out, rt)
	}
	return out, nil
}

func (k *Netlink) route(r Route) (*netlink.Route, error) {
	_, dst, err := net.ParseCIDR(r.Dst)
	if err != nil {
		return nil, err
	}
	nr := &netlink.Route{Dst: dst, Table: r.Table, Priority: r.Metric, Protocol: netlink.RouteProtocol(r.Protocol), Scope: netlink.Scope(r.Scope)}
	if r.Gw != "" {
		nr.Gw = net.ParseIP(r.Gw)
	}
	if r.Dev != "" {
		l, err := k.h.LinkByName(r.Dev)
		if err != nil {
			return nil, fmt.Errorf("route %s: interface %s: %w", r.Dst, r.Dev, err)
		}
		nr.LinkIndex = l.Attrs().Index
	}
	return nr, nil
}

// Replace installs r, replacing a route of the same destination.
func (k *Netlink) Replace(r Route) error {
	nr, err := k.route(r)
	if err == nil {
		err = k.h.RouteReplace(nr)
	}
	if err != nil {
		return fmt.Errorf("installing route %s via %s dev %s (table %d): %w", r.Dst, r.Gw, r.Dev, r.Table, err)
	}
	return nil
}

// Delete removes r; a route already gone is no error.
func (k *Netlink) Delete(r Route) error {
	nr, err := k.route(r)
	if err == nil {
		err = k.h.RouteDel(nr)
	}
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("removing route %s (table %d): %w", r.Dst, r.Table, err)
	}
	return nil
}

// Subscribe signals on changed for every route change until ctx ends.
func (k *Netlink) Subscribe(ctx context.Context, changed chan<- struct{}) error {
	updates := make(chan netlink.RouteUpdate, 64)
	done := make(chan struct{})
	opts := netlink.RouteSubscribeOptions{}
	if k.ns.IsOpen() {
		opts.Namespace = &k.ns
	}
	if err := netlink.RouteSubscribeWithOptions(updates, done, opts); err != nil {
		return fmt.Errorf("subscribing to route changes: %w", err)
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-updates:
				if !ok {
					return
				}
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}
	}()
	return nil
}
