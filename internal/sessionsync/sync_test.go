package sessionsync

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/provider/conntrack"
)

type frame struct {
	typ uint8
	p   []byte
}

// memStream is one end of an in-memory framed stream.
type memStream struct {
	in, out chan frame
	done    chan struct{}
	once    *sync.Once
}

func memPair() (*memStream, *memStream) {
	a, b := make(chan frame, 1024), make(chan frame, 1024)
	done, once := make(chan struct{}), &sync.Once{}
	return &memStream{in: a, out: b, done: done, once: once}, &memStream{in: b, out: a, done: done, once: once}
}

func (m *memStream) Send(typ uint8, p []byte) error {
	select {
	case <-m.done:
		return io.ErrClosedPipe
	case m.out <- frame{typ, append([]byte(nil), p...)}:
		return nil
	}
}

func (m *memStream) SendBatch(typ uint8, ps [][]byte) error {
	for _, p := range ps {
		if err := m.Send(typ, p); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStream) Recv() (uint8, []byte, error) {
	select {
	case <-m.done:
		return 0, nil, io.EOF
	case f := <-m.in:
		return f.typ, f.p, nil
	}
}

func (m *memStream) Close() error { m.once.Do(func() { close(m.done) }); return nil }

// pair is an active node A and a standby B joined by in-memory streams.
type pair struct {
	t        *testing.T
	ctx      context.Context
	ta, tb   *conntrack.Fake
	a, b     *Syncer
	mu       sync.Mutex
	down     bool
	streams  []*memStream
	watchers []*conntrack.FakeWatcher
}

func testConfig(strategy string) Config {
	var c Config
	c.SetDefaults()
	c.Strategy = strategy
	c.FlushInterval = 0
	c.BatchSize = 16
	c.Window = 4
	c.Reconnect = 10 * time.Millisecond
	c.Exclude = []string{"10.100.9.0/30"}
	return c
}

func newPair(t *testing.T, strategy string, tune ...func(*Config)) *pair {
	cfg := testConfig(strategy)
	for _, f := range tune {
		f(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pair{t: t, ctx: ctx, ta: conntrack.NewFake(), tb: conntrack.NewFake()}
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	mk := func(tab *conntrack.Fake, peer func() *Syncer) *Syncer {
		s, err := New(Options{
			Config: cfg, Peer: "peer", Table: tab, Clock: clock.Real{},
			Watch: func() (Watcher, error) {
				w := tab.Watch(1 << 16)
				p.mu.Lock()
				p.watchers = append(p.watchers, w)
				p.mu.Unlock()
				return w, nil
			},
			Dial: func(ctx context.Context) (Stream, error) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if p.down {
					return nil, errors.New("link down")
				}
				c, srv := memPair()
				p.streams = append(p.streams, c)
				wg.Add(1)
				go func() { defer wg.Done(); peer().Serve(ctx, srv) }()
				return c, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Run(ctx) }()
		return s
	}
	p.a = mk(p.ta, func() *Syncer { return p.b })
	p.b = mk(p.tb, func() *Syncer { return p.a })
	return p
}

// activateA makes A the active node as the daemon would: the takeover
// commit, then the role change.
func (p *pair) activateA() {
	if err := p.a.Commit(p.ctx); err != nil {
		p.t.Fatal(err)
	}
	p.a.RoleChanged(true)
}

// cut closes the streams and refuses new ones until heal.
func (p *pair) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, s := range p.streams {
		s.Close()
	}
	p.streams = nil
}

func (p *pair) heal() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func heldKeys(s *Syncer) []string {
	d := s.Held(Query{Limit: 1 << 20})
	var out []string
	for _, c := range d.Entries {
		out = append(out, c.Orig+" "+c.Reply+" "+c.State)
	}
	sort.Strings(out)
	return out
}

func tableKeys(f *conntrack.Fake) []string {
	all, _ := f.Dump(context.Background())
	var out []string
	for _, e := range all {
		c := connOf(&e, false)
		out = append(out, c.Orig+" "+c.Reply+" "+c.State)
	}
	sort.Strings(out)
	return out
}

func same(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }

func mgmtEntry() conntrack.Entry {
	return conntrack.Entry{Proto: conntrack.ProtoTCP,
		Orig:     conntrack.Tuple{Src: netip.MustParseAddr("10.100.9.1"), Dst: netip.MustParseAddr("10.100.9.2"), SrcPort: 5555, DstPort: 5407},
		Reply:    conntrack.Tuple{Src: netip.MustParseAddr("10.100.9.2"), Dst: netip.MustParseAddr("10.100.9.1"), SrcPort: 5407, DstPort: 5555},
		TCPState: conntrack.TCPEstablished, Timeout: 100}
}

func TestCommitStrategyReplicatesThenCommits(t *testing.T) {
	p := newPair(t, StrategyCommit)
	for i := range 100 {
		p.ta.Set(entry(i))
	}
	p.ta.Set(mgmtEntry()) // the appliances' own flow: never synced
	p.activateA()
	p.b.RoleChanged(false)
	eventually(t, "100 held on the standby", func() bool { return p.b.Status().Held == 100 })

	// Live changes: new, update, destroy.
	p.ta.Set(entry(100))
	up := entry(5)
	up.TCPState, up.Timeout = conntrack.TCPFinWait, 120
	p.ta.Set(up)
	gone := entry(7)
	p.ta.Remove(gone.Key())
	want := tableKeys(p.ta)
	want = want[:0]
	for _, k := range tableKeys(p.ta) {
		if !strings.HasPrefix(k, "10.100.9.") {
			want = append(want, k)
		}
	}
	eventually(t, "standby follows changes", func() bool { return same(heldKeys(p.b), want) })
	if p.tb.Len() != 0 {
		t.Fatalf("commit strategy wrote %d entries before takeover", p.tb.Len())
	}
	st := p.a.Status()
	if st.ResyncsSent != 1 || st.Filtered == 0 || !st.Connected {
		t.Fatalf("sender status %+v", st)
	}

	// Takeover: the commit makes them live, NAT and all.
	if err := p.b.Action().Activate(p.ctx, actionTakeover()); err != nil {
		t.Fatal(err)
	}
	if !same(tableKeys(p.tb), want) {
		t.Fatalf("kernel after commit:\n%v\nwant\n%v", tableKeys(p.tb), want)
	}
	e, ok, _ := p.tb.Get(entry(3).Key())
	if !ok || e != entry(3) {
		t.Fatalf("committed entry %v, want %v", e, entry(3))
	}
	bs := p.b.Status()
	if bs.Commits != 1 || bs.LastCommitN != 100 || bs.Held != 0 {
		t.Fatalf("standby status after commit %+v", bs)
	}
}

func TestInjectStrategyWritesAsItArrives(t *testing.T) {
	p := newPair(t, StrategyInject)
	for i := range 50 {
		p.ta.Set(entry(i))
	}
	p.activateA()
	eventually(t, "50 injected on the standby", func() bool { return p.tb.Len() == 50 })
	p.ta.Remove(entry(1).Key())
	up := entry(2)
	up.Mark = 99
	p.ta.Set(up)
	eventually(t, "delete and update injected", func() bool {
		e, _, _ := p.tb.Get(up.Key())
		return p.tb.Len() == 49 && e.Mark == 99
	})
	if err := p.b.Commit(p.ctx); err != nil {
		t.Fatal(err)
	}
	if st := p.b.Status(); st.LastCommitN != 0 {
		t.Fatalf("inject strategy committed %d entries, want 0 (already live)", st.LastCommitN)
	}
	// Active now: batches still arriving are held, not injected.
	applies := p.tb.Applies()
	p.ta.Set(entry(60))
	eventually(t, "held while active", func() bool { return p.b.Status().Held == 1 })
	if p.tb.Applies() != applies {
		t.Fatal("an active node injected the peer's connections")
	}
}

// The standby acknowledges and holds what arrives at once and writes it to
// its kernel InjectDelay later; a takeover before then writes what waits.
func TestInjectStrategyTakeoverWritesWhatWaits(t *testing.T) {
	p := newPair(t, StrategyInject, func(c *Config) { c.InjectDelay = time.Hour })
	for i := range 30 {
		p.ta.Set(entry(i))
	}
	// An older version of a connection in the standby's kernel (left from
	// a commit, say) that is gone on the active: its delete must not be
	// lost behind the create still waiting.
	p.tb.Set(entry(4))
	p.activateA()
	eventually(t, "30 held on the standby", func() bool { return p.b.Status().Held == 30 })
	p.ta.Remove(entry(4).Key())
	eventually(t, "29 held", func() bool { return p.b.Status().Held == 29 })
	if n, st := p.tb.Len(), p.b.Status(); n != 1 || st.Injecting != 30 {
		t.Fatalf("kernel holds %d, %d waiting; want 1 and 30", n, st.Injecting)
	}
	if err := p.b.Commit(p.ctx); err != nil {
		t.Fatal(err)
	}
	if !same(tableKeys(p.tb), tableKeys(p.ta)) {
		t.Fatalf("kernel after takeover:\n%v\nwant\n%v", tableKeys(p.tb), tableKeys(p.ta))
	}
	if st := p.b.Status(); st.LastCommitN != 30 || st.Injecting != 0 || p.tb.Applies() != 1 {
		t.Fatalf("takeover wrote %d in %d writes, %d still waiting; want 30 in one", st.LastCommitN, p.tb.Applies(), st.Injecting)
	}
}

func TestOpQueueMerges(t *testing.T) {
	e := func(i int, mark uint32) conntrack.Entry { x := entry(i); x.Mark = mark; return x }
	op := func(k conntrack.OpKind, x conntrack.Entry) conntrack.Op { return conntrack.Op{Kind: k, Entry: x} }
	q := newOpQueue()
	put := func(h *heldEntry, o conntrack.Op) { p := pack(&o.Entry); q.put(h, o.Kind, &p) }
	var h [6]heldEntry // the held entries of connections 1..5
	put(&h[1], op(conntrack.OpCreate, e(1, 1)))
	put(&h[1], op(conntrack.OpUpdate, e(1, 2))) // still to be created: a create
	put(&h[2], op(conntrack.OpUpdate, e(2, 1)))
	put(&h[2], op(conntrack.OpUpdate, e(2, 2))) // update of an update
	put(&h[3], op(conntrack.OpDelete, e(3, 1)))
	put(&h[3], op(conntrack.OpUpdate, e(3, 2))) // deleted, back again: a create
	put(&h[4], op(conntrack.OpCreate, e(4, 1)))
	put(&h[4], op(conntrack.OpDelete, e(4, 1)))  // created and deleted: the delete stays
	var again heldEntry                          // connection 4 back: a new held entry
	put(&again, op(conntrack.OpCreate, e(4, 2))) // after the delete
	if q.len() != 5 {
		t.Fatalf("len %d, want 5", q.len())
	}
	got := q.take()
	want := []conntrack.Op{op(conntrack.OpCreate, e(1, 2)), op(conntrack.OpUpdate, e(2, 2)), op(conntrack.OpCreate, e(3, 2)),
		op(conntrack.OpDelete, e(4, 1)), op(conntrack.OpCreate, e(4, 2))}
	if len(got) != len(want) {
		t.Fatalf("took %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("op %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if q.len() != 0 || len(q.take()) != 0 {
		t.Fatal("queue not empty after take")
	}
	// After a take, the slots are stale: a change is queued anew.
	put(&h[1], op(conntrack.OpUpdate, e(1, 3)))
	if got := q.take(); len(got) != 1 || got[0] != op(conntrack.OpUpdate, e(1, 3)) {
		t.Fatalf("after take: %v", got)
	}
}

func TestReconnectAndOverrunResync(t *testing.T) {
	p := newPair(t, StrategyCommit)
	for i := range 40 {
		p.ta.Set(entry(i))
	}
	p.activateA()
	eventually(t, "40 held", func() bool { return p.b.Status().Held == 40 })

	// Sync link lost: changes meanwhile are caught up by the resync.
	p.cut()
	eventually(t, "sender sees the link down", func() bool { return !p.a.Status().Connected })
	for i := range 10 {
		p.ta.Remove(entry(i).Key())
	}
	p.ta.Set(entry(200))
	p.heal()
	eventually(t, "resync after reconnect", func() bool { return same(heldKeys(p.b), tableKeys(p.ta)) })
	if st := p.a.Status(); st.ResyncsSent < 2 {
		t.Fatalf("resyncs sent %d, want >= 2", st.ResyncsSent)
	}

	// Lost events: a resync on the same stream.
	p.mu.Lock()
	w := p.watchers[len(p.watchers)-1]
	p.mu.Unlock()
	before := p.b.Status().ResyncsReceived
	w.Overrun()
	eventually(t, "resync after overrun", func() bool { return p.b.Status().ResyncsReceived > before })
	if st := p.a.Status(); st.Overruns != 1 {
		t.Fatalf("overruns %d", st.Overruns)
	}
	if !same(heldKeys(p.b), tableKeys(p.ta)) {
		t.Fatal("held state differs after overrun resync")
	}
}

func TestStandbyStopsSendingAndBadFrames(t *testing.T) {
	p := newPair(t, StrategyCommit)
	p.ta.Set(entry(1))
	p.activateA()
	eventually(t, "1 held", func() bool { return p.b.Status().Held == 1 })
	p.a.Release()
	p.a.RoleChanged(false)
	eventually(t, "sender stopped", func() bool { return !p.a.Status().Connected })
	p.ta.Set(entry(2))
	sent := p.a.Status().Sent
	p.ta.Set(entry(3))
	if p.a.Status().Sent != sent {
		t.Fatal("a standby sent changes")
	}

	// A garbage batch closes the stream and is counted.
	c, srv := memPair()
	done := make(chan struct{})
	go func() { p.b.Serve(p.ctx, srv); close(done) }()
	_ = c.Send(frameBatch, []byte{1, 2, 3})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return on a bad frame")
	}
	if st := p.b.Status(); st.DecodeErrors != 1 || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
}

func TestConfigCheck(t *testing.T) {
	var c Config
	c.SetDefaults()
	var got []string
	c.Check(func(k, m string) { got = append(got, k) })
	if len(got) != 0 {
		t.Fatalf("defaults invalid: %v", got)
	}
	c.Strategy = "magic"
	c.Protocols = []string{"tcp", "gre"}
	c.Include = []string{"10.0.0.0/33"}
	c.Marks = []string{"0x10/0xzz"}
	c.Zones = []int{70000}
	c.Window = 0
	c.Check(func(k, m string) { got = append(got, k) })
	want := "strategy protocols[1] include[0] marks[0] zones[0] window"
	if strings.Join(got, " ") != want {
		t.Fatalf("reported %v, want %s", got, want)
	}
}

func TestFilter(t *testing.T) {
	var c Config
	c.SetDefaults()
	c.Include = []string{"10.100.1.0/24"}
	c.Marks = []string{"0x1/0x1"}
	f, err := NewFilter(c, []netip.Prefix{netip.MustParsePrefix("10.100.1.11/32")})
	if err != nil {
		t.Fatal(err)
	}
	e := entry(5)
	e.Mark = 3
	if !f.Match(&e) {
		t.Fatal("matching entry refused")
	}
	e.Mark = 2
	if f.Match(&e) {
		t.Fatal("mark filter ignored")
	}
	e.Mark = 1
	e.Orig.Dst = netip.MustParseAddr("10.100.1.11")
	if f.Match(&e) {
		t.Fatal("excluded address synced")
	}
	e = entry(5)
	e.Mark = 1
	e.Proto = conntrack.ProtoICMP
	if f.Match(&e) {
		t.Fatal("protocol filter ignored")
	}
}

func actionTakeover() action.Takeover { return action.Takeover{Term: 2, Reason: "test"} }

// The IPv4 masks must agree with netip's prefix test, mapped addresses
// and IPv6 prefixes included.
func TestPackedEntryRoundTrips(t *testing.T) {
	for _, e := range []conntrack.Entry{entry(3), sampleBatch().Records[1].Entry} {
		e.ID = 0 // local to a kernel, not kept
		p := pack(&e)
		if got := p.entry(); got != e {
			t.Fatalf("packed and unpacked:\n%+v\nwant\n%+v", got, e)
		}
		moved := e
		moved.Reply.DstPort++
		q := pack(&moved)
		if p.sameShape(&q) || !p.sameShape(&p) {
			t.Fatal("sameShape ignores the reply tuple")
		}
		changed := e
		changed.Mark, changed.Timeout = 77, 1
		q = pack(&changed)
		if !p.sameShape(&q) {
			t.Fatal("sameShape looks at what can change in place")
		}
	}
}

func TestPrefixSetAgreesWithNetip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	addr4 := func() netip.Addr {
		// Few distinct high bytes, so that prefixes match often.
		return netip.AddrFrom4([4]byte{10, byte(rng.IntN(3)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	for range 200 {
		var set prefixSet
		var ps []netip.Prefix
		for range 1 + rng.IntN(4) {
			var p netip.Prefix
			if rng.IntN(5) == 0 {
				p = netip.PrefixFrom(netip.MustParseAddr("fd00::1"), rng.IntN(129)).Masked()
			} else {
				p = netip.PrefixFrom(addr4(), rng.IntN(33)).Masked()
			}
			set.add(p)
			ps = append(ps, p)
		}
		for range 50 {
			a := addr4()
			switch rng.IntN(4) {
			case 0:
				a = netip.AddrFrom16(a.As16()) // ::ffff:a
			case 1:
				a = netip.MustParseAddr("fd00::1")
			}
			want := false
			for _, p := range ps {
				want = want || p.Contains(a.Unmap())
			}
			if got := set.contains(a); got != want {
				t.Fatalf("%v in %v: got %v, want %v", a, ps, got, want)
			}
		}
	}
}

// The standby writes to its kernel once changes stop for InjectDelay, and
// no later than InjectMaxDelay after the round began.
func TestInjectDue(t *testing.T) {
	cfg := testConfig(StrategyInject)
	cfg.InjectDelay, cfg.InjectMaxDelay = 50*time.Millisecond, 200*time.Millisecond
	s, err := New(Options{Config: cfg, Peer: "peer", Table: conntrack.NewFake(),
		Watch: func() (Watcher, error) { return nil, errors.New("not here") },
		Dial:  func(context.Context) (Stream, error) { return nil, errors.New("not here") }})
	if err != nil {
		t.Fatal(err)
	}
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return first.Add(time.Duration(ms) * time.Millisecond) }
	for _, c := range []struct {
		now, last int
		due       bool
	}{
		{50, 0, true},   // quiet for the delay
		{49, 0, false},  // not yet
		{60, 30, false}, // a change 30ms ago: still coming
		{180, 150, false},
		{200, 180, true}, // changes kept coming: the maximum delay
		{230, 229, true},
	} {
		if got := s.injectDue(at(c.now), first, at(c.last)); got != c.due {
			t.Errorf("at %dms, last change at %dms: due %v, want %v", c.now, c.last, got, c.due)
		}
	}
}

// A takeover during a long background write waits for one chunk at most:
// the injector hands the rest back and the commit writes it.
func TestTakeoverInterruptsInjection(t *testing.T) {
	tb := conntrack.NewFake()
	s, err := New(Options{Config: testConfig(StrategyInject), Peer: "peer", Table: tb,
		Watch: func() (Watcher, error) { return nil, errors.New("not here") },
		Dial:  func(context.Context) (Stream, error) { return nil, errors.New("not here") }})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3*injectChunk + 5
	bt := Batch{Seq: 1}
	for i := range n {
		e := entry(i)
		e.Orig.SrcPort, e.Reply.DstPort = uint16(i), uint16(i) // distinct connections
		bt.Records = append(bt.Records, Record{Entry: e})
	}
	s.apply(&bt)

	started, release := make(chan int, 4), make(chan struct{})
	tb.BeforeApply = func(ops int) {
		started <- ops
		<-release
	}
	injected := make(chan struct{})
	go func() { defer close(injected); s.inject(context.Background()) }()
	if ops := <-started; ops != injectChunk {
		t.Fatalf("the injector wrote %d at once, want a chunk of %d", ops, injectChunk)
	}
	committed := make(chan error, 1)
	go func() { committed <- s.Commit(context.Background()) }()
	eventually(t, "the takeover to begin", func() bool { return s.active.Load() })
	close(release) // the chunk in flight completes
	<-injected
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if tb.Len() != n {
		t.Fatalf("kernel holds %d, want %d", tb.Len(), n)
	}
	if st := s.Status(); tb.Applies() != 2 || st.LastCommitN != n-injectChunk || st.Injecting != 0 {
		t.Fatalf("%d writes, the commit wrote %d, %d waiting; want 2 writes, %d by the commit, none waiting",
			tb.Applies(), st.LastCommitN, st.Injecting, n-injectChunk)
	}
}
