package linux

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/batonha/baton/internal/clock"
)

// packetConn is an AF_PACKET socket bound to one interface and one
// Ethernet protocol; frames include the Ethernet header.
type packetConn struct {
	fd      int
	ifindex int
	proto   uint16
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

func (h *Host) openPacket(iface string, proto uint16) (*packetConn, net.HardwareAddr, error) {
	l, err := h.link(iface)
	if err != nil {
		return nil, nil, err
	}
	mac := l.Attrs().HardwareAddr
	if len(mac) != 6 {
		return nil, nil, fmt.Errorf("interface %s has no Ethernet address", iface)
	}
	c := &packetConn{fd: -1, ifindex: l.Attrs().Index, proto: proto}
	err = h.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto)))
		if err != nil {
			return fmt.Errorf("opening packet socket on %s: %w", iface, err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: c.ifindex}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("binding packet socket to %s: %w", iface, err)
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return c, mac, nil
}

func (c *packetConn) Close() error { return unix.Close(c.fd) }

func (c *packetConn) send(dst net.HardwareAddr, frame []byte) error {
	sa := &unix.SockaddrLinklayer{Protocol: htons(c.proto), Ifindex: c.ifindex, Halen: 6}
	copy(sa.Addr[:], dst)
	return unix.Sendto(c.fd, frame, 0, sa)
}

// recv waits up to wait for one frame that arrived from the wire (not one
// this host sent). It returns n == 0 when the wait ended without one.
func (c *packetConn) recv(buf []byte, wait time.Duration) (int, error) {
	ms := int(wait / time.Millisecond)
	if ms < 1 {
		ms = 1
	}
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, ms)
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return 0, nil
		}
		return 0, fmt.Errorf("polling packet socket: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	m, from, err := unix.Recvfrom(c.fd, buf, unix.MSG_DONTWAIT)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return 0, nil
		}
		return 0, fmt.Errorf("reading packet socket: %w", err)
	}
	if ll, ok := from.(*unix.SockaddrLinklayer); ok && (ll.Pkttype == unix.PACKET_OUTGOING || ll.Ifindex != c.ifindex) {
		return 0, nil
	}
	return m, nil
}

func checkIP(ip netip.Addr, want4 bool) (netip.Addr, error) {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip.Is4() != want4 {
		return ip, fmt.Errorf("address %v is not a usable unicast IPv%s address", ip, map[bool]string{true: "4", false: "6"}[want4])
	}
	return ip, nil
}

// SendGratuitousARP broadcasts count rounds of gratuitous ARP for ip from
// iface's MAC, gap apart; each round is a request and a reply with sender
// and target IP set to ip.
func (h *Host) SendGratuitousARP(ctx context.Context, iface string, ip netip.Addr, count int, gap time.Duration) error {
	ip, err := checkIP(ip, true)
	if err != nil {
		return fmt.Errorf("sending gratuitous ARP on %s: %w", iface, err)
	}
	c, mac, err := h.openPacket(iface, etherTypeARP)
	if err != nil {
		return fmt.Errorf("sending gratuitous ARP for %s: %w", ip, err)
	}
	defer c.Close()
	frames, err := gratuitousARPFrames(mac, ip)
	if err != nil {
		return err
	}
	for i := 0; i < count; i++ {
		if i > 0 {
			if err := clock.Sleep(ctx, clock.Real{}, gap); err != nil {
				return fmt.Errorf("sending gratuitous ARP for %s on %s: %w", ip, iface, err)
			}
		}
		for _, f := range frames {
			if err := c.send(broadcastMAC(), f); err != nil {
				return fmt.Errorf("sending gratuitous ARP for %s on %s: %w", ip, iface, err)
			}
		}
	}
	return nil
}

