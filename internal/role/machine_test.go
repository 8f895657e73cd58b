package role

import (
	"errors"
	"math/rand"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func cfg(name string, prio int, preempt bool) Config {
	return Config{Node: name, Priority: prio, Preempt: preempt, InitHold: 300 * time.Millisecond, HandoverTimeout: time.Second}
}

func peer(name string, st State, term uint64, prio int) PeerInfo {
	return PeerInfo{Name: name, State: st, Term: term, Priority: prio, Healthy: st != Fault}
}

func last(t *testing.T, trs []Transition) Transition {
	t.Helper()
	if len(trs) == 0 {
		t.Fatalf("no transition")
	}
	return trs[len(trs)-1]
}

// setup brings a machine to the given state via the real rules.
func setup(t *testing.T, c Config, st State) *Machine {
	t.Helper()
	m := New(c, t0, 4)
	switch st {
	case Init:
	case Standby:
		m.PeerMessage(t0, peer("b", Active, 4, 100))
	case Active:
		m.PeerDead(t0, false)
		m.Tick(t0.Add(c.InitHold))
	case Fault:
		m.SetHealth(t0, Health{Known: true, Healthy: false, Failing: []string{"x"}})
	case Maintenance:
		m.SetMaintenance(t0, true)
	}
	if m.State() != st {
		t.Fatalf("setup: state %s, want %s", m.State(), st)
	}
	return m
}

func TestTransitions(t *testing.T) {
	later := t0.Add(time.Second)
	cases := []struct {
		name   string
		from   State
		cfg    Config
		event  func(m *Machine) []Transition
		to     State
		reason Reason
	}{
		{"init hears active peer", Init, cfg("a", 150, true),
			func(m *Machine) []Transition { return m.PeerMessage(t0, peer("b", Active, 3, 100)) }, Standby, ReasonPeerActive},
		{"init outranks starting peer", Init, cfg("a", 150, false),
			func(m *Machine) []Transition { return m.PeerMessage(t0, peer("b", Init, 0, 100)) }, Active, ReasonElected},
		{"init ranks below starting peer", Init, cfg("a", 50, false),
			func(m *Machine) []Transition { return m.PeerMessage(t0, peer("b", Init, 0, 100)) }, Standby, ReasonPeerElected},
		{"init equal priority, name decides", Init, cfg("a", 100, false),
			func(m *Machine) []Transition { return m.PeerMessage(t0, peer("b", Standby, 0, 100)) }, Active, ReasonElected},
		{"init peer in fault", Init, cfg("a", 50, false),
			func(m *Machine) []Transition { return m.PeerMessage(t0, peer("b", Fault, 0, 100)) }, Active, ReasonPeerUnavailable},
		{"init peer in maintenance", Init, cfg("a", 50, false),
			func(m *Machine) []Transition { return m.PeerMessage(t0, peer("b", Maintenance, 0, 100)) }, Active, ReasonPeerUnavailable},
		{"init hold expires alone", Init, cfg("a", 50, false),
			func(m *Machine) []Transition { return m.Tick(t0.Add(300 * time.Millisecond)) }, Active, ReasonPeerNeverHeard},
		{"init peer answers checks only", Init, cfg("a", 50, false),
			func(m *Machine) []Transition {
				m.PeerAliveNoState(t0)
				return m.Tick(t0.Add(300 * time.Millisecond))
			}, Standby, ReasonPeerStateUnknown},
		{"init check fails", Init, cfg("a", 150, false),
			func(m *Machine) []Transition { return m.SetHealth(t0, Health{Known: true, Failing: []string{"nft"}}) }, Fault, ReasonCheckFailed},
		{"standby peer lost", Standby, cfg("a", 50, false),
			func(m *Machine) []Transition { return m.PeerDead(later, false) }, Active, ReasonPeerLost},
		{"standby peer gone", Standby, cfg("a", 50, false),
			func(m *Machine) []Transition { return m.PeerDead(later, true) }, Active, ReasonPeerGone},
		{"standby peer faults", Standby, cfg("a", 50, false),
			func(m *Machine) []Transition { return m.PeerMessage(later, peer("b", Fault, 4, 100)) }, Active, ReasonPeerUnavailable},
		{"standby peer hands over", Standby, cfg("a", 50, false),
			func(m *Machine) []Transition {
				p := peer("b", Active, 4, 100)
				p.Handover = true
				return m.PeerMessage(later, p)
			}, Active, ReasonSwitchover},
		{"standby preempts preferred", Standby, cfg("a", 150, true),
			func(m *Machine) []Transition { return m.Tick(later) }, Active, ReasonPreempt},
		{"standby check fails", Standby, cfg("a", 50, false),
			func(m *Machine) []Transition { return m.SetHealth(later, Health{Known: true}) }, Fault, ReasonCheckFailed},
		{"standby maintenance", Standby, cfg("a", 50, false),
			func(m *Machine) []Transition { return m.SetMaintenance(later, true) }, Maintenance, ReasonMaintenanceOn},
		{"active hears higher term", Active, cfg("a", 150, false),
			func(m *Machine) []Transition { return m.PeerMessage(later, peer("b", Active, 9, 100)) }, Standby, ReasonPeerTookOver},
		{"active equal term, peer ranks first", Active, cfg("b", 100, false),
			func(m *Machine) []Transition { return m.PeerMessage(later, peer("a", Active, 5, 100)) }, Standby, ReasonDualActive},
		{"active check fails", Active, cfg("a", 150, false),
			func(m *Machine) []Transition { return m.SetHealth(later, Health{Known: true}) }, Fault, ReasonCheckFailed},
		{"active maintenance with no peer", Active, cfg("a", 150, false),
			func(m *Machine) []Transition { return m.SetMaintenance(later, true) }, Maintenance, ReasonMaintenanceOn},
		{"fault recovers, peer active", Fault, cfg("a", 150, false),
			func(m *Machine) []Transition {
				m.PeerMessage(t0, peer("b", Active, 4, 100))
				return m.SetHealth(later, Health{Known: true, Healthy: true})
			}, Standby, ReasonCheckRecovered},
		{"fault recovers, peer dead", Fault, cfg("a", 150, false),
			func(m *Machine) []Transition {
				m.PeerDead(t0, false)
				return m.SetHealth(later, Health{Known: true, Healthy: true})
			}, Active, ReasonPeerLost},
		{"maintenance off, peer active", Maintenance, cfg("a", 150, false),
			func(m *Machine) []Transition {
				m.PeerMessage(t0, peer("b", Active, 4, 100))
				return m.SetMaintenance(later, false)
			}, Standby, ReasonMaintenanceOff},
		{"maintenance never takes over", Maintenance, cfg("a", 150, true),
			func(m *Machine) []Transition { return m.PeerDead(later, true) }, Maintenance, ReasonMaintenanceOn},
		{"fault never takes over", Fault, cfg("a", 150, true),
			func(m *Machine) []Transition { return m.PeerDead(later, true) }, Fault, ReasonCheckFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := setup(t, tc.cfg, tc.from)
			termBefore := m.Term()
			trs := tc.event(m)
			if m.State() != tc.to {
				t.Fatalf("state %s, want %s (transitions %+v)", m.State(), tc.to, trs)
			}
			if tc.to != tc.from {
				tr := last(t, trs)
				if tr.Reason != tc.reason {
					t.Fatalf("reason %s, want %s", tr.Reason, tc.reason)
				}
				if tr.To == Active && tr.Term <= termBefore {
					t.Fatalf("takeover term %d did not grow from %d", tr.Term, termBefore)
				}
			} else if m.Snapshot().Reason != tc.reason {
				t.Fatalf("reason %s, want %s", m.Snapshot().Reason, tc.reason)
			}
		})
	}
}

