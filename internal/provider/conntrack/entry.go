// Package conntrack reads, follows and writes the Linux kernel's
// connection-tracking table over ctnetlink (NETLINK_NETFILTER). It speaks
// the protocol itself so that an entry can be created with everything a
// stateful firewall needs to carry a NATed connection on another host:
// both tuples, source and destination NAT, status, timeout, mark, zone,
// labels and the TCP state with liberal window tracking.
//
// The message codec (codec.go) is pure Go and fuzzed; the sockets live in
// conn_linux.go. Fake is an in-memory table for tests of callers.
package conntrack

import (
	"fmt"
	"net/netip"
)

// Protocol numbers this package knows how to carry.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoSCTP   = 132
	ProtoICMPv6 = 58
)

// Status bits (IPS_*).
const (
	StatusExpected  uint32 = 1 << 0
	StatusSeenReply uint32 = 1 << 1
	StatusAssured   uint32 = 1 << 2
	StatusConfirmed uint32 = 1 << 3
	StatusSrcNAT    uint32 = 1 << 4
	StatusDstNAT    uint32 = 1 << 5
	StatusDying     uint32 = 1 << 9
)

// TCP conntrack states (TCP_CONNTRACK_*).
const (
	TCPNone        uint8 = 0
	TCPSynSent     uint8 = 1
	TCPSynRecv     uint8 = 2
	TCPEstablished uint8 = 3
	TCPFinWait     uint8 = 4
	TCPCloseWait   uint8 = 5
	TCPLastAck     uint8 = 6
	TCPTimeWait    uint8 = 7
	TCPClose       uint8 = 8
	TCPSynSent2    uint8 = 9
)

// TCP conntrack flags (IP_CT_TCP_FLAG_*).
const (
	TCPFlagWindowScale uint8 = 0x01
	TCPFlagSACKPerm    uint8 = 0x02
	TCPFlagCloseInit   uint8 = 0x04
	TCPFlagBeLiberal   uint8 = 0x08
)

// Tuple is one direction of a connection. For ICMP, SrcPort holds the
// identifier and DstPort type<<8 | code.
type Tuple struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

// Inverse swaps source and destination.
func (t Tuple) Inverse() Tuple {
	return Tuple{Src: t.Dst, Dst: t.Src, SrcPort: t.DstPort, DstPort: t.SrcPort}
}

func (t Tuple) String() string {
	return fmt.Sprintf("%s:%d->%s:%d", t.Src, t.SrcPort, t.Dst, t.DstPort)
}

// Entry is one connection-tracking entry.
type Entry struct {
	Proto    uint8
	Zone     uint16
	Orig     Tuple // as the first packet saw it
	Reply    Tuple // as replies are expected, NAT applied
	Status   uint32
	Timeout  uint32 // seconds left
	Mark     uint32
	TCPState uint8
	Labels   [16]byte
	ID       uint32 // kernel's id, local only
}

// Key identifies an entry: protocol, zone and original tuple. It holds no
// pointers (addresses as 16 bytes), so maps of hundreds of thousands of
// keys hash plain memory and cost the garbage collector nothing to scan.
type Key struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	Zone             uint16
	Proto            uint8
	V6               bool
}

// Key returns the entry's key.
func (e Entry) Key() Key {
	return Key{Src: e.Orig.Src.As16(), Dst: e.Orig.Dst.As16(), SrcPort: e.Orig.SrcPort, DstPort: e.Orig.DstPort,
		Zone: e.Zone, Proto: e.Proto, V6: e.V6()}
}

// Orig returns the original tuple the key was made from.
func (k Key) Orig() Tuple {
	addr := func(b [16]byte) netip.Addr {
		a := netip.AddrFrom16(b)
		if !k.V6 {
			a = a.Unmap()
		}
		return a
	}
	return Tuple{Src: addr(k.Src), Dst: addr(k.Dst), SrcPort: k.SrcPort, DstPort: k.DstPort}
}

// V6 reports whether the entry is IPv6.
func (e *Entry) V6() bool { return e.Orig.Src.Is6() && !e.Orig.Src.Is4In6() }

