package heartbeat

import (
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/role"
)

// Captured heartbeats of a peer that has since died, replayed to a node
// that restarted (its replay window is new), must not make the peer look
// alive: a peer run counts only once it echoes one of this run's messages.
func TestReplayAfterRestartIsNotThePeer(t *testing.T) {
	clk := clock.NewFake(t0)
	sink, attacker := listenUDP(t), listenUDP(t)

	// First run of b: the peer a is alive and answers b's messages.
	ub1 := listenUDP(t)
	cfg := baseConfig(t, "b", "a", clk, ub1, PathConfig{Name: "p1", Address: sink.LocalAddr().String()})
	b1 := mustNew(t, cfg)
	b1.preUDP = ub1
	rb1 := record(b1)
	run1 := start(t, b1)
	const epochA = 3000
	var captured [][]byte
	for seq := uint64(1); seq <= 5; seq++ {
		p := mustEncode(t, peerMessage(epochA, seq, 4), testKey) // echoes b1's first message
		captured = append(captured, p)
		if _, err := attacker.WriteTo(p, ub1.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	rb1.wait(t, "a alive at the first run", kind(EventPeerAlive))
	run1.stop(t)

	// a dies; b restarts later. The attacker replays what it captured.
	clk.Advance(10 * time.Second)
	ub2 := listenUDP(t)
	cfg.Listen, cfg.Epoch = ub2.LocalAddr().String(), 2
	b2 := mustNew(t, cfg)
	b2.preUDP = ub2
	rb2 := record(b2)
	start(t, b2)
	for _, p := range captured {
		if _, err := attacker.WriteTo(p, ub2.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "replays handled", func() bool {
		st := b2.Status()
		return st.Drops[DropUnechoed]+st.Received == uint64(len(captured))
	})
	if st := b2.Status(); st.Alive || st.Received != 0 || st.Peer != nil {
		t.Fatalf("replayed captures made the dead peer look alive: %+v", st)
	}
	for i := 0; i < misses; i++ {
		clk.Advance(iv)
	}
	if n := rb2.count(kind(EventPeerAlive)) + rb2.count(kind(EventMessage)) + rb2.count(kind(EventPathUp)); n != 0 {
		t.Fatalf("%d events from replayed captures: %+v", n, rb2.all())
	}

	// The peer comes back: its first message cannot echo b's run (it has
	// heard nothing of it) and is not trusted; b echoes it, and the
	// peer's answer proves it live.
	restart := t0.Add(10*time.Second + misses*iv).UnixNano()
	first := peerMessage(epochA+1, 1, 5)
	first.Echo, first.Sent = 0, restart
	if _, err := attacker.WriteTo(mustEncode(t, first, testKey), ub2.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "unechoed first message", func() bool { return b2.Status().Drops[DropUnechoed] == uint64(len(captured))+1 })
	b2.SendNow()
	var echoed Message
	eventually(t, "b echoes the peer's first message", func() bool {
		buf := make([]byte, MaxMessageSize)
		_ = sink.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		for {
			n, _, err := sink.ReadFrom(buf)
			if err != nil {
				return false
			}
			if m, err := Decode(buf[:n], [][]byte{testKey}); err == nil && m.Epoch == 2 && m.Echo == restart {
				echoed = m
				return true
			}
		}
	})
	answer := peerMessage(epochA+1, 2, 5)
	answer.Sent, answer.Echo = restart+1, echoed.Sent
	if _, err := attacker.WriteTo(mustEncode(t, answer, testKey), ub2.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	alive := rb2.wait(t, "the live peer heard", kind(EventPeerAlive))
	if alive.Info.State != role.Active || alive.Info.Term != 5 {
		t.Fatalf("PeerAlive = %+v, want the live peer's state", alive)
	}
}
