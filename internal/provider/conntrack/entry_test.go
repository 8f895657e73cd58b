package conntrack

import (
	"net/netip"
	"testing"
)

func TestKeyGivesBackTheOriginalTuple(t *testing.T) {
	for _, orig := range []Tuple{
		{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), SrcPort: 1, DstPort: 2},
		{Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00::2"), SrcPort: 3, DstPort: 4},
		{Src: netip.MustParseAddr("::1"), Dst: netip.MustParseAddr("::ffff:10.0.0.2"), SrcPort: 5, DstPort: 6},
	} {
		e := Entry{Proto: ProtoTCP, Zone: 7, Orig: orig}
		k := e.Key()
		if got := k.Orig(); got != orig {
			t.Errorf("%v: key gives back %v", orig, got)
		}
		if k.Proto != ProtoTCP || k.Zone != 7 {
			t.Errorf("%v: key %+v", orig, k)
		}
	}
	// Keys differ in every field that identifies an entry.
	base := Entry{Proto: ProtoUDP, Orig: Tuple{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), SrcPort: 1, DstPort: 2}}
	for name, f := range map[string]func(*Entry){
		"proto": func(e *Entry) { e.Proto = ProtoTCP },
		"zone":  func(e *Entry) { e.Zone = 1 },
		"src":   func(e *Entry) { e.Orig.Src = netip.MustParseAddr("10.0.0.3") },
		"dst":   func(e *Entry) { e.Orig.Dst = netip.MustParseAddr("10.0.0.3") },
		"sport": func(e *Entry) { e.Orig.SrcPort = 9 },
		"dport": func(e *Entry) { e.Orig.DstPort = 9 },
	} {
		e := base
		f(&e)
		if e.Key() == base.Key() {
			t.Errorf("changing %s keeps the key", name)
		}
	}
	// The reply tuple and the state are not part of it.
	e := base
	e.Reply.SrcPort, e.Mark, e.Timeout = 7, 1, 9
	if e.Key() != base.Key() {
		t.Error("the key depends on more than the original tuple")
	}
}
