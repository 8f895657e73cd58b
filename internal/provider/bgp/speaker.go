// Package bgp embeds a GoBGP v4 speaker that dials out to route servers
// (it never listens) and announces a desired set of IPv4 prefixes with
// next-hop self, optionally AS-path prepended. It tracks each session's
// state and turns BFD on only while a session is established: with
// GoBGP v4.6.0–v4.8.0 (osrg/gobgp#3561) a BFD expiry on a session that is
// already down queues a reset that kills the next session, which ends in a
// permanent flap loop.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/batonha/baton/internal/clock"
)

// BFD configures bidirectional forwarding detection on a session.
type BFD struct {
	MinTx      time.Duration // desired minimum transmit interval
	MinRx      time.Duration // required minimum receive interval
	Multiplier int           // detection multiplier
}

// Peer is one route-server instance.
type Peer struct {
	Address     netip.Addr
	ASN         uint32
	Port        int        // remote TCP port, 0 = 179
	Source      netip.Addr // optional local address to dial from
	MultihopTTL int        // eBGP multihop TTL, 0 = directly connected
	Password    string     // TCP-MD5 (RFC 2385) key, "" = none
	// MaxPrefixes tears the session down (CEASE, maximum number of
	// prefixes reached) when the peer has sent more prefixes than this;
	// it comes back after IdleHoldAfterReset. 0 = no limit, unless
	// NoPrefixes.
	MaxPrefixes uint32
	// NoPrefixes tears the session down at the first prefix the peer
	// sends (max_prefixes 0): the speaker only announces.
	NoPrefixes bool
	// Timers, in whole seconds on the wire.
	Hold, Keepalive, ConnectRetry, IdleHoldAfterReset time.Duration
	BFD                                               *BFD // nil = off
}

// Config configures a Speaker.
type Config struct {
	ASN      uint32
	RouterID netip.Addr // IPv4
	Peers    []Peer
	Logger   *slog.Logger
	// Clock times status and reconnects; nil = the wall clock.
	Clock clock.Clock
}

// Route is one announcement: a prefix with next-hop self, its AS path
// prepended Prepend extra times with the local ASN.
type Route struct {
	Prefix  netip.Prefix
	Prepend int
}

// PeerStatus is what status pages and metrics show about a session.
type PeerStatus struct {
	Address     string    `json:"address"`
	ASN         uint32    `json:"asn"`
	State       string    `json:"state"` // idle, connect, active, opensent, openconfirm, established
	Since       time.Time `json:"since,omitzero"`
	Established bool      `json:"established"`
	BFD         bool      `json:"bfd"` // BFD currently on for the session
	Received    uint64    `json:"received"`
	Accepted    uint64    `json:"accepted"`
	Advertised  uint64    `json:"advertised"`
	Flaps       int       `json:"flaps"` // times it left established
	LastDown    string    `json:"last_down,omitempty"`
}

// Speaker is the embedded BGP speaker. Start it once; Set may be called
// any number of times (idempotent); Stop withdraws everything and closes
// the sessions with a Cease notification.
type Speaker struct {
	cfg Config
	log *slog.Logger
	clk clock.Clock

	mu      sync.Mutex
	srv     *server.BgpServer
	stopped bool
	current map[netip.Prefix]int // announced prefix → prepend
	peers   map[netip.Addr]*peerState

	events    chan peerEvent
	refuse    chan netip.Addr // NoPrefixes peers that sent a prefix
	done      chan struct{}
	stopWatch context.CancelFunc
}

type peerState struct {
	cfg         Peer
	state       bgp.FSMState
	since       time.Time
	bfdOn       bool
	flaps       int
	lastDown    string
	established bool
}

type peerEvent struct {
	addr  netip.Addr
	state bgp.FSMState
	msg   string
	at    time.Time
}