// SNAT returns the source NAT of the entry: the address and port the
// original source is rewritten to, when it is.
func (e *Entry) SNAT() (netip.Addr, uint16, bool) {
	if e.Reply.Dst != e.Orig.Src || (e.portful() && e.Reply.DstPort != e.Orig.SrcPort) {
		return e.Reply.Dst, e.Reply.DstPort, true
	}
	return netip.Addr{}, 0, false
}

// DNAT returns the destination NAT of the entry.
func (e *Entry) DNAT() (netip.Addr, uint16, bool) {
	if e.Reply.Src != e.Orig.Dst || (e.portful() && e.Reply.SrcPort != e.Orig.DstPort) {
		return e.Reply.Src, e.Reply.SrcPort, true
	}
	return netip.Addr{}, 0, false
}

func (e *Entry) portful() bool {
	return e.Proto == ProtoTCP || e.Proto == ProtoUDP || e.Proto == ProtoSCTP
}

// HasLabels reports whether any label bit is set.
func (e *Entry) HasLabels() bool { return e.Labels != [16]byte{} }

// ProtoName is the usual name of a protocol number.
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "icmpv6"
	case ProtoSCTP:
		return "sctp"
	}
	return fmt.Sprint(p)
}

// ProtoNumber is the inverse of ProtoName; ok is false for unknown names.
func ProtoNumber(name string) (uint8, bool) {
	for _, p := range []uint8{ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6, ProtoSCTP} {
		if ProtoName(p) == name {
			return p, true
		}
	}
	return 0, false
}

// TCPStateName names a TCP conntrack state.
func TCPStateName(s uint8) string {
	names := [...]string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}
	if int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprint(s)
}

func (e Entry) String() string {
	s := fmt.Sprintf("%s %s reply %s timeout %d mark %d zone %d", ProtoName(e.Proto), e.Orig, e.Reply, e.Timeout, e.Mark, e.Zone)
	if e.Proto == ProtoTCP {
		s += " " + TCPStateName(e.TCPState)
	}
	return s
}

// EventType says what happened to an entry.
type EventType uint8

// Event types.
const (
	EventNew EventType = iota + 1
	EventUpdate
	EventDestroy
)

func (t EventType) String() string {
	switch t {
	case EventNew:
		return "new"
	case EventUpdate:
		return "update"
	case EventDestroy:
		return "destroy"
	}
	return "unknown"
}

// Event is one change of the kernel table.
type Event struct {
	Type  EventType
	Entry Entry
}

// OpKind says what Apply does with an entry.
type OpKind uint8

// Operation kinds. Each converges: Create replaces an existing entry,
// Update creates a missing one, Delete ignores a missing one.
const (
	OpCreate OpKind = iota + 1
	OpUpdate
	OpDelete
)

// Op is one write to the table.
type Op struct {
	Kind  OpKind
	Entry Entry
}

// ApplyStats counts what Apply did.
type ApplyStats struct {
	Created, Updated, Replaced, Deleted, Missing, Failed int
	// FirstErr is the first error the kernel answered that Apply could
	// not resolve (nil when Failed is 0).
	FirstErr error
}

// Add adds o to s.
func (s *ApplyStats) Add(o ApplyStats) {
	s.Created += o.Created
	s.Updated += o.Updated
	s.Replaced += o.Replaced
	s.Deleted += o.Deleted
	s.Missing += o.Missing
	s.Failed += o.Failed
	if s.FirstErr == nil {
		s.FirstErr = o.FirstErr
	}
}

// Shard returns which of n shards the entry's key belongs to, so that
// parallel writers keep every connection's operations in order.
func (k Key) Shard(n int) int {
	if n <= 1 {
		return 0
	}
	h := uint32(2166136261)
	mix := func(b byte) { h = (h ^ uint32(b)) * 16777619 }
	for i := range 16 {
		mix(k.Src[i])
		mix(k.Dst[i])
	}
	mix(byte(k.SrcPort))
	mix(byte(k.SrcPort >> 8))
	mix(byte(k.DstPort))
	mix(byte(k.DstPort >> 8))
	mix(k.Proto)
	mix(byte(k.Zone))
	return int(h % uint32(n))
}
