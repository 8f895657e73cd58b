package daemon

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/heartbeat"
	"github.com/batonha/baton/internal/linkwatch"
	"github.com/batonha/baton/internal/role"
	"github.com/batonha/baton/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata")

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakePeer stands in for the heartbeat monitor: the test hands the
// daemon heartbeat events and reads what it advertises.
type fakePeer struct {
	events chan heartbeat.Event // unbuffered: a send returns once the loop took it

	mu        sync.Mutex
	local     heartbeat.Local
	lastHeard time.Time // the last message, as Status reports it
}

func (f *fakePeer) Run(ctx context.Context) error  { <-ctx.Done(); return nil }
func (f *fakePeer) Events() <-chan heartbeat.Event { return f.events }
func (f *fakePeer) SendNow()                       {}
func (f *fakePeer) Status() heartbeat.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return heartbeat.Status{LastHeard: f.lastHeard}
}
func (f *fakePeer) Acked() time.Time            { return time.Time{} }
func (f *fakePeer) SetLocal(l heartbeat.Local)  { f.mu.Lock(); f.local = l; f.mu.Unlock() }
func (f *fakePeer) advertised() heartbeat.Local { f.mu.Lock(); defer f.mu.Unlock(); return f.local }

// harness runs one daemon node "a" against a fake peer "b", a fake
// interface source and one fake action, on a fake clock, and writes a
// transcript of what it was told and what it did.
type harness struct {
	t     *testing.T
	dir   string
	clk   *clock.Fake
	links *linkwatch.Fake
	d     *Daemon
	peer  *fakePeer
	act   *action.Fake
	calls int
	seen  int // transitions already written
	// reasserts: the counts already written
	reasserts map[string]uint64
	out       *strings.Builder
	earlier   int // transitions in the history when this run started

	cancel context.CancelFunc
	done   chan error
}

const testConfig = `node:
  name: a
  priority: 150
  preempt: %v
  state_dir: %s
  track_interfaces: [eth9]
heartbeat:
  interval: 100ms
  misses: 3
  listen: 127.0.0.1:0
  key_file: %s
peer:
  name: b
  paths: [{name: hb, address: "127.0.0.1:9"}]
probe:
  mode: "off"
metrics:
  listen: "off"
api:
  socket: %s
`

// newHarness starts node a on dir (a fresh one when empty); out collects
// the transcript across restarts.
func newHarness(t *testing.T, dir string, preempt bool, out *strings.Builder, clk *clock.Fake) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	key := filepath.Join(dir, "hb.key")
	if err := os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(testConfig, preempt, dir, key, filepath.Join(dir, "api.sock"))
	cfg, err := config.Parse([]byte(yaml), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	links := linkwatch.NewFake("eth9", "lo")
	d, err := New(Options{Config: cfg, Logger: slog.New(slog.DiscardHandler), Clock: clk, Links: links, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir, clk: clk, links: links, d: d, out: out,
		peer: &fakePeer{events: make(chan heartbeat.Event)}, act: action.NewFake("fake"), reasserts: map[string]uint64{}}
	d.hb = h.peer
	d.pipeline = action.NewPipeline([]action.Step{{Action: h.act, Timeout: time.Second}}, 0, clk, slog.New(slog.DiscardHandler), nil)
	// The transitions of an earlier run on dir are history (kept on disk).
	h.earlier = len(d.Status().Transitions)
	h.seen = h.earlier
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- d.Run(ctx) }()
	select {
	case <-links.Watching():
	case err := <-h.done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not start watching its interfaces")
	}
	h.sync() // the loop runs and has armed its timer
	h.note("start", fmt.Sprintf("epoch %d", h.epoch()))
	return h
}

func (h *harness) epoch() uint64 {
	st, _, err := mustStore(h.t, h.dir).Load()
	if err != nil {
		h.t.Fatal(err)
	}
	return st.Epoch
}

func mustStore(t *testing.T, dir string) *store.Store {
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stop ends Run (the node steps down and tells the peer).
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Fatalf("Run: %v", err)
	}
	h.note("stop", "")
}