// New returns a speaker for cfg; nothing runs until Start.
func New(cfg Config) (*Speaker, error) {
	if cfg.ASN == 0 {
		return nil, errors.New("configuring BGP speaker: local ASN is 0")
	}
	if !cfg.RouterID.Is4() {
		return nil, fmt.Errorf("configuring BGP speaker: router ID %v is not an IPv4 address", cfg.RouterID)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	s := &Speaker{cfg: cfg, log: cfg.Logger.With("component", "bgp"), clk: clk,
		current: map[netip.Prefix]int{}, peers: map[netip.Addr]*peerState{},
		events: make(chan peerEvent, 256), refuse: make(chan netip.Addr, 16), done: make(chan struct{})}
	for _, p := range cfg.Peers {
		if !p.Address.IsValid() {
			return nil, errors.New("configuring BGP speaker: peer without an address")
		}
		if _, dup := s.peers[p.Address]; dup {
			return nil, fmt.Errorf("configuring BGP speaker: peer %v listed twice", p.Address)
		}
		s.peers[p.Address] = &peerState{cfg: p, state: bgp.BGP_FSM_IDLE}
	}
	return s, nil
}

// Start starts the GoBGP server (no listener: ListenPort −1), watches
// the sessions and adds every peer. It returns once the peers are added;
// the sessions come up in the background.
func (s *Speaker) Start(ctx context.Context) error {
	// GoBGP logs every state change at info; keep its warnings only
	// (this speaker logs session changes itself).
	level := new(slog.LevelVar)
	level.Set(slog.LevelWarn)
	glog := slog.New(minLevel{level: level, next: s.cfg.Logger.Handler()}).With("component", "gobgp")
	srv := server.NewBgpServer(server.LoggerOption(glog, level))
	go srv.Serve()
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: s.cfg.ASN, RouterId: s.cfg.RouterID.String(), ListenPort: -1,
	}})
	if err != nil {
		srv.Stop()
		return fmt.Errorf("starting BGP (AS %d, router ID %v): %w", s.cfg.ASN, s.cfg.RouterID, err)
	}
	if err := rejectReceived(ctx, srv, s.cfg.Peers); err != nil {
		srv.Stop()
		return err
	}
	wctx, cancel := context.WithCancel(context.Background())
	err = srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
			if ev.Type != apiutil.PEER_EVENT_STATE {
				return
			}
			select {
			case s.events <- peerEvent{addr: ev.Peer.State.NeighborAddress, state: ev.Peer.State.SessionState,
				msg: ev.Peer.State.DisconnectMessage, at: s.clk.Now()}:
			default:
				s.log.Warn("dropping BGP peer event: queue full", "peer", ev.Peer.State.NeighborAddress.String())
			}
		},
	}, server.WatchPeer())
	if err != nil {
		cancel()
		srv.Stop()
		return fmt.Errorf("watching BGP peer events: %w", err)
	}
	if err := s.refuseAnyPrefix(wctx, srv); err != nil {
		cancel()
		srv.Stop()
		return err
	}
	s.mu.Lock()
	s.srv, s.stopWatch = srv, cancel
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		s.handleEvents(wctx)
	}()
	for _, p := range s.cfg.Peers {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(p, false)}); err != nil {
			_ = s.Stop(ctx)
			return fmt.Errorf("adding BGP peer %v (AS %d): %w", p.Address, p.ASN, err)
		}
	}
	return nil
}

// rejectReceived sets the import policy: the speaker only announces, so
// every route a peer sends is rejected, and a route server (or whoever
// took its address) steers nothing on the appliance. GoBGP's global
// import policy also filters the speaker's own paths, hence the
// neighbor set rather than a default reject.
func rejectReceived(ctx context.Context, srv *server.BgpServer, peers []Peer) error {
	if len(peers) == 0 {
		return nil
	}
	const set, policy = "baton-peers", "baton-reject-received"
	var list []string
	for _, p := range peers {
		list = append(list, netip.PrefixFrom(p.Address, p.Address.BitLen()).String())
	}
	if err := srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: set, List: list,
	}}); err != nil {
		return fmt.Errorf("defining the BGP peers' neighbor set: %w", err)
	}
	if err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: policy, Statements: []*api.Statement{{
		Name:       policy,
		Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: set}},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT},
	}}}}); err != nil {
		return fmt.Errorf("adding the BGP import policy: %w", err)
	}
	if err := srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT,
		Policies: []*api.Policy{{Name: policy}}, DefaultAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
	}}); err != nil {
		return fmt.Errorf("setting the BGP import policy to reject every received route: %w", err)
	}
	return nil
}

