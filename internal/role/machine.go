// Package role is baton's role machine: facts in (peer heard or lost, local
// health, operator commands, time), role out (INIT, STANDBY, ACTIVE, FAULT,
// MAINTENANCE) with a typed reason and a term.
//
// The machine is pure: it never reads the clock, blocks or does I/O. One
// goroutine owns it and feeds it events with the current time; each event
// returns the transitions it caused. Next tells when the machine wants to be
// ticked again (INIT hold, preempt delay, handover deadline).
//
// # The deterministic role rule
//
// Every takeover raises the term to one more than the highest term the node
// has seen, and the term travels in every heartbeat. When an ACTIVE node
// hears an ACTIVE peer, the higher term stays active: that is the node that
// took over last, and so the one whose routes, addresses and announcements
// the world points at now. On equal terms (two nodes that took over at the
// same moment from the same term) the higher priority stays, then the
// lexically smaller node name. Both nodes compute the same answer from the
// same two heartbeats, so the loser steps down on the first heartbeat it
// hears, without waiting for a priority skew.
//
// When nobody is active (both starting, or the active failed a check), the
// node that ranks first (priority, then name) becomes active.
//
// # With a witness
//
// A node may be ACTIVE only while it holds the witness lease: when the
// rules above would make it active it asks for the lease (WantsLease) and
// moves once LeaseAcquired says it holds it; LeaseLost makes an active node
// step down (lease_lost). A switchover is then break-before-make: the
// active steps down, releases the lease and advertises Yielding, and the
// peer takes the role once it has acquired the lease.
//
// # Holding by peer agreement
//
// The witness is needed only to take over from a peer that cannot be
// heard. An active node that can no longer renew its lease (the witness is
// unreachable) stays ACTIVE while its peer, heard and not active itself,
// defers to it: it holds the role by the peer's agreement. The peer cannot
// find it dead before PeerTimeout (misses × interval) has passed since it
// received this node's newest heartbeat that it echoed (PeerAcked), and
// without a lease it takes over from a dead peer only: so the node steps
// down HoldMargin before that moment, strictly before the peer could take
// over, and a peer that then acquires the lease (the witness being back)
// never overlaps with it. Meanwhile the node keeps asking for the lease,
// and holds it again as soon as the witness answers. A standby never asks
// for the lease while it hears an active peer, so it cannot take the lease
// from under a node holding by agreement.
package role

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Reason says why a transition happened.
type Reason string

const (
	ReasonStartup          Reason = "startup"
	ReasonPeerActive       Reason = "peer_active"        // heard an active peer
	ReasonPeerLost         Reason = "peer_lost"          // every path to the peer is down
	ReasonPeerGone         Reason = "peer_gone"          // the peer's process closed its channel or left
	ReasonPeerNeverHeard   Reason = "peer_never_heard"   // INIT hold expired without hearing the peer
	ReasonPeerUnavailable  Reason = "peer_unavailable"   // the peer is in FAULT or MAINTENANCE
	ReasonElected          Reason = "elected"            // nobody active, this node ranks first
	ReasonPeerElected      Reason = "peer_elected"       // nobody active, the peer ranks first
	ReasonPeerStateUnknown Reason = "peer_state_unknown" // the peer answers checks but sends no heartbeats
	ReasonPreempt          Reason = "preempt"            // preferred node takes the role back
	ReasonPeerTookOver     Reason = "peer_took_over"     // the peer became active with a higher term
	ReasonDualActive       Reason = "dual_active_lost"   // both active on equal terms; the peer ranks first
	ReasonCheckFailed      Reason = "check_failed"
	ReasonCheckRecovered   Reason = "check_recovered"
	ReasonSwitchover       Reason = "switchover"
	ReasonMaintenanceOn    Reason = "maintenance_on"
	ReasonMaintenanceOff   Reason = "maintenance_off"
	ReasonLeaseLost        Reason = "lease_lost" // the witness lease could not be renewed in time
	ReasonLinkDown         Reason = "link_down"  // a tracked interface of this node is operationally down
	ReasonLinkUp           Reason = "link_up"    // every tracked interface is up again (for the rise time)
)

// Cause says why an active node re-asserts its role: it re-runs every
// action's announce-and-verify at once (gratuitous ARPs, route tables read
// and repaired, BGP re-advertised, probe).
type Cause string

