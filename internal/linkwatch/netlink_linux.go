package linkwatch

import (
	"context"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Netlink is the kernel's view: RTM_NEWLINK messages of a network
// namespace.
type Netlink struct {
	NS *netns.NsHandle // nil: the process's own
}

// Watch implements Source.
func (n Netlink) Watch(ctx context.Context, out chan<- Update) error {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	errc := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		Namespace:    n.NS,
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("subscribing to link updates: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return fmt.Errorf("reading link updates: %w", err)
		case u, ok := <-ch:
			if !ok {
				return fmt.Errorf("reading link updates: the netlink socket closed")
			}
			if u.Header.Type == unix.RTM_DELLINK {
				continue // a deleted interface: its last state stands
			}
			a := u.Link.Attrs()
			select {
			case out <- Update{Name: a.Name, Up: operUp(u.IfInfomsg.Flags, a.OperState)}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// operUp: up, with carrier, and not reported down by the driver (an
// interface without operstate support, such as lo, reports "unknown").
func operUp(flags uint32, st netlink.LinkOperState) bool {
	if flags&unix.IFF_UP == 0 || flags&unix.IFF_LOWER_UP == 0 {
		return false
	}
	return st != netlink.OperDown && st != netlink.OperLowerLayerDown && st != netlink.OperNotPresent
}

// RouteInterface names the interface the kernel sends to dst by.
func RouteInterface(dst net.IP) (string, error) {
	routes, err := netlink.RouteGet(dst)
	if err != nil {
		return "", fmt.Errorf("looking up the route to %s: %w", dst, err)
	}
	if len(routes) == 0 || routes[0].LinkIndex == 0 {
		return "", fmt.Errorf("looking up the route to %s: no interface", dst)
	}
	l, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return "", fmt.Errorf("looking up interface %d: %w", routes[0].LinkIndex, err)
	}
	return l.Attrs().Name, nil
}

// AddressInterface names the interface that holds ip.
func AddressInterface(ip net.IP) (string, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		if a.IP.Equal(ip) {
			l, err := netlink.LinkByIndex(a.LinkIndex)
			if err != nil {
				return "", fmt.Errorf("looking up interface %d: %w", a.LinkIndex, err)
			}
			return l.Attrs().Name, nil
		}
	}
	return "", fmt.Errorf("no interface holds %s", ip)
}
