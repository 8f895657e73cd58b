package sessionsync

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/batonha/baton/internal/provider/conntrack"
)

// standby is a syncer that only receives, fed by a hostile peer.
func standby(t *testing.T, tune func(*Config), conntrackMax func() (int, error)) (*Syncer, *memStream) {
	t.Helper()
	cfg := testConfig(StrategyCommit)
	if tune != nil {
		tune(&cfg)
	}
	s, err := New(Options{Config: cfg, Peer: "peer", Table: conntrack.NewFake(), ConntrackMax: conntrackMax,
		Watch: func() (Watcher, error) { return nil, errors.New("not active") },
		Dial:  func(context.Context) (Stream, error) { return nil, errors.New("not dialling") }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, srv := memPair()
	done := make(chan struct{})
	go func() { s.Serve(ctx, srv); close(done) }()
	t.Cleanup(func() { cancel(); c.Close(); <-done })
	return s, c
}

func sendBatch(t *testing.T, c *memStream, seq uint64, recs []Record) {
	t.Helper()
	if err := c.Send(frameBatch, EncodeBatch(nil, &Batch{Seq: seq, Records: recs})); err != nil {
		t.Fatal(err)
	}
	if typ, _, err := c.Recv(); err != nil || typ != frameAck {
		t.Fatalf("no ack: %d %v", typ, err)
	}
}

// The receiver applies its own filter (a peer can send any zone,
// protocol or address) and holds at most max_entries.
func TestReceiverFiltersAndBoundsHeld(t *testing.T) {
	s, c := standby(t, func(c *Config) { c.Zones = []int{0}; c.MaxEntries = 100 }, nil)
	var foreign []Record
	for i := range 10 {
		e := entry(i)
		switch i % 3 {
		case 0:
			e.Zone = 7 // a zone this node does not sync
		case 1:
			e.Proto = conntrack.ProtoICMP
		case 2:
			e.Orig.Src = netip.MustParseAddr("10.100.9.1") // excluded
		}
		foreign = append(foreign, Record{Entry: e})
	}
	sendBatch(t, c, 1, foreign)
	if st := s.Status(); st.Held != 0 || st.DroppedFiltered != 10 {
		t.Fatalf("foreign entries: held %d, dropped %d", st.Held, st.DroppedFiltered)
	}
	for b := range 20 {
		var recs []Record
		for i := range 50 {
			e := entry(i)
			e.Orig.SrcPort = uint16(b*50 + i)
			recs = append(recs, Record{Entry: e})
		}
		sendBatch(t, c, uint64(2+b), recs)
	}
	if st := s.Status(); st.Held != 100 || st.DroppedFull != 900 || st.MaxEntries != 100 {
		t.Fatalf("1000 entries: held %d, dropped %d, max %d", st.Held, st.DroppedFull, st.MaxEntries)
	}
	// A held entry is still updated, and a deletion makes room.
	e := entry(0)
	e.Orig.SrcPort = 0
	sendBatch(t, c, 30, []Record{{Entry: e}, {Delete: true, Entry: e}})
	e.Orig.SrcPort = 999
	sendBatch(t, c, 31, []Record{{Entry: e}})
	if st := s.Status(); st.Held != 100 || st.DroppedFull != 900 {
		t.Fatalf("after update, delete, insert: held %d, dropped %d", st.Held, st.DroppedFull)
	}
}

func TestMaxEntriesDefaultsToConntrackMax(t *testing.T) {
	s, _ := standby(t, nil, func() (int, error) { return 4096, nil })
	if st := s.Status(); st.MaxEntries != 4096 {
		t.Fatalf("max entries %d, want nf_conntrack_max 4096", st.MaxEntries)
	}
	s, _ = standby(t, nil, func() (int, error) { return 0, errors.New("no conntrack") })
	if st := s.Status(); st.MaxEntries != DefaultMaxEntries {
		t.Fatalf("max entries %d, want %d", st.MaxEntries, DefaultMaxEntries)
	}
}
