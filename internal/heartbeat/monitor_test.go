package heartbeat

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/role"
)

const (
	iv     = 100 * time.Millisecond
	misses = 3
)

var t0 = time.Unix(1_700_000_000, 0)

func baseConfig(t *testing.T, node, peer string, clk clock.Clock, udp net.PacketConn, paths ...PathConfig) Config {
	return Config{
		Node: node, Peer: peer, Interval: iv, Misses: misses,
		Listen: udp.LocalAddr().String(), Keys: [][]byte{testKey},
		Paths: paths, Clock: clk, Logger: testLogger(t),
	}
}

func mustNew(t *testing.T, cfg Config) *Monitor {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// step advances the fake clock by one interval, which makes every monitor
// send, and waits until each of want has received more than before.
func step(t *testing.T, clk *clock.Fake, want ...*Monitor) {
	t.Helper()
	before := make([]uint64, len(want))
	for i, m := range want {
		before[i] = m.Status().Received
	}
	clk.Advance(iv)
	eventually(t, "heartbeats after a tick", func() bool {
		for i, m := range want {
			if m.Status().Received <= before[i] {
				return false
			}
		}
		return true
	})
}

func TestPairSeesEachOtherAndSurvivesOnePath(t *testing.T) {
	clk := clock.NewFake(t0)
	ua, ub := listenUDP(t), listenUDP(t)
	r1 := newRelay(t, ub.LocalAddr(), false) // a's path p1 to b
	r2 := newRelay(t, ub.LocalAddr(), false) // a's path p2 to b
	a := mustNew(t, baseConfig(t, "a", "b", clk, ua,
		PathConfig{Name: "p1", Address: r1.addr()}, PathConfig{Name: "p2", Address: r2.addr()}))
	b := mustNew(t, baseConfig(t, "b", "a", clk, ub,
		PathConfig{Name: "p1", Address: ua.LocalAddr().String()}, PathConfig{Name: "p2", Address: ua.LocalAddr().String()}))
	a.preUDP, b.preUDP = ua, ub
	a.SetLocal(Local{State: role.Active, Term: 7, Priority: 150, Healthy: true, Preempt: true})
	b.SetLocal(Local{State: role.Standby, Term: 7, Priority: 100, Healthy: true})
	ra, rb := record(a), record(b)
	start(t, a)
	start(t, b)

	wantA := role.PeerInfo{Name: "a", State: role.Active, Term: 7, Priority: 150, Healthy: true, Preempt: true}
	alive := rb.wait(t, "b sees a alive", kind(EventPeerAlive))
	if alive.Info != wantA {
		t.Errorf("PeerAlive info = %+v, want %+v", alive.Info, wantA)
	}
	msg := rb.wait(t, "message at b", kind(EventMessage))
	if msg.Info != wantA {
		t.Errorf("Message info = %+v, want %+v", msg.Info, wantA)
	}
	ra.wait(t, "a sees b alive", func(e Event) bool {
		return e.Kind == EventMessage && e.Info.Name == "b" && e.Info.State == role.Standby
	})
	eventually(t, "both paths up at b", func() bool { return status(b, "p1").Up && status(b, "p2").Up })

	// A changed role is advertised on the next send.
	a.SetLocal(Local{State: role.Active, Term: 8, Priority: 150, Handover: true})
	a.SendNow()
	rb.wait(t, "new term at b", func(e Event) bool { return e.Kind == EventMessage && e.Info.Term == 8 && e.Info.Handover })

	// Cut p2 from a to b: b keeps the peer alive on p1 and takes p2 down
	// exactly Misses intervals after it last heard on p2.
	r2.drop.Store(true)
	lastP2 := status(b, "p2").LastHeard
	for i := 0; i < misses; i++ {
		step(t, clk, a, b)
	}
	downAt := rb.wait(t, "p2 down at b", pathEvent(EventPathDown, "p2")).At
	if want := lastP2.Add(misses * iv); !downAt.Equal(want) {
		t.Errorf("p2 went down at %v, want exactly %v", downAt, want)
	}
	st := b.Status()
	if !st.Alive || !status(b, "p1").Up || status(b, "p2").Up {
		t.Fatalf("after cutting p2: alive=%v p1=%v p2=%v, want alive with p1 up and p2 down", st.Alive, status(b, "p1").Up, status(b, "p2").Up)
	}
	if n := rb.count(kind(EventPeerDead)); n != 0 {
		t.Fatalf("%d PeerDead events with one path still up", n)
	}

	// Cut p1 too: the peer is dead when p1's deadline passes, not before.
	r1.drop.Store(true)
	lastP1 := status(b, "p1").LastHeard
	clk.Advance(misses*iv - time.Millisecond)
	if !b.Status().Alive {
		t.Fatal("peer dead before the last path's deadline")
	}
	clk.Advance(time.Millisecond)
	dead := rb.wait(t, "PeerDead at b", kind(EventPeerDead))
	if dead.Gone || !dead.At.Equal(lastP1.Add(misses*iv)) {
		t.Errorf("PeerDead = %+v, want Gone=false at %v", dead, lastP1.Add(misses*iv))
	}
	if b.Status().Alive {
		t.Error("Status().Alive after PeerDead")
	}
	// The PathDown of the last path precedes PeerDead.
	evs := rb.all()
	var order []string
	for _, e := range evs {
		if e.Kind == EventPathDown || e.Kind == EventPeerDead {
			order = append(order, e.Kind.String()+":"+e.Path)
		}
	}
	if got := strings.Join(order, " "); got != "path_down:p2 path_down:p1 peer_dead:" {
		t.Errorf("down events = %q", got)
	}
}

func TestRTT(t *testing.T) {
	clk := clock.NewFake(t0)
	ua, ub := listenUDP(t), listenUDP(t)
	back := newRelay(t, ua.LocalAddr(), true) // b to a, held by the test
	a := mustNew(t, baseConfig(t, "a", "b", clk, ua, PathConfig{Name: "p1", Address: ub.LocalAddr().String()}))
	b := mustNew(t, baseConfig(t, "b", "a", clk, ub, PathConfig{Name: "p1", Address: back.addr()}))
	a.preUDP, b.preUDP = ua, ub
	start(t, a)
	start(t, b)
	// a's first message cannot echo b yet: b answers it at once (the
	// answer is held at the relay) and counts it as unechoed.
	eventually(t, "b hears a", func() bool { return b.Status().Drops[DropUnechoed] >= 1 })

	// b answers 2ms after hearing a; the answer spends 5ms in flight.
	clk.Advance(2 * time.Millisecond)
	b.SendNow()
	var held []byte
	eventually(t, "b's answer at the relay", func() bool {
		for {
			select {
			case p := <-back.hold:
				m, err := Decode(p, [][]byte{testKey})
				if err == nil && m.Sent == t0.Add(2*time.Millisecond).UnixNano() {
					if m.Echo != t0.UnixNano() || m.EchoDelay != int64(2*time.Millisecond) {
						t.Fatalf("answer echo=%d delay=%d, want %d and 2ms", m.Echo, m.EchoDelay, t0.UnixNano())
					}
					held = p
					return true
				}
			default:
				return false
			}
		}
	})
	clk.Advance(5 * time.Millisecond)
	if _, err := back.conn.WriteTo(held, ua.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "RTT measured at a", func() bool { return status(a, "p1").RTT == 5*time.Millisecond })
	// b's answer echoed a's message sent at t0: b received it.
	if got := a.Acked(); !got.Equal(t0) {
		t.Fatalf("Acked = %v, want %v (the send time b echoed)", got, t0)
	}
}

// peerMessage is a message as the peer "a" would send it to b on path p1,
// echoing b's first message (sent at t0 when b started).
func peerMessage(epoch, seq, term uint64) Message {
	return Message{Node: "a", Path: "p1", Epoch: epoch, Seq: seq, Sent: t0.UnixNano(), Echo: t0.UnixNano(),
		State: role.Active, Term: term, Flags: FlagHealthy}
}

func TestBadDatagramsAreDroppedAndCounted(t *testing.T) {
	clk := clock.NewFake(t0)
	ub := listenUDP(t)
	sink := listenUDP(t) // where b sends; never read
	attacker := listenUDP(t)
	b := mustNew(t, baseConfig(t, "b", "a", clk, ub, PathConfig{Name: "p1", Address: sink.LocalAddr().String()}))
	b.preUDP = ub
	rb := record(b)
	start(t, b)
	sendRaw := func(p []byte) {
		t.Helper()
		if _, err := attacker.WriteTo(p, ub.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}

	const epoch = 1000
	good := mustEncode(t, peerMessage(epoch, 5, 1), testKey)
	sendRaw(good)
	rb.wait(t, "first message", kind(EventMessage))

	// Every bad datagram carries term 66, which must never surface.
	withNode := peerMessage(epoch, 10, 66)
	withNode.Node = "mallory"
	withPath := peerMessage(epoch, 11, 66)
	withPath.Path = "p9"
	withChannel := peerMessage(epoch, 12, 66)
	withChannel.Path = ChannelPath
	bad := [][]byte{
		[]byte("hello, world"),
		good[:len(good)-3],
		mustEncode(t, peerMessage(epoch, 6, 66), otherKey),
		good, // replayed
		mustEncode(t, withNode, testKey),
		mustEncode(t, withPath, testKey),
		mustEncode(t, withChannel, testKey),
		mustEncode(t, peerMessage(epoch-1, 50, 66), testKey),
	}
	for _, p := range bad {
		sendRaw(p)
	}
	want := map[string]uint64{
		DropMalformed: 2, DropBadMAC: 1, DropReplay: 1, DropUnknownSender: 1, DropUnknownPath: 2, DropStaleEpoch: 1,
	}
	eventually(t, "drops counted", func() bool {
		d := b.Status().Drops
		for k, v := range want {
			if d[k] != v {
				return false
			}
		}
		return true
	})
	// A valid message after the bad ones: once its event is out, every
	// event the bad ones could have caused would be out too.
	sendRaw(mustEncode(t, peerMessage(epoch, 7, 99), testKey))
	rb.wait(t, "sentinel message", func(e Event) bool { return e.Kind == EventMessage && e.Info.Term == 99 })
	for _, e := range rb.all() {
		if e.Kind == EventMessage && e.Info.Term == 66 || e.Kind == EventPeerDead || e.Kind == EventPathDown {
			t.Errorf("unexpected event %+v", e)
		}
	}
	if got := rb.count(kind(EventPathUp)) + rb.count(kind(EventPeerAlive)); got != 2 {
		t.Errorf("%d PathUp+PeerAlive events, want 2", got)
	}
	st := b.Status()
	if st.Received != 2 || st.Peer == nil || st.Peer.Term != 99 {
		t.Errorf("Status: received %d, peer %+v; want 2 and term 99", st.Received, st.Peer)
	}
	for k, v := range want {
		if st.Drops[k] != v {
			t.Errorf("drops[%s] = %d, want %d", k, st.Drops[k], v)
		}
	}
}

func channelPair(t *testing.T, clk *clock.Fake) (a, b *Monitor, cfgA Config) {
	ua, ub := listenUDP(t), listenUDP(t)
	la, lb := listenTCP(t), listenTCP(t)
	cfgA = baseConfig(t, "a", "b", clk, ua, PathConfig{Name: "p1", Address: ub.LocalAddr().String()})
	cfgA.Channel = &ChannelConfig{Listen: la.Addr().String(), Address: lb.Addr().String()}
	cfgB := baseConfig(t, "b", "a", clk, ub, PathConfig{Name: "p1", Address: ua.LocalAddr().String()})
	cfgB.Channel = &ChannelConfig{Listen: lb.Addr().String(), Address: la.Addr().String()}
	a, b = mustNew(t, cfgA), mustNew(t, cfgB)
	a.preUDP, a.preLn = ua, la
	b.preUDP, b.preLn = ub, lb
	return a, b, cfgA
}

func TestChannelCloseMeansGone(t *testing.T) {
	clk := clock.NewFake(t0)
	a, b, cfgA := channelPair(t, clk)
	a.noLeaving = true // a dies like a killed process
	rb := record(b)
	ra := start(t, a)
	start(t, b)
	eventually(t, "channel up both ways", func() bool {
		return status(a, ChannelPath).Up && status(b, ChannelPath).Up && status(b, "p1").Up
	})
	rb.wait(t, "peer alive at b", kind(EventPeerAlive))
	a.mu.Lock()
	epochA := a.epoch
	a.mu.Unlock()

	ra.stop(t)
	dead := rb.wait(t, "PeerDead at b", kind(EventPeerDead))
	if !dead.Gone || dead.Leaving || !dead.At.Equal(t0) {
		t.Fatalf("PeerDead = %+v, want Gone at %v without the clock moving", dead, t0)
	}
	st := b.Status()
	if st.Alive || !st.Gone || status(b, "p1").Up || status(b, ChannelPath).Up {
		t.Fatalf("after gone: %+v", st)
	}

	// A late datagram from the dead process changes nothing.
	sender := listenUDP(t)
	late := mustEncode(t, peerMessage(epochA, 1<<20, 66), testKey)
	if _, err := sender.WriteTo(late, mustUDPAddr(t, b)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "dead epoch drop", func() bool { return b.Status().Drops[DropDeadEpoch] == 1 })
	if b.Status().Alive {
		t.Fatal("late datagram revived the gone peer")
	}

	// a restarts: a newer epoch revives it, over sockets it binds itself.
	clk.Advance(time.Millisecond)
	aliveBefore := rb.count(kind(EventPeerAlive))
	a2 := mustNew(t, cfgA)
	ra2 := start(t, a2)
	eventually(t, "a back at b", func() bool {
		return rb.count(kind(EventPeerAlive)) > aliveBefore && status(b, ChannelPath).Up
	})
	if st := b.Status(); !st.Alive || st.Gone {
		t.Fatalf("after restart: alive=%v gone=%v", st.Alive, st.Gone)
	}

	// A graceful stop announces Leaving: PeerDead{Gone, Leaving} at once.
	ra2.stop(t)
	rb.wait(t, "leaving", func(e Event) bool { return e.Kind == EventPeerDead && e.Gone && e.Leaving })
	rb.wait(t, "leaving message", func(e Event) bool { return e.Kind == EventMessage && e.Leaving })
}

func mustUDPAddr(t *testing.T, m *Monitor) net.Addr {
	a, err := net.ResolveUDPAddr("udp", m.cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// frame writes one message on a channel connection, as the peer would.
func frame(t *testing.T, c net.Conn, m Message) {
	t.Helper()
	b := mustEncode(t, m, testKey)
	if _, err := c.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...)); err != nil {
		t.Fatalf("writing frame: %v", err)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The test plays peer "a" over a channel connection and UDP, so that the
// order of events is its own.
func TestChannelReconnectRevivesSameEpoch(t *testing.T) {
	clk := clock.NewFake(t0)
	ub, sink := listenUDP(t), listenUDP(t)
	lb, peerLn := listenTCP(t), listenTCP(t) // peerLn never accepts: b's own dial just sits in the backlog
	cfg := baseConfig(t, "b", "a", clk, ub, PathConfig{Name: "p1", Address: sink.LocalAddr().String()})
	cfg.Channel = &ChannelConfig{Listen: lb.Addr().String(), Address: peerLn.Addr().String()}
	b := mustNew(t, cfg)
	b.preUDP, b.preLn = ub, lb
	rb := record(b)
	start(t, b)
	udp := listenUDP(t)
	sendUDP := func(m Message) {
		t.Helper()
		if _, err := udp.WriteTo(mustEncode(t, m, testKey), ub.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	const epoch = 5000
	chanMsg := func(seq uint64) Message {
		m := peerMessage(epoch, seq, 1)
		m.Path = ChannelPath
		return m
	}

	// An unauthenticated connection is not the channel: closing it
	// changes nothing.
	stranger := dial(t, lb.Addr().String())
	frame(t, stranger, Message{Node: "mallory", Path: ChannelPath, Epoch: epoch, Seq: 1})
	eventually(t, "stranger dropped", func() bool { return b.Status().Drops[DropUnknownSender] == 1 })
	stranger.Close()

	c1 := dial(t, lb.Addr().String())
	frame(t, c1, chanMsg(1))
	sendUDP(peerMessage(epoch, 2, 1))
	eventually(t, "alive on both paths", func() bool { return status(b, ChannelPath).Up && status(b, "p1").Up })
	// A datagram naming the channel path is not accepted over UDP, nor a
	// UDP path over the channel.
	sendUDP(chanMsg(3))
	m := peerMessage(epoch, 4, 1)
	frame(t, c1, m)
	eventually(t, "cross-path drops", func() bool { return b.Status().Drops[DropUnknownPath] == 2 })

	c1.Close()
	dead := rb.wait(t, "gone at b", kind(EventPeerDead))
	if !dead.Gone || rb.count(kind(EventPeerDead)) != 1 {
		t.Fatalf("PeerDead = %+v (count %d), want one with Gone", dead, rb.count(kind(EventPeerDead)))
	}
	sendUDP(peerMessage(epoch, 5, 1))
	eventually(t, "dead epoch drop", func() bool { return b.Status().Drops[DropDeadEpoch] == 1 })
	if b.Status().Alive {
		t.Fatal("datagram of the gone epoch revived the peer")
	}

	// A new connection whose first valid frame is from the peer revives
	// it under the same epoch, and its datagrams count again.
	c2 := dial(t, lb.Addr().String())
	frame(t, c2, chanMsg(6))
	eventually(t, "revived", func() bool { st := b.Status(); return st.Alive && !st.Gone })
	sendUDP(peerMessage(epoch, 7, 1))
	eventually(t, "p1 up again", func() bool { return status(b, "p1").Up })

	// A frame with an impossible length is dropped and ends that
	// connection without declaring the peer gone.
	garbage := dial(t, lb.Addr().String())
	if _, err := garbage.Write([]byte{0xff, 0xff, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bad frame dropped", func() bool { return b.Status().Drops[DropMalformed] == 1 })
	if st := b.Status(); !st.Alive || st.Gone {
		t.Fatalf("bad frame on another connection changed the peer: %+v", st)
	}
	if got := rb.count(kind(EventPeerAlive)); got != 2 {
		t.Errorf("%d PeerAlive events, want 2", got)
	}
}

func TestConfigValidation(t *testing.T) {
	udp := listenUDP(t)
	good := func() Config {
		return baseConfig(t, "a", "b", clock.Real{}, udp, PathConfig{Name: "p1", Address: "127.0.0.1:1"})
	}
	if _, err := New(good()); err != nil {
		t.Fatalf("good config: %v", err)
	}
	cases := map[string]func(c *Config){
		"no node":          func(c *Config) { c.Node = "" },
		"same names":       func(c *Config) { c.Peer = "a" },
		"fast interval":    func(c *Config) { c.Interval = MinInterval - time.Millisecond },
		"zero misses":      func(c *Config) { c.Misses = 0 },
		"bad listen":       func(c *Config) { c.Listen = "nope" },
		"no keys":          func(c *Config) { c.Keys = nil },
		"short key":        func(c *Config) { c.Keys = [][]byte{[]byte("short")} },
		"small window":     func(c *Config) { c.ReplayWindow = 4 },
		"no paths":         func(c *Config) { c.Paths = nil },
		"duplicate path":   func(c *Config) { c.Paths = append(c.Paths, c.Paths[0]) },
		"reserved path":    func(c *Config) { c.Paths[0].Name = ChannelPath },
		"bad path address": func(c *Config) { c.Paths[0].Address = "x" },
		"bad source":       func(c *Config) { c.Paths[0].Source = "not-an-ip" },
		"bad channel":      func(c *Config) { c.Channel = &ChannelConfig{Listen: ":1", Address: "x"} },
		"check type":       func(c *Config) { c.Checks = []CheckConfig{{Name: "c", Type: "udp", Target: "1.2.3.4"}} },
		"check name clash": func(c *Config) { c.Checks = []CheckConfig{{Name: "p1", Type: "tcp", Target: "h:1"}} },
		"icmp not an IP":   func(c *Config) { c.Checks = []CheckConfig{{Name: "c", Type: "icmp", Target: "host"}} },
		"http not a URL":   func(c *Config) { c.Checks = []CheckConfig{{Name: "c", Type: "http", Target: "ftp://x/"}} },
		"timeout too large": func(c *Config) {
			c.Checks = []CheckConfig{{Name: "c", Type: "tcp", Target: "h:1", Timeout: 2 * time.Second}}
		},
	}
	for name, f := range cases {
		c := good()
		f(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
}

func TestRunFailsWhenItCannotBind(t *testing.T) {
	busy := listenUDP(t)
	m := mustNew(t, baseConfig(t, "a", "b", clock.NewFake(t0), busy, PathConfig{Name: "p1", Address: "127.0.0.1:9"}))
	err := m.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "binding heartbeat socket") {
		t.Fatalf("Run on a busy port: %v", err)
	}
}

func TestStrangersCannotLockOutThePeer(t *testing.T) {
	clk := clock.NewFake(t0)
	ub, sink := listenUDP(t), listenUDP(t)
	lb, peerLn := listenTCP(t), listenTCP(t)
	cfg := baseConfig(t, "b", "a", clk, ub, PathConfig{Name: "p1", Address: sink.LocalAddr().String()})
	cfg.Channel = &ChannelConfig{Listen: lb.Addr().String(), Address: peerLn.Addr().String()}
	b := mustNew(t, cfg)
	b.preUDP, b.preLn = ub, lb
	start(t, b)
	for i := 0; i < maxInbound+2; i++ {
		dial(t, lb.Addr().String())
	}
	eventually(t, "strangers accepted", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.inbound) == maxInbound
	})
	c := dial(t, lb.Addr().String())
	m := peerMessage(1, 1, 1)
	m.Path = ChannelPath
	frame(t, c, m)
	eventually(t, "peer heard over the channel", func() bool { return status(b, ChannelPath).Up })
	// Every stranger past the cap was closed and counted.
	if n := b.Status().Drops[DropChannelFull]; n < 3 {
		t.Fatalf("%s drops = %d, want the 3 connections past %d counted", DropChannelFull, n, maxInbound)
	}
}

// A message that arrives after a newer one (a TCP backlog after a heal, a
// slow path) proves the path alive but must not roll the peer's state back.
func TestLateMessageDoesNotRollStateBack(t *testing.T) {
	clk := clock.NewFake(t0)
	ub := listenUDP(t)
	sink := listenUDP(t)
	peer := listenUDP(t)
	b := mustNew(t, baseConfig(t, "b", "a", clk, ub, PathConfig{Name: "p1", Address: sink.LocalAddr().String()}))
	b.preUDP = ub
	rb := record(b)
	start(t, b)
	send := func(m Message) {
		t.Helper()
		if _, err := peer.WriteTo(mustEncode(t, m, testKey), ub.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	const epoch = 2000
	send(peerMessage(epoch, 10, 2)) // ACTIVE, term 2: the newest state
	rb.wait(t, "newest state", func(e Event) bool { return e.Kind == EventMessage && e.Info.Term == 2 })
	late := peerMessage(epoch, 9, 1) // sent earlier, as STANDBY
	late.State = role.Standby
	send(late)
	eventually(t, "the late message counted", func() bool { return b.Status().Received == 2 })
	if st := b.Status(); st.Peer == nil || st.Peer.Term != 2 || st.Peer.State != role.Active {
		t.Fatalf("a late message rolled the peer's state back: %+v", st.Peer)
	}
	send(peerMessage(epoch, 11, 3)) // sentinel: every event of the late one is out before it
	rb.wait(t, "sentinel", func(e Event) bool { return e.Kind == EventMessage && e.Info.Term == 3 })
	for _, e := range rb.all() {
		if e.Kind == EventMessage && e.Info.Term == 1 {
			t.Fatalf("late message surfaced as the peer's state: %+v", e)
		}
	}
}

// A reset on the channel can be forged by anyone on the path: it is a
// death only when no newer heartbeat follows within 1.5 intervals, while
// a close (a killed process's kernel sends a FIN) is one at once.
func TestChannelResetIsNotADeathOnItsOwn(t *testing.T) {
	for _, newer := range []bool{true, false} {
		t.Run(fmt.Sprintf("newer=%v", newer), func(t *testing.T) {
			clk := clock.NewFake(t0)
			ub, sink := listenUDP(t), listenUDP(t)
			lb, peerLn := listenTCP(t), listenTCP(t)
			cfg := baseConfig(t, "b", "a", clk, ub, PathConfig{Name: "p1", Address: sink.LocalAddr().String()})
			cfg.Channel = &ChannelConfig{Listen: lb.Addr().String(), Address: peerLn.Addr().String()}
			b := mustNew(t, cfg)
			b.preUDP, b.preLn = ub, lb
			rb := record(b)
			start(t, b)
			udp := listenUDP(t)
			const epoch = 7000
			c := dial(t, lb.Addr().String())
			m := peerMessage(epoch, 1, 1)
			m.Path = ChannelPath
			frame(t, c, m)
			if _, err := udp.WriteTo(mustEncode(t, peerMessage(epoch, 2, 1), testKey), ub.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			eventually(t, "alive on both paths", func() bool { return status(b, ChannelPath).Up && status(b, "p1").Up })

			// The reset: linger 0 makes the close send an RST.
			if err := c.(*net.TCPConn).SetLinger(0); err != nil {
				t.Fatal(err)
			}
			c.Close()
			eventually(t, "connection gone at b", func() bool {
				b.mu.Lock()
				defer b.mu.Unlock()
				return len(b.inbound) == 0
			})
			if newer {
				if _, err := udp.WriteTo(mustEncode(t, peerMessage(epoch, 3, 1), testKey), ub.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				eventually(t, "newer datagram", func() bool { return status(b, "p1").Received == 2 })
			}
			clk.Advance(iv * 3 / 2)
			if newer {
				if st := b.Status(); !st.Alive || st.Gone || rb.count(kind(EventPeerDead)) != 0 {
					t.Fatalf("a reset followed by a newer heartbeat killed the peer: %+v", st)
				}
				return
			}
			dead := rb.wait(t, "gone after the reset", kind(EventPeerDead))
			if !dead.Gone {
				t.Fatalf("PeerDead = %+v, want Gone", dead)
			}
		})
	}
}

// The epoch is the configured restart counter, not the wall clock: a
// peer that restarts after its clock stepped back is still heard.
func TestRestartAfterClockSteppedBackIsHeard(t *testing.T) {
	clk := clock.NewFake(t0)
	a, b, cfgA := channelPair(t, clk)
	rb := record(b)
	ra := start(t, a)
	start(t, b)
	rb.wait(t, "peer alive at b", kind(EventPeerAlive))
	ra.stop(t)
	rb.wait(t, "a left", kind(EventPeerDead))

	// a comes back with its clock an hour behind and the next epoch.
	back := clock.NewFake(t0.Add(-time.Hour))
	cfgA.Clock, cfgA.Epoch = back, uint64(t0.UnixNano())+1
	a2 := mustNew(t, cfgA)
	start(t, a2)
	eventually(t, "a heard again at b", func() bool { st := b.Status(); return st.Alive && !st.Gone })
	if n := b.Status().Drops[DropStaleEpoch]; n != 0 {
		t.Fatalf("%d messages of the restarted peer dropped as stale", n)
	}
}