const (
	// CauseDualActive: this node won a dual-active resolution; the loser's
	// announcements may be the last the segment heard.
	CauseDualActive Cause = "dual_active"
	// CausePeerBack: the peer is heard again after it was lost; it may
	// have been active during the cut and have pointed the world at itself.
	CausePeerBack Cause = "peer_back"
	// CauseLinkUp: a tracked interface came back up while active.
	CauseLinkUp Cause = "link_up"
)

// Config is the node's static role configuration.
type Config struct {
	Node         string
	Priority     int
	Preempt      bool
	PreemptDelay time.Duration
	// InitHold is how long a starting node listens for its peer before it
	// may take the active role alone (the peer's dead time).
	InitHold time.Duration
	// HandoverTimeout bounds a switchover or maintenance handover.
	HandoverTimeout time.Duration
	// Witness: the node may be ACTIVE only while it holds the witness
	// lease. A node that the rules would make active asks for the lease
	// (WantsLease) and takes the role once LeaseAcquired says it holds it.
	Witness bool
	// Links are interfaces (VIP interfaces, track_interfaces) of which
	// any being down holds the node in FAULT (link_down).
	Links []string
	// PathLinks are the interfaces the heartbeat paths leave by: with all
	// of them down this node is the one cut off, and it holds in FAULT.
	PathLinks []string
	// LinkRise is how long an interface must be up again before it counts
	// as up (so that a flapping link does not flap the role).
	LinkRise time.Duration
	// PeerTimeout is how long the peer waits without a heartbeat before it
	// finds this node dead (misses × interval), and HoldMargin how long
	// before that moment an active node holding by peer agreement steps
	// down. Zero PeerTimeout: no holding by agreement (losing the lease
	// makes the node step down at once).
	PeerTimeout, HoldMargin time.Duration
}

// Transition is one change of role.
type Transition struct {
	From, To State
	Reason   Reason
	Term     uint64
	At       time.Time
	Detail   string
}

// Health is the aggregate of the local checks.
type Health struct {
	Known   bool // at least one result from every check
	Healthy bool
	Failing []string
}

// Snapshot is the machine's state for status pages.
type Snapshot struct {
	Node        string
	State       State
	Reason      Reason
	Term        uint64
	Since       time.Time
	Health      Health
	Maintenance bool
	Handover    bool
	Yielded     bool
	PeerAlive   bool
	PeerKnown   bool
	Peer        PeerInfo
	LastError   string
	Lease       bool   // holds the witness lease
	LeaseToken  uint64 // its fencing token
	WantsLease  bool
	Pending     Reason   // why the node waits for the lease
	LinksDown   []string // tracked interfaces down
	LinksRising []string // tracked interfaces up again for less than the rise time
	HighestTerm uint64   // the highest term this node has seen, its own or the peer's
	// HoldingByPeer: active without the lease, by the peer's agreement,
	// until HoldUntil.
	HoldingByPeer bool
	HoldUntil     time.Time
}

// ErrRefused is wrapped by operator commands that cannot be carried out.
var ErrRefused = errors.New("refused")

// Machine is the role machine. It is not safe for concurrent use.
type Machine struct {
	cfg     Config
	state   State
	reason  Reason
	term    uint64
	since   time.Time
	started time.Time

	health      Health
	maintenance bool

	peerAlive bool
	peerKnown bool // a heartbeat arrived since the peer was last alive
	peer      PeerInfo

	handover         bool // asking the peer to take the role (switchover)
	handoverDeadline time.Time
	yielded          bool      // do not preempt: the operator moved the role away
	eligibleSince    time.Time // preempt condition continuously true since
	lastError        string

	// yielding: with a witness a switchover is break-before-make: the
	// active steps down, releases the lease and advertises Handover from
	// STANDBY until the peer is active.
	yielding bool

	lease      bool
	leaseToken uint64
	wantLease  bool
	pending    Reason

	peerAcked      time.Time // newest of our heartbeats the peer echoed
	leaseElsewhere bool      // the witness said another node holds the lease

	// highest is the highest term seen in any valid heartbeat, in every
	// state: a takeover takes highest+1, so two takeovers never tie.
	highest uint64
	// links: tracked interfaces that are down (zero) or up since a time
	// shorter than the rise ago.
	links map[string]time.Time
	// reassert is the cause of a re-assertion the owner has not taken yet.
	reassert Cause
	// listenUntil: back from link_down, the node heard nothing while cut
	// off; like a starting node it listens for the peer for InitHold
	// before it may take the role alone.
	listenUntil time.Time
}

