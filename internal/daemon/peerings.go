package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/peerings"
	"github.com/batonha/baton/internal/role"
	"github.com/batonha/baton/internal/store"
)

// PeeringsBackends builds the reconciler's inventory (the scale set) and
// route servers from the bgp.peerings section.
type PeeringsBackends func(ctx context.Context, c peerings.Config) (peerings.Inventory, []peerings.RouteServer, error)

// Who writes the route server's peerings when baton run reconciles them.
const (
	writerWitness = "witness lease" // the holder of the witness's -peerings lease
	writerActive  = "active node"   // the pair's ACTIVE node
	writerNone    = "none"          // no election possible: baton peerings runs elsewhere
)

// peeringWriter says who may write for cfg: with a witness
// (bgp.peerings.witness, else the role witness), the holder of its
// -peerings lease (as `baton peerings` elects); on a pair without
// one, the ACTIVE node; a node with neither (a scale-set instance with no
// witness) cannot know it is the only writer and leaves the peerings to
// `baton peerings` on one host (baton-peerings.service).
func peeringWriter(cfg *config.Config) string {
	switch {
	case cfg.BGP.Peerings.WriterWitness(cfg.Witness) != nil:
		return writerWitness
	case cfg.Peer.Name != "":
		return writerActive
	}
	return writerNone
}

// buildPeerings builds the in-daemon reconciler from bgp.peerings, or
// returns nil when the section is absent.
func (d *Daemon) buildPeerings() (subsystem, error) {
	if d.cfg.BGP == nil || d.cfg.BGP.Peerings == nil {
		return nil, nil
	}
	pc := *d.cfg.BGP.Peerings
	s := &peeringsSubsystem{writer: peeringWriter(d.cfg), cfg: d.cfg, clk: d.clk, log: d.log.With("subsystem", "peerings")}
	if s.writer == writerNone {
		s.note = "no witness and no peer to elect one writer among the instances: baton run does not reconcile the peerings; run baton peerings on one host (baton-peerings.service)"
		s.log.Warn("bgp.peerings: " + s.note)
		return s, nil
	}
	backends := d.peeringsBackends
	if backends == nil {
		backends = peerings.Backends
	}
	inv, servers, err := backends(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("configuring the peerings reconciler (bgp.peerings): %w", err)
	}
	asn := pc.PeerASN
	if asn == 0 {
		asn = d.cfg.BGP.ASN
	}
	s.rec = peerings.New(inv, servers, peerings.Options{NamePrefix: pc.NamePrefix, PeerASN: uint32(asn),
		OperationTimeout: pc.OperationTimeout, DrainTimeout: pc.DrainTimeout, Clock: d.clk, Logger: d.log})
	s.runner = peerings.NewRunner(s.rec, s, pc.Interval, d.clk, d.log)
	s.runner.OnRound = s.round
	s.runner.OnSkip = func() { s.skipped.Add(1) }
	if pc.Webhook.Listen != "" {
		b, err := store.ReadSecret(pc.Webhook.TokenFile, func(w string) { s.log.Warn("bgp.peerings.webhook.token_file: " + w) })
		if err != nil {
			return nil, fmt.Errorf("reading the peerings webhook token (bgp.peerings.webhook.token_file): %w", err)
		}
		if s.webhook, err = peerings.NewWebhook(strings.TrimSpace(string(b)), s.runner.Trigger, d.log); err != nil {
			return nil, fmt.Errorf("peerings webhook (bgp.peerings.webhook): %w", err)
		}
	}
	return s, nil
}

// peeringsSubsystem runs the route-server peering reconciler inside the
// daemon; exactly one instance writes (see peeringWriter).
type peeringsSubsystem struct {
	writer  string
	note    string
	cfg     *config.Config
	log     *slog.Logger
	clk     clock.Clock
	rec     *peerings.Reconciler
	runner  *peerings.Runner
	webhook *peerings.Webhook

	active  atomic.Bool
	lease   atomic.Pointer[peerings.Leader] // writerWitness: set by Run
	rounds  atomic.Uint64
	skipped atomic.Uint64

	mu      sync.Mutex
	lastErr string
}

func (s *peeringsSubsystem) Name() string { return "peerings" }

func (s *peeringsSubsystem) Steps() []action.Step { return nil }

// Leading implements peerings.Leader for the runner.
func (s *peeringsSubsystem) Leading(ctx context.Context) bool {
	switch s.writer {
	case writerActive:
		return s.active.Load()
	case writerWitness:
		if l := s.lease.Load(); l != nil {
			return (*l).Leading(ctx)
		}
	}
	return false
}

// RoleChanged: on a pair the node that becomes ACTIVE reconciles at once.
func (s *peeringsSubsystem) RoleChanged(snap role.Snapshot) {
	now := snap.State == role.Active
	if was := s.active.Swap(now); now && !was && s.writer == writerActive && s.runner != nil {
		s.runner.Trigger()
	}
}

func (s *peeringsSubsystem) round(_ []peerings.Plan, err error) {
	s.rounds.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = ""
	if err != nil {
		s.lastErr = err.Error()
	}
}

// Run keeps the writer's lease (witness), serves the webhook and runs
// rounds until ctx ends.
func (s *peeringsSubsystem) Run(ctx context.Context) error {
	if s.writer == writerNone {
		<-ctx.Done()
		return nil
	}
	if s.writer == writerWitness {
		l, err := peerings.WitnessLeader(ctx, *s.cfg.BGP.Peerings.WriterWitness(s.cfg.Witness), s.cfg.Node.Name, s.clk, s.log)
		if err != nil {
			return err
		}
		s.lease.Store(&l)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the other part stops too
	errc := make(chan error, 2)
	if s.webhook != nil {
		go func() { errc <- peerings.ServeWebhook(ctx, s.cfg.BGP.Peerings.Webhook, s.webhook) }()
	}
	go func() { errc <- s.runner.Run(ctx) }()
	// Both return nil only once ctx ends.
	if err := <-errc; err != nil {
		return fmt.Errorf("peerings reconciler: %w", err)
	}
	return nil
}

// peeringsStatus is subsystems.peerings in baton status --json.
type peeringsStatus struct {
	Writer    string          `json:"writer"`
	Leading   bool            `json:"leading"`
	Note      string          `json:"note,omitempty"`
	Rounds    uint64          `json:"rounds"`
	Skipped   uint64          `json:"skipped"`
	LastRound time.Time       `json:"last_round,omitzero"`
	Plans     []peerings.Plan `json:"plans,omitempty"`
	LastError string          `json:"last_error,omitempty"`
}

func (s *peeringsSubsystem) Status() any {
	st := peeringsStatus{Writer: s.writer, Note: s.note, Rounds: s.rounds.Load(), Skipped: s.skipped.Load(),
		Leading: s.Leading(context.Background())}
	if s.rec != nil {
		st.Plans, st.LastRound = s.rec.Last()
	}
	s.mu.Lock()
	st.LastError = s.lastErr
	s.mu.Unlock()
	return st
}
