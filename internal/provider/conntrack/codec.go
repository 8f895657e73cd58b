package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Netlink and ctnetlink constants (linux/netlink.h,
// linux/netfilter/nfnetlink.h, linux/netfilter/nfnetlink_conntrack.h).
const (
	nlmsgHdrLen = 16
	nfgenHdrLen = 4

	nlmsgError = 2
	nlmsgDone  = 3

	flagRequest = 0x1
	flagMulti   = 0x2
	flagAck     = 0x4
	flagDump    = 0x300
	flagExcl    = 0x200
	flagCreate  = 0x400

	subsysCT     = 1
	msgCTNew     = 0
	msgCTGet     = 1
	msgCTDelete  = 2
	typeCTNew    = subsysCT<<8 | msgCTNew
	typeCTGet    = subsysCT<<8 | msgCTGet
	typeCTDelete = subsysCT<<8 | msgCTDelete

	afUnspec = 0
	afInet   = 2
	afInet6  = 10

	nlaNested = 0x8000
	nlaTypeMk = 0x3fff

	ctaTupleOrig  = 1
	ctaTupleReply = 2
	ctaStatus     = 3
	ctaProtoinfo  = 4
	ctaNATSrc     = 6
	ctaTimeout    = 7
	ctaMark       = 8
	ctaID         = 12
	ctaNATDst     = 13
	ctaZone       = 18
	ctaLabels     = 22
	ctaLabelsMask = 23

	ctaTupleIP    = 1
	ctaTupleProto = 2

	ctaIPv4Src = 1
	ctaIPv4Dst = 2
	ctaIPv6Src = 3
	ctaIPv6Dst = 4

	ctaProtoNum      = 1
	ctaProtoSrcPort  = 2
	ctaProtoDstPort  = 3
	ctaProtoICMPID   = 4
	ctaProtoICMPType = 5
	ctaProtoICMPCode = 6
	ctaProtoICMP6ID  = 7
	ctaProtoICMP6Typ = 8
	ctaProtoICMP6Cod = 9

	ctaProtoinfoTCP      = 1
	ctaTCPState          = 1
	ctaTCPFlagsOriginal  = 4
	ctaTCPFlagsReply     = 5
	ctaNATv4MinIP        = 1
	ctaNATv4MaxIP        = 2
	ctaNATProto          = 3
	ctaNATv6MinIP        = 4
	ctaNATv6MaxIP        = 5
	ctaProtoNATPortMin   = 1
	ctaProtoNATPortMax   = 2
	nfnlGroupCTNew       = 1
	nfnlGroupCTUpdate    = 2
	nfnlGroupCTDestroy   = 3
	groupsAllCTEventMask = 1<<(nfnlGroupCTNew-1) | 1<<(nfnlGroupCTUpdate-1) | 1<<(nfnlGroupCTDestroy-1)
)

// ErrMalformed marks a message that does not parse.
var ErrMalformed = errors.New("malformed ctnetlink message")

// encoder appends netlink attributes to a buffer.
type encoder struct{ b []byte }

func (e *encoder) attr(typ uint16, data []byte) {
	n := 4 + len(data)
	e.b = binary.LittleEndian.AppendUint16(e.b, uint16(n))
	e.b = binary.LittleEndian.AppendUint16(e.b, typ)
	e.b = append(e.b, data...)
	e.pad()
}

func (e *encoder) pad() {
	for len(e.b)%4 != 0 {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) u8(typ uint16, v uint8) { e.attr(typ, []byte{v}) }
func (e *encoder) be16(typ uint16, v uint16) {
	e.attr(typ, binary.BigEndian.AppendUint16(nil, v))
}
func (e *encoder) be32(typ uint16, v uint32) {
	e.attr(typ, binary.BigEndian.AppendUint32(nil, v))
}

// nest starts a nested attribute; end finishes it.
func (e *encoder) nest(typ uint16) int {
	at := len(e.b)
	e.b = append(e.b, 0, 0, 0, 0)
	binary.LittleEndian.PutUint16(e.b[at+2:], typ|nlaNested)
	return at
}

func (e *encoder) end(at int) {
	binary.LittleEndian.PutUint16(e.b[at:], uint16(len(e.b)-at))
}

// header appends a netlink + nfgenmsg header; finish sets the length.
func (e *encoder) header(typ, flags uint16, seq uint32, family uint8) int {
	at := len(e.b)
	e.b = binary.LittleEndian.AppendUint32(e.b, 0)
	e.b = binary.LittleEndian.AppendUint16(e.b, typ)
	e.b = binary.LittleEndian.AppendUint16(e.b, flags)
	e.b = binary.LittleEndian.AppendUint32(e.b, seq)
	e.b = binary.LittleEndian.AppendUint32(e.b, 0)
	e.b = append(e.b, family, 0, 0, 0)
	return at
}

func (e *encoder) finish(at int) {
	binary.LittleEndian.PutUint32(e.b[at:], uint32(len(e.b)-at))
}

func family(e *Entry) uint8 {
	if e.V6() {
		return afInet6
	}
	return afInet
}

func (e *encoder) tuple(typ uint16, proto uint8, t Tuple) {
	n := e.nest(typ)
	ip := e.nest(ctaTupleIP)
	if t.Src.Is4() {
		s, d := t.Src.As4(), t.Dst.As4()
		e.attr(ctaIPv4Src, s[:])
		e.attr(ctaIPv4Dst, d[:])
	} else {
		s, d := t.Src.As16(), t.Dst.As16()
		e.attr(ctaIPv6Src, s[:])
		e.attr(ctaIPv6Dst, d[:])
	}
	e.end(ip)
	p := e.nest(ctaTupleProto)
	e.u8(ctaProtoNum, proto)
	switch proto {
	case ProtoICMP:
		e.be16(ctaProtoICMPID, t.SrcPort)
		e.u8(ctaProtoICMPType, uint8(t.DstPort>>8))
		e.u8(ctaProtoICMPCode, uint8(t.DstPort))
	case ProtoICMPv6:
		e.be16(ctaProtoICMP6ID, t.SrcPort)
		e.u8(ctaProtoICMP6Typ, uint8(t.DstPort>>8))
		e.u8(ctaProtoICMP6Cod, uint8(t.DstPort))
	default:
		e.be16(ctaProtoSrcPort, t.SrcPort)
		e.be16(ctaProtoDstPort, t.DstPort)
	}
	e.end(p)
	e.end(n)
}

func (e *encoder) nat(typ uint16, v6 bool, addr netip.Addr, port uint16, portful bool) {
	n := e.nest(typ)
	if v6 {
		a := addr.As16()
		e.attr(ctaNATv6MinIP, a[:])
		e.attr(ctaNATv6MaxIP, a[:])
	} else {
		a := addr.As4()
		e.attr(ctaNATv4MinIP, a[:])
		e.attr(ctaNATv4MaxIP, a[:])
	}
	if portful {
		p := e.nest(ctaNATProto)
		e.be16(ctaProtoNATPortMin, port)
		e.be16(ctaProtoNATPortMax, port)
		e.end(p)
	}
	e.end(n)
}

// createStatus is the status a created entry carries: CONFIRMED (without
// it the kernel answers EBUSY) plus the reply and assured bits the
// original had.
func createStatus(s uint32) uint32 {
	return StatusConfirmed | s&(StatusSeenReply|StatusAssured)
}

// tcpFlags are the flags a written TCP entry carries: no window tracking
// state is transferable, so the kernel must be liberal about windows.
func tcpFlags(state uint8) uint8 {
	f := TCPFlagSACKPerm | TCPFlagBeLiberal
	if state >= TCPTimeWait && state != TCPSynSent2 {
		f |= TCPFlagCloseInit
	}
	return f
}

func (e *encoder) mutable(en *Entry) {
	e.be32(ctaStatus, createStatus(en.Status))
	e.be32(ctaTimeout, max(en.Timeout, 1))
	e.be32(ctaMark, en.Mark)
	if en.HasLabels() {
		mask := [16]byte{}
		for i := range mask {
			mask[i] = 0xff
		}
		e.attr(ctaLabels, en.Labels[:])
		e.attr(ctaLabelsMask, mask[:])
	}
	if en.Proto == ProtoTCP {
		pi := e.nest(ctaProtoinfo)
		t := e.nest(ctaProtoinfoTCP)
		e.u8(ctaTCPState, en.TCPState)
		f := tcpFlags(en.TCPState)
		e.attr(ctaTCPFlagsOriginal, []byte{f, f})
		e.attr(ctaTCPFlagsReply, []byte{f, f})
		e.end(t)
		e.end(pi)
	}
}

// AppendCreate appends a request creating en (failing with EEXIST when it
// exists) to b.
func AppendCreate(b []byte, en *Entry, seq uint32) []byte {
	e := encoder{b: b}
	h := e.header(typeCTNew, flagRequest|flagAck|flagCreate|flagExcl, seq, family(en))
	snatAddr, snatPort, snat := en.SNAT()
	dnatAddr, dnatPort, dnat := en.DNAT()
	e.tuple(ctaTupleOrig, en.Proto, en.Orig)
	// With NAT, the kernel derives the reply tuple from the NAT ranges and
	// sets the NAT status bits only when it changes the reply tuple: hand
	// it the reply as it would be without NAT.
	e.tuple(ctaTupleReply, en.Proto, en.unNATedReply())
	if en.Zone != 0 {
		e.be16(ctaZone, en.Zone)
	}
	e.mutable(en)
	v6 := en.V6()
	if snat {
		e.nat(ctaNATSrc, v6, snatAddr, snatPort, en.portful())
	}
	if dnat {
		e.nat(ctaNATDst, v6, dnatAddr, dnatPort, en.portful())
	}
	e.finish(h)
	return e.b
}

// unNATedReply is the reply tuple with any NAT undone.
func (en *Entry) unNATedReply() Tuple {
	r := Tuple{Src: en.Orig.Dst, Dst: en.Orig.Src, SrcPort: en.Reply.SrcPort, DstPort: en.Reply.DstPort}
	if en.portful() {
		r.SrcPort, r.DstPort = en.Orig.DstPort, en.Orig.SrcPort
	}
	return r
}

// AppendUpdate appends a request changing the mutable parts of an
// existing entry (ENOENT when it does not exist).
func AppendUpdate(b []byte, en *Entry, seq uint32) []byte {
	e := encoder{b: b}
	h := e.header(typeCTNew, flagRequest|flagAck, seq, family(en))
	e.tuple(ctaTupleOrig, en.Proto, en.Orig)
	if en.Zone != 0 {
		e.be16(ctaZone, en.Zone)
	}
	e.mutable(en)
	e.finish(h)
	return e.b
}

// AppendDelete appends a request deleting the entry with en's key.
func AppendDelete(b []byte, en *Entry, seq uint32) []byte {
	e := encoder{b: b}
	h := e.header(typeCTDelete, flagRequest|flagAck, seq, family(en))
	e.tuple(ctaTupleOrig, en.Proto, en.Orig)
	if en.Zone != 0 {
		e.be16(ctaZone, en.Zone)
	}
	e.finish(h)
	return e.b
}

// AppendGet appends a request reading the entry with en's key.
func AppendGet(b []byte, en *Entry, seq uint32) []byte {
	e := encoder{b: b}
	h := e.header(typeCTGet, flagRequest|flagAck, seq, family(en))
	e.tuple(ctaTupleOrig, en.Proto, en.Orig)
	if en.Zone != 0 {
		e.be16(ctaZone, en.Zone)
	}
	e.finish(h)
	return e.b
}

// AppendDump appends a request dumping the whole table.
func AppendDump(b []byte, seq uint32) []byte {
	e := encoder{b: b}
	h := e.header(typeCTGet, flagRequest|flagDump, seq, afUnspec)
	e.finish(h)
	return e.b
}

// Message is one parsed netlink message.
type Message struct {
	Type, Flags uint16
	Seq         uint32
	// Errno is the error an NLMSG_ERROR message carries (0 = ack).
	Errno int32
	// Payload is what follows the netlink header.
	Payload []byte
}

// SplitMessages parses the netlink messages in b.
func SplitMessages(b []byte) ([]Message, error) { return appendMessages(nil, b) }

func appendMessages(out []Message, b []byte) ([]Message, error) {
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return out, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
		}
		n := int(binary.LittleEndian.Uint32(b))
		if n < nlmsgHdrLen || n > len(b) {
			return out, fmt.Errorf("%w: message length %d of %d", ErrMalformed, n, len(b))
		}
		m := Message{
			Type:    binary.LittleEndian.Uint16(b[4:]),
			Flags:   binary.LittleEndian.Uint16(b[6:]),
			Seq:     binary.LittleEndian.Uint32(b[8:]),
			Payload: b[nlmsgHdrLen:n],
		}
		if m.Type == nlmsgError {
			if len(m.Payload) < 4 {
				return out, fmt.Errorf("%w: short error message", ErrMalformed)
			}
			m.Errno = -int32(binary.LittleEndian.Uint32(m.Payload))
		}
		out = append(out, m)
		a := (n + 3) &^ 3
		if a > len(b) {
			a = len(b)
		}
		b = b[a:]
	}
	return out, nil
}