func TestTakeoverTermExceedsPeer(t *testing.T) {
	m := New(cfg("a", 150, false), t0, 2)
	m.PeerMessage(t0, peer("b", Active, 17, 100))
	trs := m.PeerDead(t0.Add(time.Second), false)
	if tr := last(t, trs); tr.To != Active || tr.Term != 18 {
		t.Fatalf("got %+v, want ACTIVE at term 18", tr)
	}
}

func TestPreemptDelay(t *testing.T) {
	c := cfg("a", 150, true)
	c.PreemptDelay = 5 * time.Second
	m := New(c, t0, 0)
	m.PeerMessage(t0, peer("b", Active, 3, 100))
	if m.State() != Standby {
		t.Fatalf("state %s", m.State())
	}
	next, ok := m.Next()
	if !ok || !next.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("next %v %v, want preempt deadline", next, ok)
	}
	if trs := m.Tick(t0.Add(4 * time.Second)); len(trs) != 0 {
		t.Fatalf("preempted early: %+v", trs)
	}
	// The peer fails a check meanwhile: preemption is moot, and the timer resets.
	m.PeerMessage(t0.Add(4*time.Second), peer("b", Active, 3, 100))
	trs := m.Tick(t0.Add(5 * time.Second))
	if tr := last(t, trs); tr.To != Active || tr.Reason != ReasonPreempt {
		t.Fatalf("got %+v", tr)
	}
}