// refuseAnyPrefix watches the updates peers send (before the import
// policy) and tears down the session of a NoPrefixes peer at its first
// prefix: GoBGP's own limit cannot be 0 (0 means none).
func (s *Speaker) refuseAnyPrefix(ctx context.Context, srv *server.BgpServer) error {
	strict := map[netip.Addr]bool{}
	for _, p := range s.cfg.Peers {
		if p.NoPrefixes {
			strict[p.Address] = true
		}
	}
	if len(strict) == 0 {
		return nil
	}
	err := srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnPathUpdate: func(paths []*apiutil.Path, _ time.Time) {
			for _, p := range paths {
				if p.Withdrawal || !strict[p.PeerAddress] {
					continue
				}
				select {
				case s.refuse <- p.PeerAddress:
				default: // a teardown is already queued
				}
				return
			}
		},
	}, server.WatchUpdate(false, "", ""))
	if err != nil {
		return fmt.Errorf("watching BGP updates for max_prefixes 0: %w", err)
	}
	return nil
}

// tearDown ends the session of a peer that sent a prefix it may not.
func (s *Speaker) tearDown(ctx context.Context, addr netip.Addr) {
	s.mu.Lock()
	srv := s.srv
	ps := s.peers[addr]
	s.mu.Unlock()
	if srv == nil || ps == nil {
		return
	}
	s.log.Warn("BGP peer sent a prefix with max_prefixes 0: session torn down", "peer", addr.String())
	if err := srv.ShutdownPeer(ctx, &api.ShutdownPeerRequest{Address: addr.String(),
		Communication: "maximum number of prefixes reached (max_prefixes 0)"}); err != nil {
		s.log.Warn("tearing down BGP session", "peer", addr.String(), "err", err)
	}
}

// handleEvents runs outside GoBGP's callbacks, so that it may call back
// into the server (UpdatePeer) without deadlocking it.
func (s *Speaker) handleEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-s.events:
			s.onPeerEvent(ctx, ev)
		case addr := <-s.refuse:
			s.tearDown(ctx, addr)
		}
	}
}

func (s *Speaker) onPeerEvent(ctx context.Context, ev peerEvent) {
	s.mu.Lock()
	ps, ok := s.peers[ev.addr]
	if !ok || s.stopped {
		s.mu.Unlock()
		return
	}
	prev := ps.state
	ps.state, ps.since = ev.state, ev.at
	up := ev.state == bgp.BGP_FSM_ESTABLISHED
	dropped := ps.established && !up
	if dropped {
		ps.flaps++
		ps.lastDown = ev.msg
	}
	ps.established = up
	wantBFD := ps.cfg.BFD != nil && up
	change := wantBFD != ps.bfdOn
	srv := s.srv
	cfg := ps.cfg
	s.mu.Unlock()

	if prev != ev.state {
		if up {
			s.log.Info("BGP session established", "peer", ev.addr.String())
		} else if prev == bgp.BGP_FSM_ESTABLISHED {
			s.log.Warn("BGP session down", "peer", ev.addr.String(), "reason", ev.msg)
		}
	}
	if dropped {
		// GoBGP waits a fixed 5s in idle after a session drops (its
		// idle-hold-after-reset applies to administrative resets only),
		// then up to 2s before dialling. Re-creating the peer after the
		// configured idle hold makes it dial again within ~2s.
		s.clk.AfterFunc(cfg.IdleHoldAfterReset, func() { s.recycle(ev.addr) })
	}
	if !change || srv == nil {
		return
	}
	// BFD follows the session: on once established, off as soon as it
	// leaves established (see the package comment).
	if _, err := srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: apiPeer(cfg, wantBFD)}); err != nil {
		s.log.Warn("switching BFD on the BGP session", "peer", ev.addr.String(), "on", wantBFD, "err", err)
		return
	}
	s.mu.Lock()
	ps.bfdOn = wantBFD
	s.mu.Unlock()
}

