package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Ethernet types and protocol numbers used on the wire.
const (
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd

	ethHeaderLen  = 14
	arpPayloadLen = 28
	minFrameLen   = 60 // shortest Ethernet frame without FCS

	arpOpRequest = 1
	arpOpReply   = 2

	ipv6HeaderLen      = 40
	protoICMPv6        = 58
	ndpHopLimit        = 255
	icmpNeighborSolic  = 135
	icmpNeighborAdvert = 136

	ndOptSourceLLA = 1
	ndOptTargetLLA = 2

	naFlagRouter    = 0x80000000
	naFlagSolicited = 0x40000000
	naFlagOverride  = 0x20000000
)

var errShort = errors.New("frame too short")

// broadcastMAC is the Ethernet broadcast address. It is a function, not a
// variable, so nobody can change it.
func broadcastMAC() net.HardwareAddr { return net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} }

// arpPacket is an Ethernet/IPv4 ARP packet.
type arpPacket struct {
	Op        uint16
	SenderMAC net.HardwareAddr
	SenderIP  netip.Addr
	TargetMAC net.HardwareAddr
	TargetIP  netip.Addr
}

// marshalARPFrame builds an Ethernet frame carrying p, padded to the minimum
// frame length.
func marshalARPFrame(dst, src net.HardwareAddr, p arpPacket) ([]byte, error) {
	if len(dst) != 6 || len(src) != 6 || len(p.SenderMAC) != 6 || len(p.TargetMAC) != 6 {
		return nil, fmt.Errorf("building ARP frame: hardware addresses must be 6 bytes")
	}
	if !p.SenderIP.Is4() || !p.TargetIP.Is4() {
		return nil, fmt.Errorf("building ARP frame: addresses must be IPv4 (%v, %v)", p.SenderIP, p.TargetIP)
	}
	b := make([]byte, minFrameLen)
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:14], etherTypeARP)
	a := b[ethHeaderLen:]
	binary.BigEndian.PutUint16(a[0:2], 1) // Ethernet
	binary.BigEndian.PutUint16(a[2:4], etherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], p.Op)
	copy(a[8:14], p.SenderMAC)
	sip, tip := p.SenderIP.As4(), p.TargetIP.As4()
	copy(a[14:18], sip[:])
	copy(a[18:24], p.TargetMAC)
	copy(a[24:28], tip[:])
	return b, nil
}

// parseARPFrame decodes an Ethernet frame holding an Ethernet/IPv4 ARP packet.
func parseARPFrame(b []byte) (arpPacket, error) {
	if len(b) < ethHeaderLen+arpPayloadLen {
		return arpPacket{}, fmt.Errorf("parsing ARP frame of %d bytes: %w", len(b), errShort)
	}
	if et := binary.BigEndian.Uint16(b[12:14]); et != etherTypeARP {
		return arpPacket{}, fmt.Errorf("parsing ARP frame: ethertype %#04x is not ARP", et)
	}
	a := b[ethHeaderLen:]
	if ht, pt := binary.BigEndian.Uint16(a[0:2]), binary.BigEndian.Uint16(a[2:4]); ht != 1 || pt != etherTypeIPv4 {
		return arpPacket{}, fmt.Errorf("parsing ARP frame: hardware type %d / protocol %#04x is not Ethernet/IPv4", ht, pt)
	}
	if a[4] != 6 || a[5] != 4 {
		return arpPacket{}, fmt.Errorf("parsing ARP frame: address lengths %d/%d are not 6/4", a[4], a[5])
	}
	p := arpPacket{
		Op:        binary.BigEndian.Uint16(a[6:8]),
		SenderMAC: net.HardwareAddr(append([]byte(nil), a[8:14]...)),
		SenderIP:  netip.AddrFrom4([4]byte(a[14:18])),
		TargetMAC: net.HardwareAddr(append([]byte(nil), a[18:24]...)),
		TargetIP:  netip.AddrFrom4([4]byte(a[24:28])),
	}
	return p, nil
}

// gratuitousARPFrames returns the two forms of a gratuitous ARP for ip owned
// by mac: a broadcast request and a broadcast reply, both with sender and
// target IP set to ip.
func gratuitousARPFrames(mac net.HardwareAddr, ip netip.Addr) ([][]byte, error) {
	req, err := marshalARPFrame(broadcastMAC(), mac, arpPacket{
		Op: arpOpRequest, SenderMAC: mac, SenderIP: ip,
		TargetMAC: make(net.HardwareAddr, 6), TargetIP: ip,
	})
	if err != nil {
		return nil, err
	}
	rep, err := marshalARPFrame(broadcastMAC(), mac, arpPacket{
		Op: arpOpReply, SenderMAC: mac, SenderIP: ip,
		TargetMAC: mac, TargetIP: ip,
	})
	if err != nil {
		return nil, err
	}
	return [][]byte{req, rep}, nil
}