// EventOf classifies a ctnetlink message as an event.
func EventOf(m Message) (EventType, bool) {
	switch m.Type {
	case typeCTNew:
		if m.Flags&(flagCreate|flagExcl) != 0 {
			return EventNew, true
		}
		return EventUpdate, true
	case typeCTDelete:
		return EventDestroy, true
	}
	return 0, false
}

// attrs iterates over netlink attributes.
type attrs struct {
	b   []byte
	typ uint16
	val []byte
	err error
}

func (a *attrs) next() bool {
	if a.err != nil || len(a.b) == 0 {
		return false
	}
	if len(a.b) < 4 {
		a.err = fmt.Errorf("%w: %d trailing attribute bytes", ErrMalformed, len(a.b))
		return false
	}
	n := int(binary.LittleEndian.Uint16(a.b))
	if n < 4 || n > len(a.b) {
		a.err = fmt.Errorf("%w: attribute length %d of %d", ErrMalformed, n, len(a.b))
		return false
	}
	a.typ = binary.LittleEndian.Uint16(a.b[2:]) & nlaTypeMk
	a.val = a.b[4:n]
	adv := (n + 3) &^ 3
	if adv > len(a.b) {
		adv = len(a.b)
	}
	a.b = a.b[adv:]
	return true
}

func be16(v []byte) (uint16, error) {
	if len(v) != 2 {
		return 0, fmt.Errorf("%w: want 2 bytes, got %d", ErrMalformed, len(v))
	}
	return binary.BigEndian.Uint16(v), nil
}