func TestNoPreemptStaysStandby(t *testing.T) {
	m := New(cfg("a", 150, false), t0, 0)
	m.PeerMessage(t0, peer("b", Active, 3, 100))
	if trs := m.Tick(t0.Add(time.Hour)); len(trs) != 0 || m.State() != Standby {
		t.Fatalf("without preempt the preferred node must stay standby: %+v", trs)
	}
}

func TestSwitchoverFromActive(t *testing.T) {
	a := setup(t, cfg("a", 150, true), Active)
	if _, err := a.Switchover(t0); !errors.Is(err, ErrRefused) {
		t.Fatalf("switchover without a peer: %v", err)
	}
	a.PeerMessage(t0, peer("b", Standby, a.Term(), 100))
	if _, err := a.Switchover(t0); err != nil {
		t.Fatal(err)
	}
	if a.State() != Active || !a.Advert().Handover {
		t.Fatalf("the active must stay active and ask for handover: %+v", a.Snapshot())
	}
	// The peer becomes active with a higher term: now a steps down.
	tr := last(t, a.PeerMessage(t0.Add(time.Millisecond), peer("b", Active, a.Term()+1, 100)))
	if tr.To != Standby || tr.Reason != ReasonSwitchover {
		t.Fatalf("got %+v", tr)
	}
	// The preferred node does not preempt the role straight back.
	if trs := a.Tick(t0.Add(time.Hour)); len(trs) != 0 {
		t.Fatalf("preempted after switchover: %+v", trs)
	}
}

func TestSwitchoverRefusedToUnhealthyPeer(t *testing.T) {
	a := setup(t, cfg("a", 150, false), Active)
	a.PeerMessage(t0, peer("b", Fault, 0, 100))
	if _, err := a.Switchover(t0); !errors.Is(err, ErrRefused) {
		t.Fatalf("got %v", err)
	}
}

func TestSwitchoverTimesOut(t *testing.T) {
	a := setup(t, cfg("a", 150, false), Active)
	a.PeerMessage(t0, peer("b", Standby, 0, 100))
	if _, err := a.Switchover(t0); err != nil {
		t.Fatal(err)
	}
	a.Tick(t0.Add(2 * time.Second))
	if a.State() != Active || a.Advert().Handover || a.Snapshot().LastError == "" {
		t.Fatalf("timed out switchover must leave the node active and say so: %+v", a.Snapshot())
	}
}

func TestMaintenanceHandsOverFirst(t *testing.T) {
	a := setup(t, cfg("a", 150, false), Active)
	a.PeerMessage(t0, peer("b", Standby, a.Term(), 100))
	a.SetMaintenance(t0, true)
	if a.State() != Active {
		t.Fatalf("must stay active until the peer takes over, got %s", a.State())
	}
	tr := last(t, a.PeerMessage(t0, peer("b", Active, a.Term()+1, 100)))
	if tr.To != Maintenance {
		t.Fatalf("got %+v", tr)
	}
}

// pair simulates two machines and a network that may be partitioned.
type pair struct {
	m     [2]*Machine
	maint [2]bool
	// delivered is the advert of the other node last handed to node i:
	// like the heartbeat monitor, the simulation passes on only news.
	delivered [2]*PeerInfo
	connected bool
	now       time.Time
	t         *testing.T
	log       []string
}

func (p *pair) check(i int, trs []Transition) {
	for _, tr := range trs {
		p.log = append(p.log, p.m[i].cfg.Node+": "+tr.From.String()+"->"+tr.To.String()+" "+string(tr.Reason))
		if tr.To == Active && p.maint[i] {
			p.t.Fatalf("node in maintenance took over: %v", p.log)
		}
		if tr.To == Active && !(p.m[i].health.Known && p.m[i].health.Healthy) {
			p.t.Fatalf("unhealthy node took over: %v", p.log)
		}
		if tr.To == Active && p.delivered[i] != nil {
			// A takeover's term is above every term the node has heard, so
			// that it never ties with the peer's.
			if heard := p.delivered[i].Term; tr.Term <= heard {
				p.t.Fatalf("%s took over at term %d after hearing term %d: %v", p.m[i].cfg.Node, tr.Term, heard, p.log)
			}
		}
	}
}

