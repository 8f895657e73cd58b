package bgp

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	speaker "github.com/batonha/baton/internal/provider/bgp"
	"github.com/batonha/baton/internal/role"
)

func testConfig(mode string) Config {
	var c Config
	c.SetDefaults()
	c.Mode = mode
	c.ASN = 65001
	c.RouterID = "10.1.2.5"
	c.Prefixes = []string{"0.0.0.0/0", "10.0.0.0/8"}
	p := Peer{Address: "10.1.1.4", ASN: 65515}
	p.SetDefaults()
	c.Peers = []Peer{p}
	return c
}

func healthy(state role.State) role.Snapshot {
	return role.Snapshot{State: state, Health: role.Health{Known: true, Healthy: true}}
}

func TestDecide(t *testing.T) {
	sick := healthy(role.Fault)
	sick.Health = role.Health{Known: true, Healthy: false, Failing: []string{"fw"}}
	pending := healthy(role.Init)
	pending.Health = role.Health{}
	maint := healthy(role.Maintenance)
	maint.Maintenance = true
	for _, tc := range []struct {
		name     string
		mode     string
		standby  string
		snap     *role.Snapshot
		active   bool
		stopping bool
		announce bool
		prepend  int
	}{
		{name: "aa no snapshot yet", mode: ModeActiveActive},
		{name: "aa healthy standby announces", mode: ModeActiveActive, snap: ptr(healthy(role.Standby)), announce: true},
		{name: "aa healthy active announces", mode: ModeActiveActive, snap: ptr(healthy(role.Active)), announce: true},
		{name: "aa check failing withdraws", mode: ModeActiveActive, snap: &sick},
		{name: "aa checks pending", mode: ModeActiveActive, snap: &pending},
		{name: "aa maintenance", mode: ModeActiveActive, snap: &maint},
		{name: "aa stopping", mode: ModeActiveActive, snap: ptr(healthy(role.Active)), stopping: true},
		{name: "as active", mode: ModeActiveStandby, snap: ptr(healthy(role.Active)), active: true, announce: true},
		{name: "as standby prepends", mode: ModeActiveStandby, standby: StandbyPrepend, snap: ptr(healthy(role.Standby)), announce: true, prepend: 3},
		{name: "as standby withdraws", mode: ModeActiveStandby, standby: StandbyWithdraw, snap: ptr(healthy(role.Standby))},
		{name: "as init not announced", mode: ModeActiveStandby, snap: ptr(healthy(role.Init))},
		{name: "as active but check failing", mode: ModeActiveStandby, snap: &sick, active: true},
		{name: "as active in maintenance", mode: ModeActiveStandby, snap: &maint, active: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.mode)
			if tc.standby != "" {
				cfg.Standby = tc.standby
			}
			b := New(cfg, NewFake(), clock.NewFake(time.Unix(0, 0)), nil)
			if tc.snap != nil {
				b.snap, b.haveSnap = *tc.snap, true
			}
			b.active, b.stopping = tc.active, tc.stopping
			d := b.decide()
			if d.Announce != tc.announce || d.Prepend != tc.prepend {
				t.Fatalf("decide() = %+v, want announce=%v prepend=%d", d, tc.announce, tc.prepend)
			}
			if d.Reason == "" {
				t.Error("decision without a reason")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// harness runs a BGP over a fake speaker.
type harness struct {
	t    *testing.T
	b    *BGP
	f    *Fake
	clk  *clock.Fake
	stop context.CancelFunc
	done chan error
}

func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	f := NewFake()
	clk := clock.NewFake(time.Unix(1000, 0))
	b := New(cfg, f, clk, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, b: b, f: f, clk: clk, stop: cancel, done: make(chan error, 1)}
	go func() { h.done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-h.done
	})
	return h
}

// until polls the fake speaker (the Run goroutine applies changes) with a
// deadline.
func (h *harness) until(what string, cond func([]speaker.Route) bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond(h.f.Announced()) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	h.t.Fatalf("timed out waiting for %s; announced %v", what, h.f.Announced())
}

func announcing(prepend int) func([]speaker.Route) bool {
	return func(r []speaker.Route) bool {
		if len(r) != 2 {
			return false
		}
		for _, x := range r {
			if x.Prepend != prepend {
				return false
			}
		}
		return r[0].Prefix == netip.MustParsePrefix("0.0.0.0/0") && r[1].Prefix == netip.MustParsePrefix("10.0.0.0/8")
	}
}

func withdrawn(r []speaker.Route) bool { return len(r) == 0 }

func TestActiveActiveFollowsHealthAndShutdownWithdraws(t *testing.T) {
	h := start(t, testConfig(ModeActiveActive))
	h.b.RoleChanged(healthy(role.Standby))
	h.until("announced while healthy", announcing(0))

	sick := healthy(role.Fault)
	sick.Health.Healthy = false
	h.b.RoleChanged(sick)
	h.until("withdrawn on a failed check", withdrawn)

	h.b.RoleChanged(healthy(role.Active))
	h.until("announced again", announcing(0))
	st := h.b.Status()
	if !st.Announcing || st.Reason != "healthy" || len(st.Announced) != 2 {
		t.Fatalf("status = %+v", st)
	}

	m := healthy(role.Maintenance)
	m.Maintenance = true
	h.b.RoleChanged(m)
	h.until("withdrawn in maintenance", withdrawn)
	h.b.RoleChanged(healthy(role.Standby))
	h.until("announced after maintenance", announcing(0))

	h.stop()
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
	h.done <- nil // for the cleanup
	if !h.f.Stopped() || len(h.f.Announced()) != 0 {
		t.Fatalf("after shutdown: stopped=%v announced=%v", h.f.Stopped(), h.f.Announced())
	}
}

func TestActiveStandbyPipeline(t *testing.T) {
	h := start(t, testConfig(ModeActiveStandby))
	ctx := context.Background()
	h.b.RoleChanged(healthy(role.Standby))
	h.until("standby prepends", announcing(3))

	if err := h.b.Activate(ctx, action.Takeover{Term: 2, Reason: "peer-dead"}); err != nil {
		t.Fatal(err)
	}
	// Activate applies synchronously: the pipeline's timing is real.
	if !announcing(0)(h.f.Announced()) {
		t.Fatalf("after Activate: %v", h.f.Announced())
	}
	h.b.RoleChanged(healthy(role.Active))
	if err := h.b.Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !announcing(0)(h.f.Announced()) {
		t.Fatalf("after Verify: %v", h.f.Announced())
	}

	if err := h.b.Deactivate(ctx, action.Takeover{Term: 3, Reason: "switchover"}); err != nil {
		t.Fatal(err)
	}
	h.b.RoleChanged(healthy(role.Standby))
	h.until("standby prepends again", announcing(3))

	if err := h.b.Deactivate(ctx, action.Takeover{Term: 3, Reason: "shutdown"}); err != nil {
		t.Fatal(err)
	}
	if !withdrawn(h.f.Announced()) {
		t.Fatalf("after shutdown Deactivate: %v", h.f.Announced())
	}
}

func TestRetriesFailedSet(t *testing.T) {
	h := start(t, testConfig(ModeActiveActive))
	waitCond(t, "first apply", func() bool { return h.f.Sets() >= 1 })
	h.f.FailSets(1)
	h.b.RoleChanged(healthy(role.Standby))
	// The failed apply records the error, then arms the retry timer.
	waitCond(t, "failed apply and armed retry", func() bool {
		return h.b.Status().LastError != "" && h.clk.Pending() == 1
	})
	if len(h.f.Announced()) != 0 {
		t.Fatalf("announced despite the failure: %v", h.f.Announced())
	}
	if got := h.b.Status().LastError; !strings.Contains(got, "injected") {
		t.Fatalf("LastError = %q", got)
	}
	h.clk.Advance(retryEvery)
	h.until("announced on retry", announcing(0))
	if got := h.b.Status().LastError; got != "" {
		t.Fatalf("LastError after retry = %q", got)
	}
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCollector(t *testing.T) {
	f := NewFake()
	f.SetPeers([]speaker.PeerStatus{{Address: "10.1.1.4", Established: true, Advertised: 2}})
	b := New(testConfig(ModeActiveActive), f, nil, nil)
	b.started = true
	_ = f.Start(context.Background())
	_ = f.Set(context.Background(), []speaker.Route{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}})
	if n := testutil.CollectAndCount(b.Collector()); n != 2+5 {
		t.Fatalf("collected %d metrics, want 7", n)
	}
	want := `
# HELP baton_bgp_session_established 1 while the BGP session to the peer is established.
# TYPE baton_bgp_session_established gauge
baton_bgp_session_established{peer="10.1.1.4"} 1
`
	if err := testutil.CollectAndCompare(b.Collector(), strings.NewReader(want), "baton_bgp_session_established"); err != nil {
		t.Fatal(err)
	}
}