// probeARPFrame is an RFC 5227 ARP probe for ip: sender IP 0.0.0.0.
func probeARPFrame(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	return marshalARPFrame(broadcastMAC(), mac, arpPacket{
		Op: arpOpRequest, SenderMAC: mac, SenderIP: netip.IPv4Unspecified(),
		TargetMAC: make(net.HardwareAddr, 6), TargetIP: ip,
	})
}

// arpConflict reports the MAC of a host other than self that claims ip in
// the ARP frame b (as sender of a reply or a request), or nil.
func arpConflict(b []byte, ip netip.Addr, self net.HardwareAddr) net.HardwareAddr {
	p, err := parseARPFrame(b)
	if err != nil {
		return nil
	}
	if p.SenderIP != ip || (p.Op != arpOpReply && p.Op != arpOpRequest) {
		return nil
	}
	if string(p.SenderMAC) == string(self) {
		return nil
	}
	return p.SenderMAC
}

// ndMessage is the part of an IPv6 neighbour discovery frame baton reads.
type ndMessage struct {
	SrcMAC    net.HardwareAddr // Ethernet source
	Src, Dst  netip.Addr       // IPv6 header
	Type      uint8            // 135 solicitation, 136 advertisement
	Flags     uint32           // advertisement flags (R, S, O)
	Target    netip.Addr
	LinkLayer net.HardwareAddr // source or target link-layer address option, if any
}

// solicitedNodeMulticast returns ff02::1:ffXX:XXXX for ip and its MAC.
func solicitedNodeMulticast(ip netip.Addr) (netip.Addr, net.HardwareAddr) {
	a := ip.As16()
	m := [16]byte{0xff, 0x02, 10: 0, 11: 0x01, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]}
	return netip.AddrFrom16(m), net.HardwareAddr{0x33, 0x33, 0xff, a[13], a[14], a[15]}
}

// allNodes returns ff02::1 and its multicast MAC.
func allNodes() (netip.Addr, net.HardwareAddr) {
	return netip.MustParseAddr("ff02::1"), net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
}

// marshalNDFrame builds an Ethernet frame with an IPv6 header (hop limit 255)
// and the ICMPv6 message body (type, code 0, checksum computed here).
func marshalNDFrame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, icmpType uint8, body []byte) ([]byte, error) {
	if len(dstMAC) != 6 || len(srcMAC) != 6 {
		return nil, fmt.Errorf("building ND frame: hardware addresses must be 6 bytes")
	}
	if !src.Is6() || !dst.Is6() {
		return nil, fmt.Errorf("building ND frame: addresses must be IPv6 (%v, %v)", src, dst)
	}
	icmpLen := 4 + len(body)
	b := make([]byte, ethHeaderLen+ipv6HeaderLen+icmpLen)
	copy(b[0:6], dstMAC)
	copy(b[6:12], srcMAC)
	binary.BigEndian.PutUint16(b[12:14], etherTypeIPv6)
	ip := b[ethHeaderLen:]
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:6], uint16(icmpLen))
	ip[6] = protoICMPv6
	ip[7] = ndpHopLimit
	s, d := src.As16(), dst.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	m := ip[ipv6HeaderLen:]
	m[0] = icmpType
	copy(m[4:], body)
	binary.BigEndian.PutUint16(m[2:4], icmpv6Checksum(s, d, m))
	return b, nil
}