// randomEvent applies event kind ev (0..7) to node i: a partition toggle,
// a health change, maintenance, a switchover, or (4..7) time passing.
func (p *pair) randomEvent(rng *rand.Rand, i, ev int) {
	switch ev {
	case 0:
		p.connected = !p.connected
		if !p.connected {
			p.check(0, p.m[0].PeerDead(p.now, false))
			p.check(1, p.m[1].PeerDead(p.now, false))
			p.delivered = [2]*PeerInfo{}
		}
	case 1:
		p.check(i, p.m[i].SetHealth(p.now, Health{Known: true, Healthy: rng.Intn(3) != 0}))
	case 2:
		p.maint[i] = rng.Intn(3) == 0
		p.check(i, p.m[i].SetMaintenance(p.now, p.maint[i]))
	case 3:
		trs, _ := p.m[i].Switchover(p.now)
		p.check(i, trs)
	default:
		p.tick()
	}
}

// deliver hands node i the other's advert if it is news to i.
func (p *pair) deliver(i int) []Transition {
	a := p.m[1-i].Advert()
	if p.delivered[i] != nil && *p.delivered[i] == a {
		return nil
	}
	p.delivered[i] = &a
	trs := p.m[i].PeerMessage(p.now, a)
	p.check(i, trs)
	return trs
}

// exchange delivers heartbeats both ways until nothing changes.
func (p *pair) exchange() {
	for round := 0; round < 10; round++ {
		a0, a1 := p.m[0].Advert(), p.m[1].Advert()
		tr0 := p.deliver(0)
		tr1 := p.deliver(1)
		p.tick()
		if p.m[0].Advert() == a0 && p.m[1].Advert() == a1 && len(tr0)+len(tr1) == 0 {
			return
		}
	}
	p.t.Fatalf("no convergence: %v", p.log)
}

func (p *pair) tick() {
	for i := range p.m {
		if next, ok := p.m[i].Next(); ok && !next.After(p.now) {
			p.check(i, p.m[i].Tick(p.now))
		}
	}
}

func TestRandomizedInvariants(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	for run := 0; run < 300; run++ {
		preempt := rng.Intn(2) == 0
		ca, cb := cfg("a", 100+rng.Intn(3)*50, preempt), cfg("b", 100+rng.Intn(3)*50, preempt)
		ca.PreemptDelay = time.Duration(rng.Intn(3)) * 100 * time.Millisecond
		cb.PreemptDelay = ca.PreemptDelay
		p := &pair{m: [2]*Machine{New(ca, t0, uint64(rng.Intn(3))), New(cb, t0, uint64(rng.Intn(3)))}, connected: true, now: t0, t: t}
		for step := 0; step < 60; step++ {
			i := rng.Intn(2)
			p.now = p.now.Add(time.Duration(rng.Intn(400)) * time.Millisecond)
			p.randomEvent(rng, i, rng.Intn(8))
			if p.connected {
				p.exchange()
				if p.m[0].State() == Active && p.m[1].State() == Active {
					t.Fatalf("seed %d run %d: two actives that hear each other: %v", seed, run, p.log)
				}
				// Somebody eligible must hold the role once they talk.
				eligible := func(k int) bool {
					return !p.maint[k] && p.m[k].health.Healthy && p.m[k].State() != Init
				}
				if (eligible(0) || eligible(1)) && p.m[0].State() != Active && p.m[1].State() != Active {
					t.Fatalf("seed %d run %d: nobody active although %v/%v eligible: %s %s %v", seed, run,
						eligible(0), eligible(1), p.m[0].State(), p.m[1].State(), p.log)
				}
			}
			for k := range p.m {
				if p.maint[k] && p.m[k].State() == Active && !p.m[k].handover {
					t.Fatalf("seed %d: node in maintenance is active without a pending handover: %v", seed, p.log)
				}
			}
		}
	}
}

// witness is a perfect lease store for the simulation.
type witness struct {
	holder int // -1 free
	token  uint64
}