func be32(v []byte) (uint32, error) {
	if len(v) != 4 {
		return 0, fmt.Errorf("%w: want 4 bytes, got %d", ErrMalformed, len(v))
	}
	return binary.BigEndian.Uint32(v), nil
}

func u8(v []byte) (uint8, error) {
	if len(v) != 1 {
		return 0, fmt.Errorf("%w: want 1 byte, got %d", ErrMalformed, len(v))
	}
	return v[0], nil
}

func decodeTuple(b []byte) (Tuple, uint8, error) {
	var t Tuple
	var proto uint8
	var icmpType, icmpCode uint8
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case ctaTupleIP:
			ip := attrs{b: a.val}
			for ip.next() {
				var ok bool
				switch ip.typ {
				case ctaIPv4Src:
					t.Src, ok = netip.AddrFromSlice(ip.val)
					ok = ok && len(ip.val) == 4
				case ctaIPv4Dst:
					t.Dst, ok = netip.AddrFromSlice(ip.val)
					ok = ok && len(ip.val) == 4
				case ctaIPv6Src:
					t.Src, ok = netip.AddrFromSlice(ip.val)
					ok = ok && len(ip.val) == 16
				case ctaIPv6Dst:
					t.Dst, ok = netip.AddrFromSlice(ip.val)
					ok = ok && len(ip.val) == 16
				default:
					ok = true
				}
				if !ok {
					return t, 0, fmt.Errorf("%w: address attribute %d of %d bytes", ErrMalformed, ip.typ, len(ip.val))
				}
			}
			if ip.err != nil {
				return t, 0, ip.err
			}
		case ctaTupleProto:
			p := attrs{b: a.val}
			for p.next() {
				var err error
				switch p.typ {
				case ctaProtoNum:
					proto, err = u8(p.val)
				case ctaProtoSrcPort, ctaProtoICMPID, ctaProtoICMP6ID:
					t.SrcPort, err = be16(p.val)
				case ctaProtoDstPort:
					t.DstPort, err = be16(p.val)
				case ctaProtoICMPType, ctaProtoICMP6Typ:
					icmpType, err = u8(p.val)
				case ctaProtoICMPCode, ctaProtoICMP6Cod:
					icmpCode, err = u8(p.val)
				}
				if err != nil {
					return t, 0, err
				}
			}
			if p.err != nil {
				return t, 0, p.err
			}
		}
	}
	if a.err != nil {
		return t, 0, a.err
	}
	if proto == ProtoICMP || proto == ProtoICMPv6 {
		t.DstPort = uint16(icmpType)<<8 | uint16(icmpCode)
	}
	return t, proto, nil
}

