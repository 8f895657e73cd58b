package heartbeat

import (
	"context"
	"net"
	"testing"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/role"
)

// The benchmarks measure one heartbeat's cost on each side; run them with
// -benchmem: sending and receiving must allocate nothing.

func benchMessage() Message {
	return Message{Node: "nva-a", Path: "front", Epoch: 42, Seq: 1, Sent: t0.UnixNano(), Echo: t0.UnixNano() - 1e6,
		EchoDelay: 1000, State: role.Active, Term: 7, Priority: 150, Flags: FlagHealthy | FlagPreempt}
}

func BenchmarkEncode(b *testing.B) {
	msg := benchMessage()
	mac := newMACs([][]byte{testKey}).signer()
	buf := make([]byte, 0, MaxMessageSize)
	b.ReportAllocs()
	for b.Loop() {
		msg.Seq++
		if _, err := appendEncoded(buf[:0], &msg, mac); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	msg := benchMessage()
	wire, err := Encode(&msg, testKey)
	if err != nil {
		b.Fatal(err)
	}
	ms := newMACs([][]byte{testKey})
	names := map[string]string{"nva-a": "nva-a", "front": "front"}
	intern := func(b []byte) string { return names[string(b)] }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(wire, ms, intern); err != nil {
			b.Fatal(err)
		}
	}
}

// runBench starts m until the benchmark ends.
func runBench(b *testing.B, m *Monitor) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-m.ready:
	case err := <-done:
		b.Fatalf("Run returned early: %v", err)
	}
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	})
}

func benchListen(b *testing.B) net.PacketConn {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkMonitorSend is one heartbeat round: a signed message on each of
// three UDP paths (to a socket nobody reads).
func BenchmarkMonitorSend(b *testing.B) {
	udp, sink := benchListen(b), benchListen(b)
	to := sink.LocalAddr().String()
	m, err := New(Config{Node: "nva-a", Peer: "nva-b", Interval: iv, Misses: misses, Listen: udp.LocalAddr().String(),
		Keys: [][]byte{testKey}, Clock: clock.NewFake(t0), Logger: testLogger(&testing.T{}),
		Paths: []PathConfig{{Name: "front", Address: to}, {Name: "back", Address: to}, {Name: "hb", Address: to}}})
	if err != nil {
		b.Fatal(err)
	}
	m.preUDP = udp
	runBench(b, m)
	b.ReportAllocs()
	for b.Loop() {
		m.SendNow()
	}
	if s := m.Status(); s.Sent == 0 || s.Paths[0].LastError != "" {
		b.Fatalf("nothing sent: %+v", s)
	}
}

// BenchmarkMonitorReceive is one heartbeat received on a UDP path after
// the socket read: decoding, authenticating and applying it (the peer's
// message is signed in the loop too, itself free of allocations).
func BenchmarkMonitorReceive(b *testing.B) {
	udp := benchListen(b)
	clk := clock.NewFake(t0)
	m, err := New(Config{Node: "nva-b", Peer: "nva-a", Interval: iv, Misses: misses, Listen: udp.LocalAddr().String(),
		Keys: [][]byte{testKey}, Clock: clk, Logger: testLogger(&testing.T{}),
		Paths: []PathConfig{{Name: "front", Address: benchListen(b).LocalAddr().String()}}})
	if err != nil {
		b.Fatal(err)
	}
	m.preUDP = udp
	runBench(b, m)
	msg := benchMessage()
	msg.Echo = t0.UnixNano() // the monitor's first message: the peer is proven live
	mac := newMACs([][]byte{testKey}).signer()
	ms := newMACs([][]byte{testKey})
	buf := make([]byte, 0, MaxMessageSize)
	b.ReportAllocs()
	for b.Loop() {
		msg.Seq++
		wire, err := appendEncoded(buf[:0], &msg, mac)
		if err != nil {
			b.Fatal(err)
		}
		got, err := decode(wire, ms, m.internName)
		if err != nil {
			b.Fatal(err)
		}
		if !m.handle(got, KindUDP, nil) {
			b.Fatalf("message %d not accepted: %+v", msg.Seq, m.Status().Drops)
		}
	}
}