// SendUnsolicitedNA sends count unsolicited neighbour advertisements for ip
// (override flag, target link-layer address = iface's MAC) to ff02::1,
// gap apart.
func (h *Host) SendUnsolicitedNA(ctx context.Context, iface string, ip netip.Addr, count int, gap time.Duration) error {
	ip, err := checkIP(ip, false)
	if err != nil {
		return fmt.Errorf("sending neighbour advertisement on %s: %w", iface, err)
	}
	c, mac, err := h.openPacket(iface, etherTypeIPv6)
	if err != nil {
		return fmt.Errorf("sending neighbour advertisement for %s: %w", ip, err)
	}
	defer c.Close()
	frame, err := unsolicitedNAFrame(mac, ip)
	if err != nil {
		return err
	}
	_, dst := allNodes()
	for i := 0; i < count; i++ {
		if i > 0 {
			if err := clock.Sleep(ctx, clock.Real{}, gap); err != nil {
				return fmt.Errorf("sending neighbour advertisement for %s on %s: %w", ip, iface, err)
			}
		}
		if err := c.send(dst, frame); err != nil {
			return fmt.Errorf("sending neighbour advertisement for %s on %s: %w", ip, iface, err)
		}
	}
	return nil
}

// Announce sends one round of announcements for ip on iface: a gratuitous
// ARP request and reply for IPv4, an unsolicited neighbour advertisement
// for IPv6.
func (h *Host) Announce(ctx context.Context, iface string, ip netip.Addr) error {
	if ip.Unmap().Is4() {
		return h.SendGratuitousARP(ctx, iface, ip, 1, 0)
	}
	return h.SendUnsolicitedNA(ctx, iface, ip, 1, 0)
}

// ProbeConflict asks the segment on iface whether another host already
// uses ip and waits up to timeout for an answer. IPv4 sends RFC 5227 ARP
// probes (sender IP 0.0.0.0); IPv6 performs duplicate address detection
// (a neighbour solicitation from ::). It returns the MAC of the first other
// host that claims ip, or nil when none answered in time. Claims from a MAC
// in ignore (the peer, which may still hold the address after a crash) do
// not count: the probe goes on listening for anyone else.
func (h *Host) ProbeConflict(ctx context.Context, iface string, ip netip.Addr, timeout time.Duration, ignore ...net.HardwareAddr) (net.HardwareAddr, error) {
	ip = ip.Unmap().WithZone("")
	v4 := ip.Is4()
	ip, err := checkIP(ip, v4)
	if err != nil {
		return nil, fmt.Errorf("probing for a conflict on %s: %w", iface, err)
	}
	proto := uint16(etherTypeIPv6)
	if v4 {
		proto = etherTypeARP
	}
	c, mac, err := h.openPacket(iface, proto)
	if err != nil {
		return nil, fmt.Errorf("probing for a conflict on %s: %w", ip, err)
	}
	defer c.Close()
	var probe []byte
	var dst net.HardwareAddr
	if v4 {
		probe, err = probeARPFrame(mac, ip)
		dst = broadcastMAC()
	} else {
		probe, err = dadProbeFrame(mac, ip)
		_, dst = solicitedNodeMulticast(ip)
	}
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	// Three probes spread over the timeout, as RFC 5227 spreads its own.
	nextProbe, probes := time.Now(), 0
	buf := make([]byte, 1600)
	for {
		now := time.Now()
		if probes < 3 && !now.Before(nextProbe) {
			if err := c.send(dst, probe); err != nil {
				return nil, fmt.Errorf("sending conflict probe for %s on %s: %w", ip, iface, err)
			}
			probes++
			nextProbe = now.Add(timeout / 3)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("probing for a conflict on %s for %s: %w", iface, ip, err)
		}
		left := deadline.Sub(now)
		if left <= 0 {
			return nil, nil
		}
		step := min(left, 50*time.Millisecond)
		if probes < 3 {
			step = min(step, max(nextProbe.Sub(now), time.Millisecond))
		}
		n, err := c.recv(buf, step)
		if err != nil {
			return nil, fmt.Errorf("probing for a conflict on %s for %s: %w", iface, ip, err)
		}
		if n == 0 {
			continue
		}
		var other net.HardwareAddr
		if v4 {
			other = arpConflict(buf[:n], ip, mac)
		} else {
			other = ndConflict(buf[:n], ip, mac)
		}
		if other != nil && !slices.ContainsFunc(ignore, func(m net.HardwareAddr) bool { return bytes.Equal(m, other) }) {
			return other, nil
		}
	}
}