// DecodeEntry decodes the payload of a ctnetlink conntrack message
// (nfgenmsg and attributes) into an entry.
func DecodeEntry(payload []byte) (Entry, error) {
	var e Entry
	if len(payload) < nfgenHdrLen {
		return e, fmt.Errorf("%w: short nfgenmsg", ErrMalformed)
	}
	a := attrs{b: payload[nfgenHdrLen:]}
	var haveOrig bool
	for a.next() {
		var err error
		switch a.typ {
		case ctaTupleOrig:
			e.Orig, e.Proto, err = decodeTuple(a.val)
			haveOrig = true
		case ctaTupleReply:
			e.Reply, _, err = decodeTuple(a.val)
		case ctaStatus:
			e.Status, err = be32(a.val)
		case ctaTimeout:
			e.Timeout, err = be32(a.val)
		case ctaMark:
			e.Mark, err = be32(a.val)
		case ctaID:
			e.ID, err = be32(a.val)
		case ctaZone:
			e.Zone, err = be16(a.val)
		case ctaLabels:
			if len(a.val) > len(e.Labels) {
				err = fmt.Errorf("%w: %d label bytes", ErrMalformed, len(a.val))
			} else {
				copy(e.Labels[:], a.val)
			}
		case ctaProtoinfo:
			pi := attrs{b: a.val}
			for pi.next() {
				if pi.typ != ctaProtoinfoTCP {
					continue
				}
				t := attrs{b: pi.val}
				for t.next() {
					if t.typ == ctaTCPState {
						e.TCPState, err = u8(t.val)
						if err != nil {
							return e, err
						}
					}
				}
				if t.err != nil {
					return e, t.err
				}
			}
			err = pi.err
		}
		if err != nil {
			return e, err
		}
	}
	if a.err != nil {
		return e, a.err
	}
	if !haveOrig || !e.Orig.Src.IsValid() || !e.Orig.Dst.IsValid() {
		return e, fmt.Errorf("%w: no original tuple", ErrMalformed)
	}
	if !e.Reply.Src.IsValid() || !e.Reply.Dst.IsValid() {
		e.Reply = e.Orig.Inverse()
	}
	v4 := e.Orig.Src.Is4()
	if e.Orig.Dst.Is4() != v4 || e.Reply.Src.Is4() != v4 || e.Reply.Dst.Is4() != v4 {
		return e, fmt.Errorf("%w: tuples of mixed address families", ErrMalformed)
	}
	return e, nil
}