// recycle deletes and re-adds a peer whose session dropped and has not
// come back, so that its FSM starts afresh without GoBGP's idle wait.
func (s *Speaker) recycle(addr netip.Addr) {
	s.mu.Lock()
	ps, ok := s.peers[addr]
	srv := s.srv
	if !ok || s.stopped || srv == nil || ps.established {
		s.mu.Unlock()
		return
	}
	cfg := ps.cfg
	ps.bfdOn = false
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		s.log.Warn("re-creating BGP peer after a drop", "peer", addr.String(), "err", err)
		return
	}
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(cfg, false)}); err != nil {
		s.log.Warn("re-creating BGP peer after a drop", "peer", addr.String(), "err", err)
	}
}

func secs(d time.Duration) uint64 { return uint64((d + time.Second/2) / time.Second) }

func apiPeer(p Peer, bfd bool) *api.Peer {
	ap := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN, AuthPassword: p.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: secs(p.Hold), KeepaliveInterval: secs(p.Keepalive),
			ConnectRetry: secs(p.ConnectRetry), IdleHoldTimeAfterReset: secs(p.IdleHoldAfterReset),
		}},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{
			Family:  &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
			Enabled: true,
		}}},
		Transport: &api.Transport{},
	}
	if p.MaxPrefixes > 0 && !p.NoPrefixes {
		// GoBGP counts the Adj-RIB-In (before the import policy) and
		// sends the CEASE itself.
		ap.AfiSafis[0].PrefixLimits = &api.PrefixLimit{
			Family:      &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
			MaxPrefixes: p.MaxPrefixes,
		}
	}
	if p.Port != 0 {
		ap.Transport.RemotePort = uint32(p.Port)
	}
	if p.Source.IsValid() {
		ap.Transport.LocalAddress = p.Source.String()
	}
	if p.MultihopTTL > 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.MultihopTTL)}
	}
	if bfd && p.BFD != nil {
		ap.Bfd = &api.BfdPeerConfig{
			Enabled:                  true,
			DesiredMinimumTxInterval: uint32(p.BFD.MinTx / time.Microsecond),
			RequiredMinimumReceive:   uint32(p.BFD.MinRx / time.Microsecond),
			DetectionMultiplier:      uint32(p.BFD.Multiplier),
		}
	}
	return ap
}

func (s *Speaker) path(r Route) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(r.Prefix)
	if err != nil {
		return nil, fmt.Errorf("encoding prefix %v: %w", r.Prefix, err)
	}
	nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified()) // next-hop self
	if err != nil {
		return nil, err
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP), nh}
	if r.Prepend > 0 {
		// The speaker adds its own ASN once on every eBGP session; these
		// are the extra copies.
		asns := make([]uint32, r.Prepend)
		for i := range asns {
			asns[i] = s.cfg.ASN
		}
		attrs = append(attrs, bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{
			bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, asns),
		}))
	}
	return &apiutil.Path{Family: bgp.RF_IPv4_UC, Nlri: nlri, Attrs: attrs}, nil
}

