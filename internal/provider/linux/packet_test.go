package linux

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
)

var (
	testMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	otherMAC  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	testIPv4  = netip.MustParseAddr("10.99.0.100")
	testIPv6  = netip.MustParseAddr("fd00:99::100")
	bcast     = broadcastMAC()
	allNodesM = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
)

func TestGratuitousARPFrames(t *testing.T) {
	frames, err := gratuitousARPFrames(testMAC, testIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 2 {
		t.Fatalf("got %d frames, want request and reply", len(frames))
	}
	for i, op := range []uint16{arpOpRequest, arpOpReply} {
		f := frames[i]
		if len(f) != minFrameLen {
			t.Errorf("frame %d: %d bytes, want padding to %d", i, len(f), minFrameLen)
		}
		if !bytes.Equal(f[0:6], bcast) || !bytes.Equal(f[6:12], testMAC) {
			t.Errorf("frame %d: Ethernet dst %x src %x", i, f[0:6], f[6:12])
		}
		p, err := parseARPFrame(f)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if p.Op != op || p.SenderIP != testIPv4 || p.TargetIP != testIPv4 || !bytes.Equal(p.SenderMAC, testMAC) {
			t.Errorf("frame %d: %+v", i, p)
		}
	}
}

func TestARPConflict(t *testing.T) {
	probe, err := probeARPFrame(testMAC, testIPv4)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := parseARPFrame(probe)
	if p.SenderIP != netip.IPv4Unspecified() || p.TargetIP != testIPv4 || p.Op != arpOpRequest {
		t.Fatalf("probe is not an RFC 5227 probe: %+v", p)
	}
	reply, _ := marshalARPFrame(testMAC, otherMAC, arpPacket{Op: arpOpReply, SenderMAC: otherMAC, SenderIP: testIPv4, TargetMAC: testMAC, TargetIP: netip.IPv4Unspecified()})
	if got := arpConflict(reply, testIPv4, testMAC); !bytes.Equal(got, otherMAC) {
		t.Errorf("reply from other host: conflict %v, want %v", got, otherMAC)
	}
	if got := arpConflict(reply, netip.MustParseAddr("10.99.0.101"), testMAC); got != nil {
		t.Errorf("reply for another IP reported as conflict: %v", got)
	}
	if got := arpConflict(reply, testIPv4, otherMAC); got != nil {
		t.Errorf("own reply reported as conflict: %v", got)
	}
	// Another host's probe (sender 0.0.0.0) does not claim the address.
	other, _ := probeARPFrame(otherMAC, testIPv4)
	if got := arpConflict(other, testIPv4, testMAC); got != nil {
		t.Errorf("probe reported as conflict: %v", got)
	}
}

func TestParseARPFrameRejects(t *testing.T) {
	good, _ := probeARPFrame(testMAC, testIPv4)
	cases := map[string]func([]byte) []byte{
		"short":     func(b []byte) []byte { return b[:30] },
		"ethertype": func(b []byte) []byte { b[12] = 0x08; b[13] = 0x00; return b },
		"hwtype":    func(b []byte) []byte { b[15] = 6; return b },
		"lengths":   func(b []byte) []byte { b[18] = 8; return b },
	}
	for name, mut := range cases {
		b := mut(append([]byte(nil), good...))
		if _, err := parseARPFrame(b); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestUnsolicitedNAFrame(t *testing.T) {
	f, err := unsolicitedNAFrame(testMAC, testIPv6)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f[0:6], allNodesM) {
		t.Errorf("dst MAC %x, want all-nodes", f[0:6])
	}
	m, err := parseNDFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != icmpNeighborAdvert || m.Target != testIPv6 || m.Src != testIPv6 || m.Dst.String() != "ff02::1" {
		t.Errorf("NA: %+v", m)
	}
	if m.Flags != naFlagOverride {
		t.Errorf("flags %#x, want override only (unsolicited)", m.Flags)
	}
	if !bytes.Equal(m.LinkLayer, testMAC) {
		t.Errorf("target link-layer option %v", m.LinkLayer)
	}
	if got := ndConflict(f, testIPv6, otherMAC); !bytes.Equal(got, testMAC) {
		t.Errorf("NA from another host: conflict %v", got)
	}
	if got := ndConflict(f, testIPv6, testMAC); got != nil {
		t.Errorf("own NA reported as conflict")
	}
	// A corrupted byte must fail the checksum.
	f[len(f)-1] ^= 0xff
	if _, err := parseNDFrame(f); err == nil {
		t.Error("corrupted NA parsed without a checksum error")
	}
}

func TestDADProbeFrame(t *testing.T) {
	f, err := dadProbeFrame(testMAC, testIPv6)
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseNDFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != icmpNeighborSolic || m.Src != netip.IPv6Unspecified() || m.Dst.String() != "ff02::1:ff00:100" || m.LinkLayer != nil {
		t.Errorf("DAD probe: %+v", m)
	}
	if want := (net.HardwareAddr{0x33, 0x33, 0xff, 0, 0x01, 0}); !bytes.Equal(f[0:6], want) {
		t.Errorf("dst MAC %v, want %v", net.HardwareAddr(f[0:6]), want)
	}
	if ndConflict(f, testIPv6, otherMAC) != nil {
		t.Error("a solicitation reported as conflict")
	}
}

func FuzzParseARPFrame(f *testing.F) {
	probe, _ := probeARPFrame(testMAC, testIPv4)
	f.Add(probe)
	g, _ := gratuitousARPFrames(testMAC, testIPv4)
	f.Add(g[0])
	f.Add(g[1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseARPFrame(b)
		if err != nil {
			return
		}
		if len(p.SenderMAC) != 6 || len(p.TargetMAC) != 6 || !p.SenderIP.Is4() || !p.TargetIP.Is4() {
			t.Fatalf("parsed malformed packet %+v", p)
		}
		// Re-encoding yields the same ARP payload.
		out, err := marshalARPFrame(b[0:6], b[6:12], p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out[:ethHeaderLen+arpPayloadLen], b[:ethHeaderLen+arpPayloadLen]) {
			t.Fatalf("round trip changed the frame:\n%x\n%x", b[:42], out[:42])
		}
		_ = arpConflict(b, testIPv4, testMAC)
	})
}

func FuzzParseNDFrame(f *testing.F) {
	na, _ := unsolicitedNAFrame(testMAC, testIPv6)
	f.Add(na)
	ns, _ := dadProbeFrame(testMAC, testIPv6)
	f.Add(ns)
	f.Add(na[:60])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseNDFrame(b)
		if err != nil {
			return
		}
		if m.Type != icmpNeighborAdvert && m.Type != icmpNeighborSolic {
			t.Fatalf("accepted ICMPv6 type %d", m.Type)
		}
		if m.LinkLayer != nil && len(m.LinkLayer) != 6 {
			t.Fatalf("link-layer option of %d bytes", len(m.LinkLayer))
		}
		_ = ndConflict(b, testIPv6, testMAC)
	})
}
