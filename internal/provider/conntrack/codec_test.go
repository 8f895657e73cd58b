package conntrack

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func sample() []Entry {
	e := Entry{
		Proto: ProtoTCP, Zone: 3,
		Orig:   Tuple{Src: netip.MustParseAddr("10.1.1.10"), Dst: netip.MustParseAddr("10.2.2.20"), SrcPort: 40000, DstPort: 80},
		Reply:  Tuple{Src: netip.MustParseAddr("10.2.2.20"), Dst: netip.MustParseAddr("10.2.2.100"), SrcPort: 80, DstPort: 50000},
		Status: StatusConfirmed | StatusSeenReply | StatusAssured, Timeout: 300, Mark: 7, TCPState: TCPEstablished,
		Labels: [16]byte{1: 0x80},
	}
	v6 := Entry{Proto: ProtoUDP,
		Orig:   Tuple{Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00::2"), SrcPort: 1, DstPort: 2},
		Reply:  Tuple{Src: netip.MustParseAddr("fd00::2"), Dst: netip.MustParseAddr("fd00::1"), SrcPort: 2, DstPort: 1},
		Status: StatusConfirmed, Timeout: 30}
	icmp := Entry{Proto: ProtoICMP,
		Orig:  Tuple{Src: netip.MustParseAddr("10.1.1.10"), Dst: netip.MustParseAddr("10.2.2.20"), SrcPort: 9, DstPort: 8 << 8},
		Reply: Tuple{Src: netip.MustParseAddr("10.2.2.20"), Dst: netip.MustParseAddr("10.1.1.10"), SrcPort: 9, DstPort: 0}}
	return []Entry{e, v6, icmp}
}

// asEvent turns a request into what the kernel would report: the same
// attributes under a NEW message.
func asEvent(b []byte) []byte { return b[nlmsgHdrLen:] }

func TestCodecRoundTrip(t *testing.T) {
	for _, e := range sample() {
		msgs, err := SplitMessages(AppendUpdate(nil, &e, 5))
		if err != nil || len(msgs) != 1 || msgs[0].Seq != 5 {
			t.Fatalf("split: %v %v", msgs, err)
		}
		got, err := DecodeEntry(msgs[0].Payload)
		if err != nil {
			t.Fatal(err)
		}
		if got.Orig != e.Orig || got.Proto != e.Proto || got.Zone != e.Zone || got.Mark != e.Mark || got.Labels != e.Labels {
			t.Fatalf("update round trip: got %v want %v", got, e)
		}
		if e.Proto == ProtoTCP && got.TCPState != e.TCPState {
			t.Fatalf("tcp state %d", got.TCPState)
		}
		c, err := DecodeEntry(asEvent(AppendCreate(nil, &e, 1)))
		if err != nil {
			t.Fatal(err)
		}
		// A create carries the reply without NAT plus NAT ranges.
		if _, _, snat := e.SNAT(); snat && c.Reply != e.Orig.Inverse() {
			t.Fatalf("create reply %v, want un-NATed %v", c.Reply, e.Orig.Inverse())
		}
		if _, _, snat := e.SNAT(); !snat && c.Reply != e.Reply {
			t.Fatalf("create reply %v, want %v", c.Reply, e.Reply)
		}
	}
}

func TestNATDetection(t *testing.T) {
	e := sample()[0]
	if a, p, ok := e.SNAT(); !ok || a.String() != "10.2.2.100" || p != 50000 {
		t.Fatalf("SNAT %v %v %v", a, p, ok)
	}
	if _, _, ok := e.DNAT(); ok {
		t.Fatal("no DNAT expected")
	}
	if _, _, ok := sample()[2].SNAT(); ok {
		t.Fatal("ICMP without NAT")
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {1, 2}, {2, 0, 0, 0, 8, 0, 1}, {2, 0, 0, 0, 4, 0, 1, 0}} {
		if _, err := DecodeEntry(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%v: err %v", b, err)
		}
	}
	if _, err := SplitMessages([]byte{1, 2, 3}); !errors.Is(err, ErrMalformed) {
		t.Error("short message accepted")
	}
}

func FuzzDecodeEntry(f *testing.F) {
	for _, e := range sample() {
		f.Add(asEvent(AppendCreate(nil, &e, 1)))
		f.Add(asEvent(AppendUpdate(nil, &e, 1)))
		f.Add(asEvent(AppendDelete(nil, &e, 1)))
	}
	f.Add([]byte{2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes and decodes to the same key.
		again, err := DecodeEntry(asEvent(AppendUpdate(nil, &e, 1)))
		if err != nil {
			t.Fatalf("re-decoding %v: %v", e, err)
		}
		if again.Key() != e.Key() {
			t.Fatalf("key changed: %v -> %v", e.Key(), again.Key())
		}
	})
}

func FuzzSplitMessages(f *testing.F) {
	e := sample()[0]
	f.Add(AppendCreate(AppendDelete(nil, &e, 1), &e, 2))
	f.Add([]byte{16, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := SplitMessages(b)
		consumed := 0
		for _, m := range msgs {
			if consumed+nlmsgHdrLen+len(m.Payload) > len(b) {
				t.Fatalf("message at %d claims %d payload bytes of %d", consumed, len(m.Payload), len(b))
			}
			consumed = min(consumed+(nlmsgHdrLen+len(m.Payload)+3)&^3, len(b))
			_, _ = DecodeEntry(m.Payload)
		}
		if err != nil {
			if consumed >= len(b) {
				t.Fatalf("error %v although every byte was split", err)
			}
			return
		}
		if consumed != len(b) {
			t.Fatalf("split %d of %d bytes without an error", consumed, len(b))
		}
		if len(b)%4 != 0 {
			return
		}
		// Two copies of an aligned valid buffer split into two copies of its messages.
		twice, err := SplitMessages(append(append([]byte(nil), b...), b...))
		if err != nil || len(twice) != 2*len(msgs) {
			t.Fatalf("doubled buffer: %d messages, %v; want %d", len(twice), err, 2*len(msgs))
		}
		for i, m := range twice {
			o := msgs[i%len(msgs)]
			if m.Type != o.Type || m.Flags != o.Flags || m.Seq != o.Seq || m.Errno != o.Errno || !bytes.Equal(m.Payload, o.Payload) {
				t.Fatalf("doubled buffer: message %d = %+v, want %+v", i, m, o)
			}
		}
	})
}