// sync waits until the loop has handled everything sent so far (the
// events channel is unbuffered and the loop handles one at a time: once
// a no-op event is taken, the one before it is done, and once a second is
// taken, the first is done and the timer re-armed), then until the
// actions have settled.
func (h *harness) sync() {
	h.t.Helper()
	for range 2 {
		h.peer.events <- heartbeat.Event{Kind: heartbeat.EventPathUp, Path: "sync"}
	}
	if len(h.d.Status().Transitions) == h.earlier {
		return // nothing was asked of the actions yet
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.d.pipeline.WaitSettled(ctx); err != nil {
		h.t.Fatalf("actions did not settle: %v", err)
	}
}

func (h *harness) send(what string, ev heartbeat.Event) {
	h.t.Helper()
	ev.At = h.clk.Now()
	h.peer.events <- ev
	h.note(what, "")
}

func peerInfo(st role.State, term uint64) role.PeerInfo {
	return role.PeerInfo{Name: "b", State: st, Term: term, Priority: 100, Healthy: true}
}

func (h *harness) message(p role.PeerInfo) {
	h.t.Helper()
	h.send(fmt.Sprintf("peer says %s term %d", p.State, p.Term), heartbeat.Event{Kind: heartbeat.EventMessage, Info: p})
}

func (h *harness) alive(p role.PeerInfo) {
	h.t.Helper()
	h.send(fmt.Sprintf("peer alive, says %s term %d", p.State, p.Term), heartbeat.Event{Kind: heartbeat.EventPeerAlive, Info: p})
}

func (h *harness) dead(gone bool) {
	h.t.Helper()
	h.send(fmt.Sprintf("peer dead (gone %v)", gone), heartbeat.Event{Kind: heartbeat.EventPeerDead, Gone: gone})
}

func (h *harness) link(name string, up bool) {
	h.t.Helper()
	h.links.Set(name, up)
	// The update goes through linkwatch.Watch and linkCh: wait until the
	// machine has it before writing down what happened.
	deadline := time.Now().Add(10 * time.Second)
	for slices.Contains(h.d.Status().LinksDown, name) != !up {
		if time.Now().After(deadline) {
			h.t.Fatalf("the daemon did not see %s up=%v", name, up)
		}
		time.Sleep(time.Millisecond)
	}
	h.note(fmt.Sprintf("interface %s up=%v", name, up), "")
}

func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clk.Advance(d)
	// A deadline that passed is in the loop's timer channel: once the
	// loop has taken it, sync's barrier follows its handling.
	deadline := time.Now().Add(10 * time.Second)
	for len(h.d.timer.C()) > 0 {
		if time.Now().After(deadline) {
			h.t.Fatal("the loop did not take its timer")
		}
		time.Sleep(time.Millisecond)
	}
	h.note(fmt.Sprintf("%v pass", d), "")
}

// note syncs, then writes what was done and what followed: transitions,
// the action's calls, re-assertions and what the node advertises.
func (h *harness) note(what, extra string) {
	h.t.Helper()
	if what != "start" && what != "stop" {
		h.sync()
	}
	fmt.Fprintf(h.out, "+%-6v %s", h.clk.Now().Sub(t0), what)
	if extra != "" {
		fmt.Fprintf(h.out, " (%s)", extra)
	}
	fmt.Fprintln(h.out)
	st := h.d.Status()
	for _, tr := range st.Transitions[min(h.seen, len(st.Transitions)):] {
		fmt.Fprintf(h.out, "        %s -> %s %s term %d\n", tr.From, tr.To, tr.Reason, tr.Term)
	}
	h.seen = len(st.Transitions)
	calls := h.act.Calls()
	for _, c := range calls[h.calls:] {
		fmt.Fprintf(h.out, "        action: %s\n", c)
	}
	h.calls = len(calls)
	if r := st.LastReassertion; r != nil && st.Reassertions[r.Cause] != h.reasserts[r.Cause] {
		h.reasserts[r.Cause] = st.Reassertions[r.Cause]
		fmt.Fprintf(h.out, "        reassert: %s term %d (total %d)\n", r.Cause, r.Term, st.Reassertions[r.Cause])
	}
	if what == "stop" {
		return
	}
	adv := h.peer.advertised()
	fmt.Fprintf(h.out, "        advertises %s term %d healthy=%v maintenance=%v handover=%v", adv.State, adv.Term, adv.Healthy, adv.Maintenance, adv.Handover)
	if len(st.LinksDown)+len(st.LinksRising) > 0 {
		fmt.Fprintf(h.out, " links_down=%v rising=%v", st.LinksDown, st.LinksRising)
	}
	fmt.Fprintln(h.out)
}