// syncLease lets machine i acquire or release the lease as it wishes,
// when it can reach the witness.
func (p *pair) syncLease(w *witness, reach [2]bool, i int) {
	m := p.m[i]
	switch {
	case m.WantsLease() && reach[i] && (w.holder == -1 || w.holder == i):
		if w.holder != i {
			w.token++
			w.holder = i
		}
		if !m.Snapshot().Lease {
			p.check(i, m.LeaseAcquired(p.now, w.token))
		}
	case !m.WantsLease() && w.holder == i && reach[i]:
		w.holder = -1
		p.check(i, m.LeaseLost(p.now))
	}
}

func TestRandomizedWitnessNeverDualActive(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	for run := 0; run < 300; run++ {
		ca, cb := cfg("a", 100+rng.Intn(3)*50, rng.Intn(2) == 0), cfg("b", 100+rng.Intn(3)*50, rng.Intn(2) == 0)
		ca.Witness, cb.Witness = true, true
		p := &pair{m: [2]*Machine{New(ca, t0, 0), New(cb, t0, 0)}, connected: true, now: t0, t: t}
		w := &witness{holder: -1}
		reach := [2]bool{true, true}
		settle := func() {
			for k := 0; k < 6; k++ {
				if p.connected {
					p.exchange()
				}
				p.syncLease(w, reach, 0)
				p.syncLease(w, reach, 1)
				p.tick()
			}
		}
		for step := 0; step < 60; step++ {
			i := rng.Intn(2)
			p.now = p.now.Add(time.Duration(rng.Intn(400)) * time.Millisecond)
			if ev := rng.Intn(9); ev == 8 {
				// Losing the witness: the holder's lease runs out before
				// anyone else can take it.
				reach[i] = !reach[i]
				if !reach[i] && w.holder == i {
					p.check(i, p.m[i].LeaseLost(p.now))
					w.holder = -1
				}
			} else {
				p.randomEvent(rng, i, ev)
			}
			settle()
			if p.m[0].State() == Active && p.m[1].State() == Active {
				t.Fatalf("seed %d run %d: two actives with a witness: %v", seed, run, p.log)
			}
			for k := range p.m {
				if p.m[k].State() == Active && w.holder != k {
					t.Fatalf("seed %d run %d: %s active without the lease", seed, run, p.m[k].cfg.Node)
				}
			}
			// With the witness reachable and the pair connected, somebody
			// eligible holds the role.
			if p.connected && reach[0] && reach[1] {
				eligible := func(k int) bool { return !p.maint[k] && p.m[k].health.Healthy }
				if (eligible(0) || eligible(1)) && p.m[0].State() != Active && p.m[1].State() != Active {
					t.Fatalf("seed %d run %d: nobody active: %s %s %v", seed, run, p.m[0].State(), p.m[1].State(), p.log)
				}
			}
		}
	}
}

// witnessActive returns a node of a witness pair that found its peer dead,
// waited for the lease and took the role with token.
func witnessActive(t *testing.T, token uint64) *Machine {
	t.Helper()
	c := cfg("a", 150, false)
	c.Witness = true
	a := New(c, t0, 0)
	a.PeerDead(t0, false)
	a.Tick(t0.Add(time.Second))
	if a.State() != Init || !a.WantsLease() {
		t.Fatalf("must wait for the lease: %s want=%v", a.State(), a.WantsLease())
	}
	if tr := last(t, a.LeaseAcquired(t0.Add(time.Second), token)); tr.To != Active {
		t.Fatalf("got %+v", tr)
	}
	return a
}