// icmpv6Checksum computes the ICMPv6 checksum over the pseudo-header and msg
// (whose checksum field must be zero).
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[0:4], uint32(len(msg)))
	l[7] = protoICMPv6
	add(l[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// unsolicitedNAFrame is a neighbour advertisement for ip owned by mac, sent
// from ip to all nodes with the override flag and a target link-layer
// address option.
func unsolicitedNAFrame(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	body := make([]byte, 4+16+8)
	binary.BigEndian.PutUint32(body[0:4], naFlagOverride)
	t := ip.As16()
	copy(body[4:20], t[:])
	body[20], body[21] = ndOptTargetLLA, 1
	copy(body[22:28], mac)
	dst, dstMAC := allNodes()
	return marshalNDFrame(dstMAC, mac, ip, dst, icmpNeighborAdvert, body)
}

// dadProbeFrame is a duplicate address detection solicitation for ip: from
// the unspecified address to ip's solicited-node group, no link-layer option.
func dadProbeFrame(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	body := make([]byte, 4+16)
	t := ip.As16()
	copy(body[4:20], t[:])
	dst, dstMAC := solicitedNodeMulticast(ip)
	return marshalNDFrame(dstMAC, mac, netip.IPv6Unspecified(), dst, icmpNeighborSolic, body)
}

// parseNDFrame decodes an Ethernet frame holding an IPv6 neighbour
// solicitation or advertisement without extension headers. It checks the
// hop limit and the checksum as a receiving node must.
func parseNDFrame(b []byte) (ndMessage, error) {
	if len(b) < ethHeaderLen+ipv6HeaderLen+4 {
		return ndMessage{}, fmt.Errorf("parsing ND frame of %d bytes: %w", len(b), errShort)
	}
	if et := binary.BigEndian.Uint16(b[12:14]); et != etherTypeIPv6 {
		return ndMessage{}, fmt.Errorf("parsing ND frame: ethertype %#04x is not IPv6", et)
	}
	ip := b[ethHeaderLen:]
	if ip[0]>>4 != 6 {
		return ndMessage{}, fmt.Errorf("parsing ND frame: IP version %d", ip[0]>>4)
	}
	if ip[6] != protoICMPv6 {
		return ndMessage{}, fmt.Errorf("parsing ND frame: next header %d is not ICMPv6", ip[6])
	}
	if ip[7] != ndpHopLimit {
		return ndMessage{}, fmt.Errorf("parsing ND frame: hop limit %d, want 255", ip[7])
	}
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if plen > len(ip)-ipv6HeaderLen {
		return ndMessage{}, fmt.Errorf("parsing ND frame: payload length %d exceeds frame: %w", plen, errShort)
	}
	m := ip[ipv6HeaderLen : ipv6HeaderLen+plen]
	if len(m) < 24 {
		return ndMessage{}, fmt.Errorf("parsing ND frame: ICMPv6 message of %d bytes: %w", len(m), errShort)
	}
	msg := ndMessage{
		SrcMAC: net.HardwareAddr(append([]byte(nil), b[6:12]...)),
		Src:    netip.AddrFrom16([16]byte(ip[8:24])),
		Dst:    netip.AddrFrom16([16]byte(ip[24:40])),
		Type:   m[0],
	}
	if msg.Type != icmpNeighborSolic && msg.Type != icmpNeighborAdvert {
		return ndMessage{}, fmt.Errorf("parsing ND frame: ICMPv6 type %d is not neighbour discovery", msg.Type)
	}
	if m[1] != 0 {
		return ndMessage{}, fmt.Errorf("parsing ND frame: ICMPv6 code %d", m[1])
	}
	c := make([]byte, len(m))
	copy(c, m)
	c[2], c[3] = 0, 0
	if want := icmpv6Checksum([16]byte(ip[8:24]), [16]byte(ip[24:40]), c); want != binary.BigEndian.Uint16(m[2:4]) {
		return ndMessage{}, fmt.Errorf("parsing ND frame: bad ICMPv6 checksum")
	}
	if msg.Type == icmpNeighborAdvert {
		msg.Flags = binary.BigEndian.Uint32(m[4:8])
	}
	msg.Target = netip.AddrFrom16([16]byte(m[8:24]))
	for opts := m[24:]; len(opts) > 0; {
		if len(opts) < 8 {
			return ndMessage{}, fmt.Errorf("parsing ND frame: truncated option: %w", errShort)
		}
		n := int(opts[1]) * 8
		if n == 0 || n > len(opts) {
			return ndMessage{}, fmt.Errorf("parsing ND frame: option type %d has bad length %d", opts[0], opts[1])
		}
		if (opts[0] == ndOptSourceLLA || opts[0] == ndOptTargetLLA) && n == 8 {
			msg.LinkLayer = net.HardwareAddr(append([]byte(nil), opts[2:8]...))
		}
		opts = opts[n:]
	}
	return msg, nil
}

// ndConflict reports the MAC of a host other than self that advertises ip
// in the frame b, or nil.
func ndConflict(b []byte, ip netip.Addr, self net.HardwareAddr) net.HardwareAddr {
	m, err := parseNDFrame(b)
	if err != nil || m.Type != icmpNeighborAdvert || m.Target != ip {
		return nil
	}
	mac := m.LinkLayer
	if mac == nil {
		mac = m.SrcMAC
	}
	if string(mac) == string(self) {
		return nil
	}
	return mac
}