// golden compares the transcript with testdata/NAME.golden.
func golden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if string(want) != got {
		t.Errorf("transcript differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func fresh(t *testing.T, preempt bool) (*harness, *strings.Builder) {
	var out strings.Builder
	h := newHarness(t, "", preempt, &out, clock.NewFake(t0))
	t.Cleanup(func() {
		select {
		case <-h.done:
		default:
			h.cancel()
			<-h.done
		}
	})
	return h, &out
}

// activeAlone brings the node to ACTIVE with nobody heard.
func activeAlone(h *harness) {
	h.advance(300 * time.Millisecond)
}

func TestPartitionHealThisNodeLoses(t *testing.T) {
	h, out := fresh(t, false)
	activeAlone(h)
	// Cut off: the peer takes over meanwhile with a higher term; on the
	// heal this node hears it and steps down.
	h.alive(peerInfo(role.Active, 2))
	golden(t, "heal_loser", out.String())
}

// The takeover's detection time is measured from when the peer fell
// silent (its last heartbeat), or from its channel's close when it is
// gone, and kept with the transition.
func TestTakeoverRecordsTheTimeFromDetection(t *testing.T) {
	h, _ := fresh(t, false)
	h.alive(peerInfo(role.Active, 4))
	h.peer.mu.Lock()
	h.peer.lastHeard = h.clk.Now()
	h.peer.mu.Unlock()
	h.advance(300 * time.Millisecond)
	h.dead(false)
	trs := h.d.Status().Transitions
	last := trs[len(trs)-1]
	if last.To != "ACTIVE" || last.Reason != string(role.ReasonPeerLost) || last.DetectedMs != 300 {
		t.Fatalf("takeover after a silence: %+v", last)
	}
	h.alive(peerInfo(role.Active, 6))
	h.peer.mu.Lock()
	h.peer.lastHeard = h.clk.Now()
	h.peer.mu.Unlock()
	h.advance(200 * time.Millisecond)
	h.dead(true) // the channel closed now: detected now
	trs = h.d.Status().Transitions
	last = trs[len(trs)-1]
	if last.To != "ACTIVE" || last.Reason != string(role.ReasonPeerGone) || last.DetectedMs != 0 {
		t.Fatalf("takeover after the peer's channel closed: %+v", last)
	}
}

func TestPartitionHealThisNodeWins(t *testing.T) {
	h, out := fresh(t, false)
	h.alive(peerInfo(role.Active, 4))
	h.dead(false)
	// The heal: the peer, active on its side with a lower term, is heard
	// again; this node re-asserts at once, and once more when it hears
	// the peer active, which then steps down.
	h.alive(peerInfo(role.Active, 4))
	h.message(peerInfo(role.Standby, 5))
	golden(t, "heal_winner", out.String())
}

func TestLinkFlap(t *testing.T) {
	h, out := fresh(t, false)
	activeAlone(h)
	h.link("eth9", false)
	h.link("eth9", true)
	h.advance(50 * time.Millisecond)
	h.link("eth9", false) // down again before the rise: stays in FAULT
	h.link("eth9", true)
	h.advance(100 * time.Millisecond) // risen: STANDBY, listening for the peer
	h.advance(300 * time.Millisecond) // nobody heard: takes the role
	golden(t, "link_flap", out.String())
}

func TestRestartMidTakeover(t *testing.T) {
	var out strings.Builder
	clk := clock.NewFake(t0)
	h := newHarness(t, "", false, &out, clk)
	h.alive(peerInfo(role.Active, 4))
	release := h.act.Block() // the takeover hangs in its action
	h.peer.events <- heartbeat.Event{Kind: heartbeat.EventPeerDead, At: clk.Now()}
	h.peer.events <- heartbeat.Event{Kind: heartbeat.EventPathUp, Path: "sync"}
	fmt.Fprintf(&out, "+%-6v peer dead, the takeover's action hangs\n", clk.Now().Sub(t0))
	release()
	h.stop()
	// The next run takes over above the term the last one reached.
	h2 := newHarness(t, h.dir, false, &out, clk)
	h2.advance(300 * time.Millisecond)
	h2.stop()
	golden(t, "restart_mid_takeover", out.String())
}

func TestSwitchover(t *testing.T) {
	h, out := fresh(t, false)
	activeAlone(h)
	h.message(peerInfo(role.Standby, 1))
	done := make(chan error, 1)
	go func() { done <- h.d.Switchover(context.Background()) }()
	for !h.peer.advertised().Handover {
		time.Sleep(time.Millisecond)
	}
	fmt.Fprintln(out, "        switchover asked: advertises handover")
	p := peerInfo(role.Active, 2)
	h.message(p)
	if err := <-done; err != nil {
		t.Fatalf("Switchover: %v", err)
	}
	golden(t, "switchover", out.String())
}

func TestMaintenanceAcrossRestart(t *testing.T) {
	var out strings.Builder
	clk := clock.NewFake(t0)
	h := newHarness(t, "", false, &out, clk)
	h.advance(300 * time.Millisecond)
	if err := h.d.Maintenance(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	h.note("maintenance on", "")
	h.stop()
	h2 := newHarness(t, h.dir, false, &out, clk)
	h2.note("restarted", "")
	h2.advance(time.Second)
	if err := h2.d.Maintenance(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	h2.note("maintenance off", "")
	h2.stop()
	golden(t, "maintenance_restart", out.String())
}

// A peer that answers a check but sends no heartbeat is alive with no
// known state: the node waits in STANDBY (peer_state_unknown) rather
// than electing itself against a phantom INIT peer of priority 0.
func TestPeerSeenOnlyThroughChecks(t *testing.T) {
	h, out := fresh(t, false)
	h.send("peer check passes", heartbeat.Event{Kind: heartbeat.EventPeerAlive, Path: "web"})
	h.advance(300 * time.Millisecond)
	if st := h.d.Status(); st.Role != "STANDBY" || st.Reason != string(role.ReasonPeerStateUnknown) {
		t.Fatalf("role %s (%s), want STANDBY (peer_state_unknown)", st.Role, st.Reason)
	}
	golden(t, "peer_state_unknown", out.String())
}