func TestWitnessSwitchoverBreaksBeforeMake(t *testing.T) {
	a := witnessActive(t, 7)
	a.PeerMessage(t0.Add(time.Second), peer("b", Standby, a.Term(), 100))
	trs, err := a.Switchover(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if tr := last(t, trs); tr.To != Standby || a.WantsLease() || !a.Advert().Yielding {
		t.Fatalf("with a witness the active steps down first and hands over: %+v want=%v", tr, a.WantsLease())
	}
}

func TestWitnessLeaseLostStepsDown(t *testing.T) {
	a := witnessActive(t, 3)
	tr := last(t, a.LeaseLost(t0.Add(2*time.Second)))
	if tr.To != Standby || tr.Reason != ReasonLeaseLost {
		t.Fatalf("got %+v, want STANDBY lease_lost", tr)
	}
	if !a.WantsLease() || a.LeaseToken() != 0 {
		t.Fatalf("after losing the lease the node wants it back and holds no token: want=%v token=%d", a.WantsLease(), a.LeaseToken())
	}
}

func TestTermRecordedAfterSteppingDown(t *testing.T) {
	// The failback: a node that steps down for a peer with a
	// higher term hears no further news (repeats are not events) and must
	// still take over above that term when the peer is lost.
	m := setup(t, cfg("a", 150, false), Active)
	m.PeerMessage(t0, peer("b", Active, 15, 100))
	if m.State() != Standby {
		t.Fatalf("state %s, want STANDBY", m.State())
	}
	tr := last(t, m.PeerDead(t0.Add(time.Second), false))
	if tr.To != Active || tr.Term != 16 {
		t.Fatalf("got %+v, want ACTIVE at term 16", tr)
	}
	if m.HighestTerm() != 16 {
		t.Fatalf("highest term %d, want 16", m.HighestTerm())
	}
}

func TestHighestTermSurvivesRestart(t *testing.T) {
	m := New(cfg("a", 150, false), t0, 15)
	tr := last(t, m.Tick(t0.Add(time.Second)))
	if tr.To != Active || tr.Term != 16 {
		t.Fatalf("got %+v, want ACTIVE at term 16", tr)
	}
}

func TestLinkTracking(t *testing.T) {
	c := cfg("a", 150, false)
	c.Links = []string{"eth0"}
	c.PathLinks = []string{"eth1", "eth2"}
	c.LinkRise = 200 * time.Millisecond
	later := t0.Add(time.Second)
	cases := []struct {
		name   string
		from   State
		event  func(m *Machine) []Transition
		to     State
		reason Reason
	}{
		{"vip link down", Active, func(m *Machine) []Transition { return m.SetLink(later, "eth0", false) }, Fault, ReasonLinkDown},
		{"one path link down", Active, func(m *Machine) []Transition { return m.SetLink(later, "eth1", false) }, Active, ReasonPeerNeverHeard},
		{"every path link down", Active, func(m *Machine) []Transition {
			m.SetLink(later, "eth1", false)
			return m.SetLink(later, "eth2", false)
		}, Fault, ReasonLinkDown},
		{"standby never takes over with its link down", Standby, func(m *Machine) []Transition {
			m.SetLink(later, "eth0", false)
			return m.PeerDead(later, false)
		}, Fault, ReasonLinkDown},
		{"link up waits for the rise", Active, func(m *Machine) []Transition {
			m.SetLink(later, "eth0", false)
			return m.SetLink(later, "eth0", true)
		}, Fault, ReasonLinkDown},
		{"link up after the rise", Active, func(m *Machine) []Transition {
			m.PeerMessage(later, peer("b", Active, 9, 100))
			m.SetLink(later, "eth0", false)
			m.SetLink(later, "eth0", true)
			return m.Tick(later.Add(200 * time.Millisecond))
		}, Standby, ReasonLinkUp},
		{"a flap restarts the rise", Active, func(m *Machine) []Transition {
			m.SetLink(later, "eth0", false)
			m.SetLink(later, "eth0", true)
			m.SetLink(later.Add(100*time.Millisecond), "eth0", false)
			m.SetLink(later.Add(150*time.Millisecond), "eth0", true)
			return m.Tick(later.Add(300 * time.Millisecond))
		}, Fault, ReasonLinkDown},
		{"back from link_down, listens for the peer first", Active, func(m *Machine) []Transition {
			m.PeerDead(later, false)
			m.SetLink(later, "eth0", false)
			m.SetLink(later, "eth0", true)
			return m.Tick(later.Add(200 * time.Millisecond))
		}, Standby, ReasonLinkUp},
		{"back from link_down, nobody heard within the hold", Active, func(m *Machine) []Transition {
			m.PeerDead(later, false)
			m.SetLink(later, "eth0", false)
			m.SetLink(later, "eth0", true)
			m.Tick(later.Add(200 * time.Millisecond))
			return m.Tick(later.Add(500 * time.Millisecond))
		}, Active, ReasonPeerLost},
		{"back from link_down, hears the active peer", Active, func(m *Machine) []Transition {
			m.PeerDead(later, false)
			m.SetLink(later, "eth0", false)
			m.SetLink(later, "eth0", true)
			m.Tick(later.Add(200 * time.Millisecond))
			return m.PeerMessage(later.Add(250*time.Millisecond), peer("b", Active, 9, 100))
		}, Standby, ReasonLinkUp},
		{"failing check keeps fault after the link", Active, func(m *Machine) []Transition {
			m.SetLink(later, "eth0", false)
			m.SetHealth(later, Health{Known: true, Failing: []string{"x"}})
			m.SetLink(later, "eth0", true)
			return m.Tick(later.Add(time.Second))
		}, Fault, ReasonCheckFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := setup(t, c, tc.from)
			trs := tc.event(m)
			if m.State() != tc.to || m.Snapshot().Reason != tc.reason {
				t.Fatalf("state %s (%s), want %s (%s); transitions %+v", m.State(), m.Snapshot().Reason, tc.to, tc.reason, trs)
			}
		})
	}
}

