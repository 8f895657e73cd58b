package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	speaker "github.com/batonha/baton/internal/provider/bgp"
	"github.com/batonha/baton/internal/role"
	"github.com/batonha/baton/internal/store"
)

// Announcer is what the action needs from a BGP speaker;
// *speaker.Speaker (internal/provider/bgp) implements it.
type Announcer interface {
	Start(ctx context.Context) error
	// Set makes the announcements exactly routes (idempotent).
	Set(ctx context.Context, routes []speaker.Route) error
	Announced() []speaker.Route
	Peers(ctx context.Context) []speaker.PeerStatus
	// Stop withdraws everything and closes the sessions.
	Stop(ctx context.Context) error
}

// BGP follows health, maintenance and (in active-standby mode) the
// active role, and makes the speaker announce accordingly. It is an
// action.Action for the takeover pipeline (active-standby) and a daemon
// subsystem (Run, RoleChanged, Status).
type BGP struct {
	cfg      Config
	prefixes []netip.Prefix
	sp       Announcer
	clk      clock.Clock
	log      *slog.Logger

	wake chan struct{}

	applyMu sync.Mutex // one apply at a time

	mu       sync.Mutex
	snap     role.Snapshot
	haveSnap bool
	active   bool // the pipeline activated us (active-standby)
	stopping bool
	started  bool
	want     decision
	applied  *decision
	lastErr  string
	changed  time.Time
}

// decision is what should be announced and why.
type decision struct {
	Announce bool
	Prepend  int
	Reason   string
}

// New returns the action over sp for a checked configuration.
func New(cfg Config, sp Announcer, clk clock.Clock, log *slog.Logger) *BGP {
	if clk == nil {
		clk = clock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &BGP{cfg: cfg, prefixes: cfg.prefixes(), sp: sp, clk: clk, log: log.With("component", "bgp"),
		wake: make(chan struct{}, 1), want: decision{Reason: "starting"}}
}

// NewSpeaker builds the embedded GoBGP speaker for cfg. Without a
// router_id it uses the local address the kernel picks to reach the
// first peer.
func NewSpeaker(cfg Config, log *slog.Logger) (*speaker.Speaker, error) {
	rid, err := routerID(cfg)
	if err != nil {
		return nil, err
	}
	sc := speaker.Config{ASN: uint32(cfg.ASN), RouterID: rid, Logger: log}
	for i, p := range cfg.Peers {
		addr, err := netip.ParseAddr(p.Address)
		if err != nil {
			return nil, fmt.Errorf("bgp.peers[%d].address: %w", i, err)
		}
		sp := speaker.Peer{Address: addr, ASN: uint32(p.ASN), Port: p.Port, MultihopTTL: p.MultihopTTL,
			Hold: cfg.Timers.Hold, Keepalive: cfg.Timers.Keepalive, ConnectRetry: cfg.Timers.ConnectRetry,
			IdleHoldAfterReset: cfg.Timers.IdleHold, MaxPrefixes: uint32(p.MaxPrefixes), NoPrefixes: p.MaxPrefixes == 0}
		if p.Port == DefaultPeerPort {
			sp.Port = 0
		}
		if p.Source != "" {
			sp.Source, _ = netip.ParseAddr(p.Source)
		}
		if p.PasswordFile != "" {
			b, err := store.ReadSecret(p.PasswordFile, func(w string) { log.Warn(fmt.Sprintf("bgp.peers[%d].password_file: %s", i, w)) })
			if err != nil {
				return nil, fmt.Errorf("bgp.peers[%d].password_file: %w", i, err)
			}
			sp.Password = strings.TrimRight(string(b), "\r\n")
			if n := len(sp.Password); n == 0 || n > 80 {
				return nil, fmt.Errorf("bgp.peers[%d].password_file: %s holds a %d-character key; TCP-MD5 takes 1 to 80", i, p.PasswordFile, n)
			}
		}
		if cfg.BFD.Enabled {
			sp.BFD = &speaker.BFD{MinTx: cfg.BFD.MinTx, MinRx: cfg.BFD.MinRx, Multiplier: cfg.BFD.Multiplier}
		}
		sc.Peers = append(sc.Peers, sp)
	}
	return speaker.New(sc)
}

func routerID(cfg Config) (netip.Addr, error) {
	if cfg.RouterID != "" {
		a, err := netip.ParseAddr(cfg.RouterID)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("bgp.router_id: %w", err)
		}
		return a, nil
	}
	if len(cfg.Peers) == 0 {
		return netip.Addr{}, errors.New("bgp.router_id: no peers to derive it from")
	}
	p := cfg.Peers[0]
	if p.Source != "" {
		return netip.ParseAddr(p.Source)
	}
	// A UDP "connection" sends nothing; it only asks the kernel for the
	// source address of the route to the peer.
	c, err := net.Dial("udp4", net.JoinHostPort(p.Address, strconv.Itoa(p.Port)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("deriving bgp.router_id from the route to %s (set router_id): %w", p.Address, err)
	}
	defer c.Close()
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("deriving bgp.router_id: %w", err)
	}
	return ap.Addr().Unmap(), nil
}

// Name implements action.Action.
func (b *BGP) Name() string { return "bgp" }