// Set makes the announced routes exactly routes: new prefixes and changed
// prepends are (re)announced, the rest withdrawn. It is idempotent.
func (s *Speaker) Set(ctx context.Context, routes []Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil || s.stopped {
		return errors.New("setting BGP announcements: speaker not running")
	}
	want := map[netip.Prefix]int{}
	for _, r := range routes {
		if !r.Prefix.Addr().Is4() {
			return fmt.Errorf("announcing %v: only IPv4 prefixes are supported", r.Prefix)
		}
		want[r.Prefix.Masked()] = r.Prepend
	}
	var add, del []*apiutil.Path
	var addP, delP []netip.Prefix
	for p, pre := range want {
		if cur, ok := s.current[p]; !ok || cur != pre {
			path, err := s.path(Route{Prefix: p, Prepend: pre})
			if err != nil {
				return err
			}
			add, addP = append(add, path), append(addP, p)
		}
	}
	for p, pre := range s.current {
		if _, ok := want[p]; !ok {
			path, err := s.path(Route{Prefix: p, Prepend: pre})
			if err != nil {
				return err
			}
			del, delP = append(del, path), append(delP, p)
		}
	}
	if len(del) > 0 {
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: del}); err != nil {
			return fmt.Errorf("withdrawing %v: %w", delP, err)
		}
		for _, p := range delP {
			delete(s.current, p)
		}
	}
	if len(add) > 0 {
		if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: add}); err != nil {
			return fmt.Errorf("announcing %v: %w", addP, err)
		}
		for _, p := range addP {
			s.current[p] = want[p]
		}
	}
	return nil
}

// Announced returns what is announced now, sorted by prefix.
func (s *Speaker) Announced() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Route, 0, len(s.current))
	for p, pre := range s.current {
		out = append(out, Route{Prefix: p, Prepend: pre})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix.String() < out[j].Prefix.String() })
	return out
}

// Peers returns every session's status, in configuration order.
func (s *Speaker) Peers(ctx context.Context) []PeerStatus {
	s.mu.Lock()
	srv := s.srv
	out := make([]PeerStatus, 0, len(s.cfg.Peers))
	for _, p := range s.cfg.Peers {
		ps := s.peers[p.Address]
		out = append(out, PeerStatus{
			Address: p.Address.String(), ASN: p.ASN, State: stateName(ps.state), Since: ps.since,
			Established: ps.established, BFD: ps.bfdOn, Flaps: ps.flaps, LastDown: ps.lastDown,
		})
	}
	stopped := s.stopped
	s.mu.Unlock()
	if srv == nil || stopped {
		return out
	}
	_ = srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		if p.Conf == nil {
			return
		}
		i := slices.IndexFunc(out, func(o PeerStatus) bool { return o.Address == p.Conf.NeighborAddress })
		if i < 0 {
			return
		}
		for _, af := range p.AfiSafis {
			if af.State != nil {
				out[i].Received += af.State.Received
				out[i].Accepted += af.State.Accepted
				out[i].Advertised += af.State.Advertised
			}
		}
	})
	return out
}

func stateName(s bgp.FSMState) string {
	switch s {
	case bgp.BGP_FSM_IDLE:
		return "idle"
	case bgp.BGP_FSM_CONNECT:
		return "connect"
	case bgp.BGP_FSM_ACTIVE:
		return "active"
	case bgp.BGP_FSM_OPENSENT:
		return "opensent"
	case bgp.BGP_FSM_OPENCONFIRM:
		return "openconfirm"
	case bgp.BGP_FSM_ESTABLISHED:
		return "established"
	}
	return "state" + strconv.Itoa(int(s))
}

// Stop withdraws every announcement, closes the sessions with a Cease
// notification and stops the server. It is safe to call more than once.
func (s *Speaker) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	if srv == nil || s.stopped {
		s.mu.Unlock()
		return nil
	}
	var errs []error
	if len(s.current) > 0 {
		if err := srv.DeletePath(apiutil.DeletePathRequest{DeleteAll: true}); err != nil {
			errs = append(errs, fmt.Errorf("withdrawing announcements: %w", err))
		}
		clear(s.current)
	}
	s.stopped = true
	stopWatch := s.stopWatch
	s.mu.Unlock()
	stopWatch()
	if err := srv.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		errs = append(errs, fmt.Errorf("stopping BGP: %w", err))
	}
	srv.Stop()
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	return errors.Join(errs...)
}

// minLevel drops records below level.
type minLevel struct {
	level slog.Leveler
	next  slog.Handler
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.level.Level() && m.next.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.next.Handle(ctx, r) }

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{level: m.level, next: m.next.WithAttrs(as)}
}

func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{level: m.level, next: m.next.WithGroup(name)}
}