func TestReassert(t *testing.T) {
	later := t0.Add(time.Second)
	cases := []struct {
		name  string
		event func(m *Machine)
		want  Cause
	}{
		{"winner of a dual-active resolution", func(m *Machine) {
			m.PeerMessage(later, peer("b", Active, 1, 100))
		}, CauseDualActive},
		{"peer heard again after a cut", func(m *Machine) {
			m.PeerMessage(later, peer("b", Standby, 1, 100))
		}, CausePeerBack},
		{"tracked link up again", func(m *Machine) {
			m.SetLink(later, "eth9", false)
			m.SetLink(later, "eth9", true)
		}, CauseLinkUp},
		{"a link reported up that was never down", func(m *Machine) {
			m.SetLink(later, "eth9", true)
		}, ""},
		{"standby peer heard again, nothing new", func(m *Machine) {
			m.PeerMessage(later, peer("b", Standby, 1, 100))
			m.TakeReassert()
			m.PeerMessage(later, peer("b", Standby, 1, 100))
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := setup(t, cfg("a", 150, false), Active)
			m.TakeReassert()
			tc.event(m)
			got, ok := m.TakeReassert()
			if got != tc.want || ok != (tc.want != "") {
				t.Fatalf("reassert %q %v, want %q", got, ok, tc.want)
			}
			if _, again := m.TakeReassert(); again {
				t.Fatal("a reassertion was handed out twice")
			}
		})
	}
}

// byPeerActive is witnessActive with holding by peer agreement configured
// (the peer finds it dead 300ms after its newest echoed heartbeat; it
// steps down 50ms before that) and a standby peer heard.
func byPeerActive(t *testing.T) *Machine {
	t.Helper()
	c := cfg("a", 150, false)
	c.Witness, c.PeerTimeout, c.HoldMargin = true, 300*time.Millisecond, 50*time.Millisecond
	a := New(c, t0, 0)
	a.PeerDead(t0, false)
	a.Tick(t0.Add(time.Second))
	a.LeaseAcquired(t0.Add(time.Second), 5)
	a.PeerMessage(t0.Add(time.Second), peer("b", Standby, a.Term(), 100))
	if a.State() != Active {
		t.Fatalf("setup: %s", a.State())
	}
	return a
}