// decide is the policy: what to announce given the node's state.
func (b *BGP) decide() decision {
	switch {
	case b.stopping:
		return decision{Reason: "shutting down"}
	case !b.haveSnap:
		return decision{Reason: "waiting for the first role decision"}
	case b.snap.Maintenance || b.snap.State == role.Maintenance:
		return decision{Reason: "maintenance"}
	case !b.snap.Health.Known:
		return decision{Reason: "local checks pending"}
	case !b.snap.Health.Healthy:
		return decision{Reason: "local checks failing"}
	case b.snap.State == role.Fault:
		return decision{Reason: "fault"}
	}
	if b.cfg.Mode == ModeActiveActive {
		return decision{Announce: true, Reason: "healthy"}
	}
	if b.active {
		return decision{Announce: true, Reason: "active"}
	}
	if b.cfg.Standby == StandbyPrepend && b.snap.State == role.Standby {
		return decision{Announce: true, Prepend: b.cfg.Prepend, Reason: "standby (prepended)"}
	}
	return decision{Reason: "not active"}
}

// apply brings the speaker in line with the decision. Before the speaker
// runs it only records it.
func (b *BGP) apply(ctx context.Context) error {
	b.applyMu.Lock()
	defer b.applyMu.Unlock()
	b.mu.Lock()
	d := b.decide()
	b.want = d
	started := b.started
	applied := b.applied
	b.mu.Unlock()
	if !started {
		return nil
	}
	var routes []speaker.Route
	if d.Announce {
		for _, p := range b.prefixes {
			routes = append(routes, speaker.Route{Prefix: p, Prepend: d.Prepend})
		}
	}
	err := b.sp.Set(ctx, routes)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.lastErr = err.Error()
		return fmt.Errorf("bgp: %w", err)
	}
	b.lastErr = ""
	if applied == nil || *applied != d {
		b.changed = b.clk.Now()
		what := "withdrawn"
		if d.Announce {
			what = "announced"
		}
		b.log.Info("prefixes "+what, "reason", d.Reason, "prepend", d.Prepend, "prefixes", len(routes))
	}
	b.applied = &d
	return nil
}

func (b *BGP) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// RoleChanged implements the daemon's role observer; it never blocks.
func (b *BGP) RoleChanged(s role.Snapshot) {
	b.mu.Lock()
	b.snap, b.haveSnap = s, true
	b.mu.Unlock()
	b.poke()
}

// Activate implements action.Action (active-standby): announce plainly.
func (b *BGP) Activate(ctx context.Context, _ action.Takeover) error {
	b.mu.Lock()
	b.active = true
	b.mu.Unlock()
	return b.apply(ctx)
}

// Deactivate implements action.Action: prepend or withdraw; on shutdown,
// withdraw everything.
func (b *BGP) Deactivate(ctx context.Context, t action.Takeover) error {
	b.mu.Lock()
	b.active = false
	if t.Reason == "shutdown" {
		b.stopping = true
	}
	b.mu.Unlock()
	return b.apply(ctx)
}

// Verify implements action.Action: re-assert the announcements.
func (b *BGP) Verify(ctx context.Context, _ bool) error { return b.apply(ctx) }

// retryEvery is how soon a failed apply is tried again.
const retryEvery = time.Second

// Run starts the speaker, keeps the announcements in line with every
// change, and on the end of ctx withdraws and closes the sessions.
func (b *BGP) Run(ctx context.Context) error {
	if err := b.sp.Start(ctx); err != nil {
		return fmt.Errorf("starting BGP speaker: %w", err)
	}
	b.mu.Lock()
	b.started = true
	b.mu.Unlock()
	retry := b.clk.NewTimer(time.Hour)
	defer retry.Stop()
	b.poke()
	for {
		select {
		case <-ctx.Done():
			b.Shutdown()
			return nil
		case <-b.wake:
		case <-retry.C():
		}
		retry.Stop()
		if err := b.apply(ctx); err != nil {
			b.log.Warn("updating BGP announcements", "err", err)
			retry.Reset(retryEvery)
		}
	}
}

// Shutdown withdraws every prefix and closes the sessions (Cease). It is
// idempotent; Run calls it when its context ends.
func (b *BGP) Shutdown() {
	b.mu.Lock()
	b.stopping = true
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := b.apply(ctx); err != nil {
		b.log.Warn("withdrawing on shutdown", "err", err)
	}
	if err := b.sp.Stop(ctx); err != nil {
		b.log.Warn("stopping BGP speaker", "err", err)
	}
}

// Status is the subsystem's part of `baton status --json`.
type Status struct {
	Mode       string               `json:"mode"`
	Announcing bool                 `json:"announcing"`
	Prepend    int                  `json:"prepend,omitempty"`
	Reason     string               `json:"reason"`
	Since      time.Time            `json:"since,omitzero"`
	Prefixes   []string             `json:"prefixes"`
	Announced  []string             `json:"announced"`
	Peers      []speaker.PeerStatus `json:"peers"`
	LastError  string               `json:"last_error,omitempty"`
}

// Status returns the current status.
func (b *BGP) Status() Status {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b.mu.Lock()
	st := Status{Mode: b.cfg.Mode, Announcing: b.want.Announce, Prepend: b.want.Prepend, Reason: b.want.Reason,
		Since: b.changed, Prefixes: append([]string(nil), b.cfg.Prefixes...), LastError: b.lastErr}
	started := b.started
	b.mu.Unlock()
	st.Announced = []string{}
	if started {
		for _, r := range b.sp.Announced() {
			st.Announced = append(st.Announced, r.Prefix.String())
		}
		st.Peers = b.sp.Peers(ctx)
	}
	return st
}
