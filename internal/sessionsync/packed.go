package sessionsync

import "github.com/batonha/baton/internal/provider/conntrack"

// packedEntry is a conntrack entry without pointers (addresses as 16
// bytes): the standby holds hundreds of thousands of them, and a table of
// pointer-free values costs the garbage collector nothing to scan.
type packedEntry struct {
	key             conntrack.Key
	rsrc, rdst      [16]byte
	rsport, rdport  uint16
	status, timeout uint32
	mark            uint32
	tcpState        uint8
	labels          [16]byte
}

func pack(e *conntrack.Entry) packedEntry {
	return packedEntry{key: e.Key(), rsrc: e.Reply.Src.As16(), rdst: e.Reply.Dst.As16(),
		rsport: e.Reply.SrcPort, rdport: e.Reply.DstPort, status: e.Status, timeout: e.Timeout,
		mark: e.Mark, tcpState: e.TCPState, labels: e.Labels}
}

// entry unpacks p (the kernel's local ID is not kept).
func (p *packedEntry) entry() conntrack.Entry {
	// The reply tuple unpacks as a key's tuple does.
	reply := conntrack.Key{Src: p.rsrc, Dst: p.rdst, SrcPort: p.rsport, DstPort: p.rdport, V6: p.key.V6}
	return conntrack.Entry{Proto: p.key.Proto, Zone: p.key.Zone, Orig: p.key.Orig(), Reply: reply.Orig(),
		Status: p.status, Timeout: p.timeout, Mark: p.mark, TCPState: p.tcpState, Labels: p.labels}
}

// sameShape reports whether p and q differ only in what ctnetlink can
// change in place (status, timeout, mark, labels, TCP state): an update
// does; another shape takes a delete and a create.
func (p *packedEntry) sameShape(q *packedEntry) bool {
	return p.key == q.key && p.rsrc == q.rsrc && p.rdst == q.rdst && p.rsport == q.rsport && p.rdport == q.rdport
}
