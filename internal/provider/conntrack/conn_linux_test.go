package conntrack

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/labtest"
)

// nsConn returns a request socket and a watcher in a fresh namespace whose
// nftables ruleset has a NAT chain (so that NAT can be set up) and a rule
// matching a connection label (so that entries get the label extension).
func nsConn(t *testing.T) (*Conn, *Watcher, *lab.Host) {
	t.Helper()
	labtest.RequireRoot(t)
	l, err := lab.New(lab.RandomPrefix(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	h, err := l.AddHost("ct")
	if err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(t.TempDir(), "nat.nft")
	if err := os.WriteFile(rules, []byte("table ip nat {\n chain post {\n  type nat hook postrouting priority 100;\n }\n chain filt {\n  type filter hook forward priority 0;\n  ct label 3 accept\n }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	labtest.RequireTool(t, "nft")
	if out, err := h.Run(context.Background(), "nft", "-f", rules); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var c *Conn
	var w *Watcher
	if err := h.Do(func() error {
		var err error
		if c, err = Open(); err != nil {
			return err
		}
		w, err = NewWatcher(1<<20, 4<<20)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, w, h
}

func snatEntry(sport uint16) Entry {
	return Entry{
		Proto:  ProtoTCP,
		Orig:   Tuple{Src: netip.MustParseAddr("10.1.1.10"), Dst: netip.MustParseAddr("10.2.2.20"), SrcPort: sport, DstPort: 80},
		Reply:  Tuple{Src: netip.MustParseAddr("10.2.2.20"), Dst: netip.MustParseAddr("10.2.2.100"), SrcPort: 80, DstPort: sport + 10000},
		Status: StatusConfirmed | StatusSeenReply | StatusAssured, Timeout: 300, Mark: 7, TCPState: TCPEstablished,
		Labels: [16]byte{0: 0x05},
	}
}

func find(t *testing.T, c *Conn, k Key) (Entry, bool) {
	t.Helper()
	all, err := c.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.Key() == k {
			return e, true
		}
	}
	return Entry{}, false
}

func TestCreateNATedEntryRoundTrips(t *testing.T) {
	c, w, h := nsConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events := make(chan Event, 64)
	go w.Run(ctx, func(e Event) { events <- e }, func() {})
	defer w.Close()

	e := snatEntry(40000)
	dnat := Entry{Proto: ProtoUDP,
		Orig:   Tuple{Src: netip.MustParseAddr("10.1.1.10"), Dst: netip.MustParseAddr("10.9.9.9"), SrcPort: 5353, DstPort: 53},
		Reply:  Tuple{Src: netip.MustParseAddr("10.2.2.53"), Dst: netip.MustParseAddr("10.1.1.10"), SrcPort: 5300, DstPort: 5353},
		Status: StatusConfirmed | StatusSeenReply, Timeout: 120, Mark: 1}
	icmp := Entry{Proto: ProtoICMP,
		Orig:   Tuple{Src: netip.MustParseAddr("10.1.1.10"), Dst: netip.MustParseAddr("10.2.2.20"), SrcPort: 77, DstPort: 8 << 8},
		Reply:  Tuple{Src: netip.MustParseAddr("10.2.2.20"), Dst: netip.MustParseAddr("10.1.1.10"), SrcPort: 77, DstPort: 0},
		Status: StatusConfirmed | StatusSeenReply, Timeout: 30}
	st, err := c.Apply(ctx, []Op{{OpCreate, e}, {OpCreate, dnat}, {OpCreate, icmp}})
	if err != nil || st.Created != 3 || st.Failed != 0 {
		t.Fatalf("apply: %+v %v", st, err)
	}
	got, ok := find(t, c, e.Key())
	if !ok {
		t.Fatal("created entry not in dump")
	}
	if got.Reply != e.Reply || got.Mark != 7 || got.TCPState != TCPEstablished || got.Labels != e.Labels {
		t.Fatalf("got %v, want %v", got, e)
	}
	want := StatusConfirmed | StatusSeenReply | StatusAssured | StatusSrcNAT
	if got.Status&want != want || got.Status&StatusDstNAT != 0 {
		t.Fatalf("status %#x lacks %#x or has DNAT", got.Status, want)
	}
	if got.Timeout < 290 || got.Timeout > 300 {
		t.Fatalf("timeout %d", got.Timeout)
	}
	if g, ok := find(t, c, dnat.Key()); !ok || g.Reply != dnat.Reply || g.Status&StatusDstNAT == 0 {
		t.Fatalf("DNAT entry %v %v", g, ok)
	}
	if g, ok := find(t, c, icmp.Key()); !ok || g.Reply != icmp.Reply || g.Orig != icmp.Orig {
		t.Fatalf("ICMP entry %v %v", g, ok)
	}
	// The conntrack CLI sees the NAT too (independent decoder).
	out, err := h.Run(ctx, "conntrack", "-L", "-p", "tcp", "--sport", "40000")
	if err == nil {
		if s := string(out); !contains(s, "dst=10.2.2.100") || !contains(s, "dport=50000") || !contains(s, "mark=7") {
			t.Fatalf("conntrack -L: %s", s)
		}
	}

	// Create again with another mark: replaced.
	e2 := e
	e2.Mark = 9
	st, err = c.Apply(ctx, []Op{{OpCreate, e2}})
	if err != nil || st.Replaced != 1 || st.Failed != 0 {
		t.Fatalf("replace: %+v %v", st, err)
	}
	if g, _ := find(t, c, e.Key()); g.Mark != 9 {
		t.Fatalf("mark after replace %d", g.Mark)
	}
	// Update in place.
	e2.Mark, e2.Timeout, e2.TCPState = 11, 100, TCPFinWait
	st, err = c.Apply(ctx, []Op{{OpUpdate, e2}})
	if err != nil || st.Updated != 1 {
		t.Fatalf("update: %+v %v", st, err)
	}
	if g, ok, err := c.Get(e.Key()); err != nil || !ok || g.Mark != 11 || g.TCPState != TCPFinWait || g.Timeout > 100 {
		t.Fatalf("get after update: %v %v %v", g, ok, err)
	}
	// Update of a missing entry creates it.
	e3 := snatEntry(40001)
	if st, err = c.Apply(ctx, []Op{{OpUpdate, e3}}); err != nil || st.Created != 1 {
		t.Fatalf("update missing: %+v %v", st, err)
	}
	// Delete, then delete again.
	st, err = c.Apply(ctx, []Op{{OpDelete, e}, {OpDelete, e}})
	if err != nil || st.Deleted != 1 || st.Missing != 1 {
		t.Fatalf("delete: %+v %v", st, err)
	}
	if _, ok, _ := c.Get(e.Key()); ok {
		t.Fatal("deleted entry still there")
	}

	seen := map[EventType]int{}
	deadline := time.After(5 * time.Second)
	for seen[EventNew] < 2 || seen[EventDestroy] < 1 || seen[EventUpdate] < 1 {
		select {
		case ev := <-events:
			if ev.Entry.Orig == e.Orig {
				seen[ev.Type]++
			}
		case <-deadline:
			t.Fatalf("events seen for the entry: %v", seen)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestBulkApplyAndDump(t *testing.T) {
	c, w, h := nsConn(t)
	w.Close()
	ctx := context.Background()
	const n = 5000
	ops := make([]Op, n)
	for i := range ops {
		e := snatEntry(uint16(1000 + i))
		e.Orig.Src = netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		e.Reply.DstPort = uint16(20000 + i)
		ops[i] = Op{OpCreate, e}
	}
	start := time.Now()
	st, err := c.Apply(ctx, ops)
	if err != nil || st.Created != n {
		t.Fatalf("apply: %+v %v", st, err)
	}
	t.Logf("created %d entries in %v", n, time.Since(start))
	all, err := c.Dump(ctx)
	if err != nil || len(all) != n {
		t.Fatalf("dump: %d entries, %v", len(all), err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if all, _ := c.Dump(ctx); len(all) != 0 {
		t.Fatalf("%d entries after flush", len(all))
	}

	// The same through a pool of sockets, twice: creates, then replaces.
	var p *Pool
	if err := h.Do(func() error { var err error; p, err = OpenPool(2); return err }); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, want := range []string{"created", "replaced"} {
		start = time.Now()
		st, err = p.Apply(ctx, ops)
		if err != nil || st.Failed != 0 || (want == "created" && st.Created != n) || (want == "replaced" && st.Replaced != n) {
			t.Fatalf("pool apply (%s): %+v %v", want, st, err)
		}
		t.Logf("pool %s %d entries in %v", want, n, time.Since(start))
	}
	if all, _ := p.Dump(ctx); len(all) != n {
		t.Fatalf("dump after pool apply: %d", len(all))
	}
}