// New returns a machine in INIT. term is the term persisted by the last run.
func New(cfg Config, now time.Time, term uint64) *Machine {
	if cfg.HandoverTimeout <= 0 {
		cfg.HandoverTimeout = 5 * time.Second
	}
	return &Machine{
		cfg:     cfg,
		state:   Init,
		reason:  ReasonStartup,
		term:    term,
		since:   now,
		started: now,
		health:  Health{Known: true, Healthy: true},
		highest: term,
		links:   map[string]time.Time{},
	}
}

// HighestTerm is the highest term this node has seen (its own included):
// the owner persists it, and passes it to New on the next start.
func (m *Machine) HighestTerm() uint64 { return max(m.term, m.highest) }

// TakeReassert returns, once, the cause of a re-assertion the last events
// called for: the owner re-runs every action's announce-and-verify.
func (m *Machine) TakeReassert() (Cause, bool) {
	c := m.reassert
	m.reassert = ""
	return c, c != ""
}

// State returns the current role.
func (m *Machine) State() State { return m.state }

// Term returns the current term.
func (m *Machine) Term() uint64 { return m.term }

// Snapshot returns a copy of the machine's state.
func (m *Machine) Snapshot() Snapshot {
	h := m.health
	h.Failing = append([]string(nil), h.Failing...)
	return Snapshot{
		Node: m.cfg.Node, State: m.state, Reason: m.reason, Term: m.term, Since: m.since,
		Health: h, Maintenance: m.maintenance, Handover: m.handover, Yielded: m.yielded,
		PeerAlive: m.peerAlive, PeerKnown: m.peerKnown, Peer: m.peer, LastError: m.lastError,
		Lease: m.lease, LeaseToken: m.leaseToken, WantsLease: m.wantLease, Pending: m.pending,
		LinksDown: m.linksWhere(true), LinksRising: m.linksWhere(false), HighestTerm: m.HighestTerm(),
		HoldingByPeer: m.holdingByPeer(), HoldUntil: m.holdUntil(),
	}
}

