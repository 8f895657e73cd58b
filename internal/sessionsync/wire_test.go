package sessionsync

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/batonha/baton/internal/provider/conntrack"
)

func entry(i int) conntrack.Entry {
	src := netip.AddrFrom4([4]byte{10, 100, 1, byte(10 + i%200)})
	return conntrack.Entry{
		Proto:  conntrack.ProtoTCP,
		Orig:   conntrack.Tuple{Src: src, Dst: netip.MustParseAddr("10.100.2.20"), SrcPort: uint16(30000 + i), DstPort: 7},
		Reply:  conntrack.Tuple{Src: netip.MustParseAddr("10.100.2.20"), Dst: netip.MustParseAddr("10.100.3.1"), SrcPort: 7, DstPort: uint16(40000 + i)},
		Status: conntrack.StatusConfirmed | conntrack.StatusSeenReply | conntrack.StatusAssured, Timeout: 432000,
		Mark: uint32(i), TCPState: conntrack.TCPEstablished,
	}
}

func sampleBatch() Batch {
	v6 := conntrack.Entry{Proto: conntrack.ProtoUDP, Zone: 9,
		Orig:   conntrack.Tuple{Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00::2"), SrcPort: 1, DstPort: 2},
		Reply:  conntrack.Tuple{Src: netip.MustParseAddr("fd00::2"), Dst: netip.MustParseAddr("fd00::1"), SrcPort: 2, DstPort: 1},
		Labels: [16]byte{15: 1}, Timeout: 30}
	del := entry(3)
	return Batch{Seq: 42, Flags: flagResyncBegin, Records: []Record{
		{Entry: entry(1)}, {Entry: v6}, {Delete: true, Entry: conntrack.Entry{Proto: del.Proto, Orig: del.Orig, Reply: del.Orig.Inverse()}},
	}}
}

func TestBatchRoundTrip(t *testing.T) {
	bt := sampleBatch()
	got, err := DecodeBatch(EncodeBatch(nil, &bt))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, bt) {
		t.Fatalf("got %+v\nwant %+v", got, bt)
	}
	if s, err := DecodeAck(EncodeAck(77)); err != nil || s != 77 {
		t.Fatalf("ack %d %v", s, err)
	}
}

func TestDecodeBatchRejects(t *testing.T) {
	bt := sampleBatch()
	b := EncodeBatch(nil, &bt)
	for name, p := range map[string][]byte{
		"short":    b[:5],
		"cut":      b[:len(b)-3],
		"trailing": append(bytes.Clone(b), 0),
		"huge":     AppendBatchHeader(nil, 1, 0, 1<<30),
		"badop":    append(AppendBatchHeader(nil, 1, 0, 1), bytes.Repeat([]byte{9}, 20)...),
	} {
		if _, err := DecodeBatch(p); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	bt := sampleBatch()
	f.Add(EncodeBatch(nil, &bt))
	f.Add(EncodeBatch(nil, &Batch{Seq: 1, Flags: flagResyncEnd}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, p []byte) {
		bt, err := DecodeBatch(p)
		if err != nil {
			return
		}
		again, err := DecodeBatch(EncodeBatch(nil, &bt))
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if again.Seq != bt.Seq || len(again.Records) != len(bt.Records) {
			t.Fatalf("round trip changed the batch")
		}
	})
}

// Records of every shape survive the wire: IPv4 and IPv6, labels or none,
// upserts and deletes (which carry the original tuple only).
func TestRecordsRoundTrip(t *testing.T) {
	bt := sampleBatch()
	for i := range 50 {
		e := entry(i)
		if i%3 == 0 {
			e.Labels[i%16] = byte(i + 1)
		}
		r := Record{Entry: e}
		if i%5 == 0 {
			r = Record{Delete: true, Entry: conntrack.Entry{Proto: e.Proto, Orig: e.Orig, Reply: e.Orig.Inverse()}}
		}
		bt.Records = append(bt.Records, r)
	}
	got, err := DecodeBatch(EncodeBatch(nil, &bt))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, bt) {
		t.Fatalf("got %+v\nwant %+v", got, bt)
	}
}
