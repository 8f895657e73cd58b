package sessionsync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/batonha/baton/internal/provider/conntrack"
)

// The sync stream, over a peer link stream for service "sessions": the
// active node (sender) sends batch frames, the standby (receiver) answers
// each with an ack frame once the batch is applied.
//
//	batch: seq u64 | flags u8 | count u32 | count × record
//	ack:   seq u64
//	record: op u8 | proto u8 | family u8 (4|6) | zone u16 | orig tuple
//	        upsert only: reply tuple | status u32 | timeout u32 | mark u32 |
//	        tcp state u8 | has labels u8 [| labels 16 bytes]
//	tuple:  src addr | dst addr (4 or 16 bytes each) | src port u16 | dst port u16
//
// Integers are big-endian. A full resync is the batches from one flagged
// resyncBegin to one flagged resyncEnd: at its end the receiver forgets
// every connection the resync did not mention.
const (
	frameBatch uint8 = 1
	frameAck   uint8 = 2

	flagResyncBegin uint8 = 1 << 0
	flagResyncEnd   uint8 = 1 << 1

	opUpsert uint8 = 1
	opDelete uint8 = 2

	batchHeader = 8 + 1 + 4
)

// ErrBadFrame marks a frame that does not decode.
var ErrBadFrame = errors.New("malformed session sync frame")

// Record is one change: an upsert or a delete of a connection.
type Record struct {
	Delete bool
	Entry  conntrack.Entry
}

// Batch is one decoded batch frame.
type Batch struct {
	Seq     uint64
	Flags   uint8
	Records []Record
}

// AppendRecord appends the wire form of r to b.
func AppendRecord(b []byte, r *Record) []byte {
	return appendChange(b, &change{del: r.Delete, p: pack(&r.Entry)})
}

// appendChange appends the wire form of c (the sender keeps its changes
// packed).
func appendChange(b []byte, c *change) []byte {
	p := &c.p
	op, fam := opUpsert, uint8(4)
	if c.del {
		op = opDelete
	}
	if p.key.V6 {
		fam = 6
	}
	b = append(b, op, p.key.Proto, fam)
	b = binary.BigEndian.AppendUint16(b, p.key.Zone)
	b = appendPackedTuple(b, &p.key.Src, &p.key.Dst, p.key.SrcPort, p.key.DstPort, p.key.V6)
	if c.del {
		return b
	}
	b = appendPackedTuple(b, &p.rsrc, &p.rdst, p.rsport, p.rdport, p.key.V6)
	b = binary.BigEndian.AppendUint32(b, p.status)
	b = binary.BigEndian.AppendUint32(b, p.timeout)
	b = binary.BigEndian.AppendUint32(b, p.mark)
	b = append(b, p.tcpState)
	if p.labels != [16]byte{} {
		b = append(b, 1)
		b = append(b, p.labels[:]...)
	} else {
		b = append(b, 0)
	}
	return b
}

func appendPackedTuple(b []byte, src, dst *[16]byte, sport, dport uint16, v6 bool) []byte {
	if v6 {
		b = append(b, src[:]...)
		b = append(b, dst[:]...)
	} else {
		b = append(b, src[12:]...)
		b = append(b, dst[12:]...)
	}
	b = binary.BigEndian.AppendUint16(b, sport)
	return binary.BigEndian.AppendUint16(b, dport)
}

// AppendBatchHeader appends a batch header for count records.
func AppendBatchHeader(b []byte, seq uint64, flags uint8, count int) []byte {
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, flags)
	return binary.BigEndian.AppendUint32(b, uint32(count))
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("%w: want %d more bytes, have %d", ErrBadFrame, n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) tuple(v6 bool) conntrack.Tuple {
	n := 4
	if v6 {
		n = 16
	}
	var t conntrack.Tuple
	s, d := r.take(n), r.take(n)
	if r.err != nil {
		return t
	}
	t.Src, _ = netip.AddrFromSlice(s)
	t.Dst, _ = netip.AddrFromSlice(d)
	t.SrcPort, t.DstPort = r.u16(), r.u16()
	return t
}

// DecodeBatch decodes a batch frame's payload.
func DecodeBatch(p []byte) (Batch, error) {
	r := reader{b: p}
	var bt Batch
	if len(p) < batchHeader {
		return bt, fmt.Errorf("%w: %d-byte batch", ErrBadFrame, len(p))
	}
	bt.Seq = binary.BigEndian.Uint64(r.take(8))
	bt.Flags = r.u8()
	count := int(r.u32())
	// The smallest record is a v4 delete: 5 + 12 bytes.
	if count > len(r.b)/17 {
		return bt, fmt.Errorf("%w: %d records in %d bytes", ErrBadFrame, count, len(r.b))
	}
	bt.Records = make([]Record, 0, count)
	for range count {
		var rec Record
		op, proto, fam := r.u8(), r.u8(), r.u8()
		if r.err != nil {
			return bt, r.err
		}
		if op != opUpsert && op != opDelete {
			return bt, fmt.Errorf("%w: op %d", ErrBadFrame, op)
		}
		if fam != 4 && fam != 6 {
			return bt, fmt.Errorf("%w: family %d", ErrBadFrame, fam)
		}
		rec.Delete = op == opDelete
		e := &rec.Entry
		e.Proto = proto
		e.Zone = r.u16()
		e.Orig = r.tuple(fam == 6)
		if !rec.Delete {
			e.Reply = r.tuple(fam == 6)
			e.Status, e.Timeout, e.Mark = r.u32(), r.u32(), r.u32()
			e.TCPState = r.u8()
			switch r.u8() {
			case 0:
			case 1:
				copy(e.Labels[:], r.take(16))
			default:
				if r.err == nil {
					return bt, fmt.Errorf("%w: labels flag", ErrBadFrame)
				}
			}
		} else {
			e.Reply = e.Orig.Inverse()
		}
		if r.err != nil {
			return bt, r.err
		}
		bt.Records = append(bt.Records, rec)
	}
	if len(r.b) != 0 {
		return bt, fmt.Errorf("%w: %d trailing bytes", ErrBadFrame, len(r.b))
	}
	return bt, nil
}

// EncodeAck encodes an ack frame's payload.
func EncodeAck(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// DecodeAck decodes an ack frame's payload.
func DecodeAck(p []byte) (uint64, error) {
	if len(p) != 8 {
		return 0, fmt.Errorf("%w: %d-byte ack", ErrBadFrame, len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}