func TestHoldingByPeerAgreement(t *testing.T) {
	lost := t0.Add(2 * time.Second)
	acked := lost.Add(-80 * time.Millisecond)
	until := acked.Add(250 * time.Millisecond)
	for _, tc := range []struct {
		name   string
		events func(a *Machine) []Transition
		to     State // Active: no step-down
		reason Reason
		byPeer bool
	}{
		{"lease lost, the standby peer defers: stays active", func(a *Machine) []Transition {
			return a.LeaseLost(lost)
		}, Active, "", true},
		{"no newer echo by the deadline: steps down", func(a *Machine) []Transition {
			a.LeaseLost(lost)
			return a.Tick(until)
		}, Standby, ReasonLeaseLost, false},
		{"a newer echo moves the deadline", func(a *Machine) []Transition {
			a.LeaseLost(lost)
			return append(a.PeerAcked(until.Add(-time.Millisecond), until.Add(-20*time.Millisecond)), a.Tick(until)...)
		}, Active, "", true},
		{"peer lost: steps down at once", func(a *Machine) []Transition {
			a.LeaseLost(lost)
			return a.PeerDead(lost.Add(10*time.Millisecond), false)
		}, Standby, ReasonLeaseLost, false},
		{"the witness says the peer holds the lease: steps down at once", func(a *Machine) []Transition {
			a.LeaseLost(lost)
			return a.LeaseHeld(lost.Add(10 * time.Millisecond))
		}, Standby, ReasonLeaseLost, false},
		{"the peer turns active: steps down", func(a *Machine) []Transition {
			a.LeaseLost(lost)
			return a.PeerMessage(lost.Add(10*time.Millisecond), peer("b", Active, a.Term()+1, 100))
		}, Standby, ReasonLeaseLost, false},
		{"the witness answers again: holds the lease, no transition", func(a *Machine) []Transition {
			a.LeaseLost(lost)
			return a.LeaseAcquired(lost.Add(time.Second), 5)
		}, Active, "", false},
		{"no echo ever: steps down at once", func(a *Machine) []Transition {
			a.peerAcked = time.Time{}
			return a.LeaseLost(lost)
		}, Standby, ReasonLeaseLost, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := byPeerActive(t)
			a.PeerAcked(acked, acked)
			trs := tc.events(a)
			if tc.to == Active {
				if a.State() != Active || len(trs) != 0 {
					t.Fatalf("state %s transitions %+v, want ACTIVE and none", a.State(), trs)
				}
			} else if tr := last(t, trs); tr.To != tc.to || tr.Reason != tc.reason {
				t.Fatalf("got %+v, want %s %s", tr, tc.to, tc.reason)
			}
			s := a.Snapshot()
			if s.HoldingByPeer != tc.byPeer {
				t.Fatalf("HoldingByPeer = %v, want %v", s.HoldingByPeer, tc.byPeer)
			}
			if !a.WantsLease() && !a.peerHeardActive() {
				t.Fatal("a node holding by agreement, or that just stepped down, must keep asking for the lease")
			}
			if tc.byPeer {
				if next, ok := a.Next(); !ok || next.After(s.HoldUntil) || s.HoldUntil.After(until.Add(time.Second)) {
					t.Fatalf("Next = %v %v, hold until %v: the machine must be ticked by the deadline", next, ok, s.HoldUntil)
				}
			}
		})
	}
}

func TestHoldingByPeerRefusesHandovers(t *testing.T) {
	a := byPeerActive(t)
	now := t0.Add(2 * time.Second)
	a.PeerAcked(now, now)
	a.LeaseLost(now)
	if _, err := a.Switchover(now); !errors.Is(err, ErrRefused) {
		t.Fatalf("switchover while holding by agreement: %v, want refused", err)
	}
	if err := a.MaintenanceRefused(); !errors.Is(err, ErrRefused) {
		t.Fatalf("maintenance while holding by agreement: %v, want refused", err)
	}
	ask := peer("b", Standby, a.Term(), 100)
	ask.Handover = true
	if trs := a.PeerMessage(now, ask); len(trs) != 0 || a.State() != Active || a.Snapshot().LastError == "" {
		t.Fatalf("the peer's switchover request: %+v state %s error %q, want refused with a reason", trs, a.State(), a.Snapshot().LastError)
	}
	// With the lease again, both work.
	a.LeaseAcquired(now, 5)
	if err := a.MaintenanceRefused(); err != nil {
		t.Fatalf("maintenance with the lease: %v", err)
	}
	if _, err := a.Switchover(now); err != nil {
		t.Fatalf("switchover with the lease: %v", err)
	}
}

// A standby that hears an active peer never asks for the lease (here: a
// due preemption), so it cannot take it from a peer holding by agreement.
func TestStandbyHearingActivePeerDoesNotAskForLease(t *testing.T) {
	c := cfg("b", 200, true)
	c.Witness = true
	b := New(c, t0, 0)
	b.PeerMessage(t0, peer("a", Active, 3, 100))
	b.Tick(t0.Add(time.Second))
	if b.State() != Standby || b.WantsLease() {
		t.Fatalf("state %s wants lease %v, want STANDBY not asking", b.State(), b.WantsLease())
	}
	// The peer stops being active: now the lease is wanted.
	b.PeerMessage(t0.Add(time.Second), peer("a", Standby, 3, 100))
	if !b.WantsLease() {
		t.Fatal("with no active peer the preferred standby must ask for the lease")
	}
}