// linksWhere lists, sorted, the tracked interfaces that are down (down
// true) or up again but still rising (down false).
func (m *Machine) linksWhere(down bool) []string {
	var out []string
	for n, since := range m.links {
		if since.IsZero() == down {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// linkFault reports whether the tracked interfaces hold the node in FAULT:
// one of Links is down, or every one of PathLinks is.
func (m *Machine) linkFault() bool {
	for _, n := range m.cfg.Links {
		if _, down := m.links[n]; down {
			return true
		}
	}
	if len(m.cfg.PathLinks) == 0 {
		return false
	}
	for _, n := range m.cfg.PathLinks {
		if _, down := m.links[n]; !down {
			return false
		}
	}
	return true
}

// SetLink records that interface name is operationally up or down. A
// down interface counts as down until it has been up for LinkRise.
func (m *Machine) SetLink(now time.Time, name string, up bool) []Transition {
	since, tracked := m.links[name]
	switch {
	case !up:
		m.links[name] = time.Time{}
	case tracked && since.IsZero():
		if m.cfg.LinkRise <= 0 {
			delete(m.links, name)
		} else {
			m.links[name] = now
		}
		if m.state == Active {
			// An interface that was down while active (one of several
			// heartbeat paths, say): what was sent on it may be lost.
			m.reassert = CauseLinkUp
		}
	}
	return m.evaluate(now)
}

// riseLinks forgets interfaces that have been up for the rise time.
func (m *Machine) riseLinks(now time.Time) {
	for n, since := range m.links {
		if !since.IsZero() && !now.Before(since.Add(m.cfg.LinkRise)) {
			delete(m.links, n)
		}
	}
}

// Advert is what this node tells its peer in heartbeats.
func (m *Machine) Advert() PeerInfo {
	return PeerInfo{
		Name:        m.cfg.Node,
		State:       m.state,
		Term:        m.term,
		Priority:    m.cfg.Priority,
		Healthy:     m.health.Known && m.health.Healthy,
		Maintenance: m.maintenance,
		Handover:    m.handover,
		Yielding:    m.yielding,
		Preempt:     m.cfg.Preempt,
	}
}

// Next returns when the machine next needs Tick, if ever.
func (m *Machine) Next() (time.Time, bool) {
	var next time.Time
	add := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if m.state == Init {
		add(m.started.Add(m.cfg.InitHold))
	}
	if m.handover || m.yielding {
		add(m.handoverDeadline)
	}
	if !m.eligibleSince.IsZero() {
		add(m.eligibleSince.Add(m.cfg.PreemptDelay))
	}
	for _, since := range m.links {
		if !since.IsZero() {
			add(since.Add(m.cfg.LinkRise))
		}
	}
	if m.holdingByPeer() {
		add(m.holdUntil())
	}
	if !m.listenUntil.IsZero() {
		add(m.listenUntil)
	}
	return next, !next.IsZero()
}

// holdingByPeer reports whether the node is ACTIVE without the lease, by
// its peer's agreement.
func (m *Machine) holdingByPeer() bool {
	return m.state == Active && m.cfg.Witness && !m.lease
}

// holdUntil is when an active node without the lease must have stepped
// down: HoldMargin before the peer could find it dead. Zero when the peer
// does not defer to it.
func (m *Machine) holdUntil() time.Time {
	if m.cfg.PeerTimeout <= 0 || m.peerAcked.IsZero() || m.leaseElsewhere || !m.peerAlive || !m.peerKnown || m.peer.State == Active {
		return time.Time{}
	}
	return m.peerAcked.Add(m.cfg.PeerTimeout - m.cfg.HoldMargin)
}

// peerAgrees reports whether the peer defers to this node holding the role
// without the lease at now.
func (m *Machine) peerAgrees(now time.Time) bool {
	until := m.holdUntil()
	return !until.IsZero() && now.Before(until)
}

// PeerAcked records that the peer received this node's heartbeat sent at
// at (it echoed it): the peer cannot find this node dead before at +
// PeerTimeout. Older times change nothing.
func (m *Machine) PeerAcked(now, at time.Time) []Transition {
	if at.After(m.peerAcked) {
		m.peerAcked = at
	}
	return m.evaluate(now)
}

// WantsLease reports whether the node needs the witness lease: it is
// active, or the rules would make it active.
func (m *Machine) WantsLease() bool { return m.wantLease }

// LeaseToken is the fencing token of the lease held, 0 without one.
func (m *Machine) LeaseToken() uint64 {
	if !m.lease {
		return 0
	}
	return m.leaseToken
}

// LeaseAcquired records that this node holds the witness lease.
func (m *Machine) LeaseAcquired(now time.Time, token uint64) []Transition {
	m.lease, m.leaseToken = true, token
	m.leaseElsewhere = false
	return m.evaluate(now)
}

// LeaseHeld records that the witness refused the lease because another
// node holds it: an active node without the lease steps down at once.
func (m *Machine) LeaseHeld(now time.Time) []Transition {
	m.lease = false
	m.leaseElsewhere = true
	return m.evaluate(now)
}

// LeaseLost records that this node does not hold the lease (it could not
// renew it in time, or the witness ended it). An active node whose peer
// defers to it keeps the role by agreement (see the package comment).
func (m *Machine) LeaseLost(now time.Time) []Transition {
	m.lease = false
	return m.evaluate(now)
}

// Tick lets timers expire.
func (m *Machine) Tick(now time.Time) []Transition {
	if m.handover && !now.Before(m.handoverDeadline) {
		m.handover = false
		m.lastError = "handover timed out: the peer did not take the active role"
	}
	if m.yielding && !now.Before(m.handoverDeadline) {
		m.yielding = false
		m.lastError = "handover timed out: the peer did not take the active role"
	}
	m.riseLinks(now)
	if !m.listenUntil.IsZero() && !now.Before(m.listenUntil) {
		m.listenUntil = time.Time{}
	}
	return m.evaluate(now)
}

// PeerMessage records a valid heartbeat from the peer.
func (m *Machine) PeerMessage(now time.Time, p PeerInfo) []Transition {
	if !m.peerAlive {
		m.yielded = false
	}
	if !m.peerKnown && m.state == Active {
		// Heard again after a cut: the peer may have been active in the
		// meantime, and its announcements the last the world heard.
		m.reassert = CausePeerBack
	}
	m.peerAlive, m.peerKnown, m.peer = true, true, p
	m.listenUntil = time.Time{}
	if p.State == Active {
		m.yielding = false
	}
	if p.Term > m.highest {
		m.highest = p.Term
	}
	if m.state != Active && p.Term > m.term {
		m.term = p.Term
	}
	// A standby peer asking for the role is a switchover request to us.
	if p.Handover && !p.Yielding && p.State == Standby && m.state == Active && !m.handover && !m.maintenance {
		if err := m.refuseWithoutLease("switchover asked by the peer"); err != nil {
			m.lastError = err.Error()
		} else {
			m.startHandover(now)
		}
	}
	return m.evaluate(now)
}

// PeerAliveNoState records that the peer answers liveness checks although
// no heartbeat arrived (so its role is unknown).
func (m *Machine) PeerAliveNoState(now time.Time) []Transition {
	if !m.peerAlive {
		m.peerAlive, m.peerKnown = true, false
	}
	return m.evaluate(now)
}

// PeerDead records that every path to the peer is down (gone: its process
// closed the channel or announced it is leaving).
func (m *Machine) PeerDead(now time.Time, gone bool) []Transition {
	m.peerAlive, m.peerKnown = false, false
	m.yielded = false
	m.handover = false
	m.yielding = false
	m.eligibleSince = time.Time{}
	r := ReasonPeerLost
	if gone {
		r = ReasonPeerGone
	}
	return m.evaluateWith(now, r)
}

// SetHealth records the local checks' verdict.
func (m *Machine) SetHealth(now time.Time, h Health) []Transition {
	m.health = h
	return m.evaluate(now)
}

// SetMaintenance turns maintenance mode on or off. An active node with a
// healthy standby peer hands over first and enters MAINTENANCE once the
// peer is active; otherwise it enters MAINTENANCE at once.
func (m *Machine) SetMaintenance(now time.Time, on bool) []Transition {
	m.maintenance = on
	if on && m.state == Active && m.peerCanTakeOver() {
		m.startHandover(now)
	}
	if !on {
		m.yielded = false
	}
	return m.evaluate(now)
}

// Switchover asks for a planned handover to the peer: on the active node
// it asks the peer to take over and steps down once the peer is active; on
// the standby it asks the active peer to hand over.
func (m *Machine) Switchover(now time.Time) ([]Transition, error) {
	switch {
	case !m.peerAlive || !m.peerKnown:
		return nil, fmt.Errorf("switchover: %w: the peer is not reachable", ErrRefused)
	case m.maintenance:
		return nil, fmt.Errorf("switchover: %w: this node is in maintenance", ErrRefused)
	case m.state == Active:
		if !m.peerCanTakeOver() {
			return nil, fmt.Errorf("switchover: %w: the peer is %s%s, not a healthy standby", ErrRefused, m.peer.State, unhealthy(m.peer))
		}
		if err := m.refuseWithoutLease("switchover"); err != nil {
			return nil, err
		}
		m.startHandover(now)
		m.lastError = ""
		return m.evaluate(now), nil
	case m.state == Standby:
		if m.peer.State != Active {
			return nil, fmt.Errorf("switchover: %w: the peer is %s, not active", ErrRefused, m.peer.State)
		}
		if !m.health.Healthy || !m.health.Known {
			return nil, fmt.Errorf("switchover: %w: this node's checks are failing", ErrRefused)
		}
		m.handover = true
		m.handoverDeadline = now.Add(m.cfg.HandoverTimeout)
		m.lastError = ""
		return m.evaluate(now), nil
	default:
		return nil, fmt.Errorf("switchover: %w: this node is %s", ErrRefused, m.state)
	}
}

// refuseWithoutLease refuses a handover while the node holds the role by
// peer agreement: the peer could not take the role without the lease, so
// the pair would have no active node until the witness answers.
func (m *Machine) refuseWithoutLease(what string) error {
	if !m.holdingByPeer() {
		return nil
	}
	return fmt.Errorf("%s: %w: the witness is unreachable (this node holds the role by the peer's agreement) and the peer cannot take over without the lease; try again when the witness answers", what, ErrRefused)
}

// MaintenanceRefused returns why entering maintenance now would leave the
// pair without an active node, nil when it may be entered.
func (m *Machine) MaintenanceRefused() error {
	return m.refuseWithoutLease("maintenance")
}

func unhealthy(p PeerInfo) string {
	if p.Maintenance {
		return " in maintenance"
	}
	if !p.Healthy {
		return " and unhealthy"
	}
	return ""
}

func (m *Machine) startHandover(now time.Time) {
	m.handover = true
	m.handoverDeadline = now.Add(m.cfg.HandoverTimeout)
	if m.outranks(m.peer) {
		m.yielded = true
	}
}

func (m *Machine) peerCanTakeOver() bool {
	return m.peerAlive && m.peerKnown && m.peer.State == Standby && m.peer.Healthy && !m.peer.Maintenance
}

// outranks reports whether this node ranks before p when nobody is active:
// higher priority first, then the lexically smaller name.
func (m *Machine) outranks(p PeerInfo) bool {
	if m.cfg.Priority != p.Priority {
		return m.cfg.Priority > p.Priority
	}
	return m.cfg.Node < p.Name
}

// peerWins decides between two active nodes: higher term, then rank.
func (m *Machine) peerWins(p PeerInfo) bool {
	if p.Term != m.term {
		return p.Term > m.term
	}
	return !m.outranks(p)
}

func (m *Machine) evaluate(now time.Time) []Transition { return m.evaluateWith(now, "") }

// evaluateWith applies the rules until the state is stable (at most a few
// steps: FAULT -> STANDBY -> ACTIVE is the longest chain).
func (m *Machine) evaluateWith(now time.Time, peerDownReason Reason) []Transition {
	var out []Transition
	m.pending = ""
	for i := 0; i < 4; i++ {
		to, r, detail := m.decide(now, peerDownReason)
		if to == m.state {
			if to == Fault {
				m.reason = r // a link came back, a check still fails (or the reverse)
			}
			break
		}
		if to == Active && m.cfg.Witness && !m.lease {
			// The rules say take over, the witness has not said yes yet.
			m.pending = r
			break
		}
		out = append(out, m.move(now, to, r, detail))
	}
	// A standby that hears an active peer does not ask for the lease: the
	// peer may hold the role by agreement, the lease free at the witness.
	m.wantLease = m.cfg.Witness && (m.state == Active || (m.pending != "" && !m.peerHeardActive()))
	m.updatePreempt(now)
	return out
}

func (m *Machine) move(now time.Time, to State, r Reason, detail string) Transition {
	from := m.state
	if to == Active {
		// One more than any term seen, so that the node that took over
		// last always holds the highest term and two never tie.
		m.term = m.HighestTerm() + 1
		m.highest = m.term
	} else {
		m.term = m.HighestTerm()
	}
	if from == Active && to == Standby && r == ReasonSwitchover && m.cfg.Witness {
		m.yielding = true // keep the deadline of the handover
	}
	if from == Active || to == Active {
		m.handover = false
	}
	if to != Standby {
		m.yielding = false
	}
	if to != Standby {
		// Only a standby that handed the role over stays yielded.
		m.yielded = false
	}
	if from == Fault && to == Standby && r == ReasonLinkUp {
		m.listenUntil = now.Add(m.cfg.InitHold)
	} else if to != Standby {
		m.listenUntil = time.Time{}
	}
	m.state, m.reason, m.since = to, r, now
	m.eligibleSince = time.Time{}
	return Transition{From: from, To: to, Reason: r, Term: m.term, At: now, Detail: detail}
}

// decide returns the state the facts call for.
func (m *Machine) decide(now time.Time, peerDownReason Reason) (State, Reason, string) {
	healthy := m.health.Known && m.health.Healthy
	peerActive := m.peerAlive && m.peerKnown && m.peer.State == Active

	if m.maintenance {
		if m.state == Active && m.handover && !peerActive && !m.cfg.Witness {
			return Active, m.reason, "" // waiting for the peer to take over
		}
		if m.state == Maintenance {
			return Maintenance, m.reason, ""
		}
		return Maintenance, ReasonMaintenanceOn, ""
	}
	if m.state == Maintenance {
		return Standby, ReasonMaintenanceOff, ""
	}
	if m.linkFault() {
		if m.state == Fault && m.reason == ReasonLinkDown {
			return Fault, m.reason, ""
		}
		return Fault, ReasonLinkDown, fmt.Sprint(append(m.linksWhere(true), m.linksWhere(false)...))
	}
	if m.health.Known && !m.health.Healthy {
		if m.state == Fault && m.reason != ReasonLinkDown {
			return Fault, m.reason, ""
		}
		return Fault, ReasonCheckFailed, fmt.Sprint(m.health.Failing)
	}
	if m.state == Fault {
		if m.reason == ReasonLinkDown {
			return Standby, ReasonLinkUp, ""
		}
		return Standby, ReasonCheckRecovered, ""
	}

	switch m.state {
	case Init:
		if !healthy {
			return Init, m.reason, "" // checks have not reported yet
		}
		if m.peerAlive && m.peerKnown {
			return m.elect(Init)
		}
		if m.peerAlive && !now.Before(m.started.Add(m.cfg.InitHold)) {
			return Standby, ReasonPeerStateUnknown, ""
		}
		if !m.peerAlive && !now.Before(m.started.Add(m.cfg.InitHold)) {
			if peerDownReason != "" {
				return Active, peerDownReason, ""
			}
			return Active, ReasonPeerNeverHeard, ""
		}
		return Init, m.reason, ""

	case Standby:
		if !m.peerAlive && now.Before(m.listenUntil) {
			return Standby, m.reason, "" // back from link_down: listening for the peer
		}
		if !m.peerAlive {
			if peerDownReason == "" {
				peerDownReason = ReasonPeerLost
			}
			return Active, peerDownReason, ""
		}
		if !m.peerKnown {
			return Standby, m.reason, ""
		}
		if m.peer.State == Active {
			if m.peer.Handover {
				return Active, ReasonSwitchover, ""
			}
			if m.preemptDue(now) {
				return Active, ReasonPreempt, ""
			}
			return Standby, m.reason, ""
		}
		return m.elect(Standby)

	case Active:
		if m.cfg.Witness && !m.lease && !m.peerAgrees(now) {
			return Standby, ReasonLeaseLost, ""
		}
		if m.cfg.Witness && m.handover && m.peerCanTakeOver() {
			// Break before make: the lease must be free for the peer.
			return Standby, ReasonSwitchover, ""
		}
		if peerActive && m.peerWins(m.peer) {
			switch {
			case m.handover:
				return Standby, ReasonSwitchover, ""
			case m.peer.Term > m.term:
				return Standby, ReasonPeerTookOver, ""
			default:
				return Standby, ReasonDualActive, ""
			}
		}
		if peerActive {
			// This node stays: the peer steps down, and the world may
			// still point at it.
			m.reassert = CauseDualActive
		}
		return Active, m.reason, ""
	}
	return m.state, m.reason, ""
}

// peerHeardActive reports whether the peer's newest heartbeat says it is
// active.
func (m *Machine) peerHeardActive() bool {
	return m.peerAlive && m.peerKnown && m.peer.State == Active
}

// elect decides between this node (in from) and a known peer that is not
// active.
func (m *Machine) elect(from State) (State, Reason, string) {
	switch m.peer.State {
	case Active:
		return Standby, ReasonPeerActive, ""
	case Fault, Maintenance:
		return Active, ReasonPeerUnavailable, ""
	}
	if m.peer.Yielding && m.peer.State == Standby {
		// The peer stepped down for a switchover and hands the role over.
		return Active, ReasonSwitchover, ""
	}
	if m.yielding {
		return from, m.reason, ""
	}
	if m.outranks(m.peer) {
		return Active, ReasonElected, ""
	}
	if from == Init {
		return Standby, ReasonPeerElected, ""
	}
	return from, m.reason, ""
}

func (m *Machine) preemptDue(now time.Time) bool {
	return !m.eligibleSince.IsZero() && !now.Before(m.eligibleSince.Add(m.cfg.PreemptDelay))
}

// updatePreempt tracks since when this standby could take the role back.
func (m *Machine) updatePreempt(now time.Time) {
	can := m.cfg.Preempt && !m.yielded && m.state == Standby && m.peerAlive && m.peerKnown &&
		m.peer.State == Active && !m.peer.Handover && m.outranks(m.peer) &&
		m.health.Known && m.health.Healthy && !m.maintenance
	switch {
	case !can:
		m.eligibleSince = time.Time{}
	case m.eligibleSince.IsZero():
		// Next reports the deadline; a zero delay fires on the next Tick,
		// which the owner runs at once.
		m.eligibleSince = now
	}
}
