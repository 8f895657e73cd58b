// Package localroutes is the `local_routes` action (overlay mode): only
// the appliances' own kernel routes change on failover. Each node streams
// its routes matching local_routes.match to the peer over the peer link —
// at once on every change (netlink events) and every interval — and keeps
// the copy the peer sent while it was active. On takeover the node
// installs that copy; on leaving ACTIVE it removes what it installed.
package localroutes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/role"
)

// Service is the peer-link service name.
const Service = "localroutes"

// Kernel reads and writes one routing table set.
type Kernel interface {
	List(table int) ([]Route, error)
	Replace(r Route) error
	Delete(r Route) error
	// Subscribe signals on changed (without blocking) for every route
	// change until ctx ends.
	Subscribe(ctx context.Context, changed chan<- struct{}) error
}

// Stream is a peer-link stream.
type Stream interface {
	Send(typ uint8, payload []byte) error
	Recv() (uint8, []byte, error)
	Close() error
}

// Options are the action's collaborators.
type Options struct {
	Kernel Kernel
	// Dial opens a stream to the peer's Service.
	Dial   func(ctx context.Context) (Stream, error)
	Clock  clock.Clock
	Logger *slog.Logger
}

// Sync copies the peer's routes and installs them on takeover.
type Sync struct {
	cfg   Config
	m     matcher
	opt   Options
	log   *slog.Logger
	roleC chan struct{} // a role change (the serving side sends at once)

	mu        sync.Mutex
	active    bool
	held      []Route // the peer's, sent while it was active
	heldAt    time.Time
	received  uint64
	installed []Route
	lastErr   string
}

// New builds the sync; nothing runs before Run.
func New(cfg Config, opt Options) (*Sync, error) {
	m, err := newMatcher(cfg.Match)
	if err != nil {
		return nil, fmt.Errorf("local_routes.match: %w", err)
	}
	if opt.Kernel == nil || opt.Dial == nil || opt.Clock == nil || opt.Logger == nil {
		return nil, errors.New("localroutes: Kernel, Dial, Clock and Logger are required")
	}
	return &Sync{cfg: cfg, m: m, opt: opt, log: opt.Logger.With("action", "local_routes"), roleC: make(chan struct{}, 1)}, nil
}

// own lists this node's matching routes.
func (s *Sync) own() ([]Route, error) {
	rs, err := s.opt.Kernel.List(s.m.table)
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(rs, func(r Route) bool { return !s.m.match(r) })
	sortRoutes(out)
	return out, nil
}

// RoleChanged records whether this node is active; it does not block.
func (s *Sync) RoleChanged(snap role.Snapshot) {
	s.mu.Lock()
	changed := s.active != (snap.State == role.Active)
	s.active = snap.State == role.Active
	s.mu.Unlock()
	if changed {
		select {
		case s.roleC <- struct{}{}:
		default:
		}
	}
}

// Serve streams this node's routes to the peer: at once, on every route
// change and role change, and every interval.
func (s *Sync) Serve(ctx context.Context, st Stream) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := make(chan struct{}, 1)
	if err := s.opt.Kernel.Subscribe(ctx, changed); err != nil {
		s.log.Warn("no route change events; sending every interval only", "err", err)
	}
	go func() { // the peer sends nothing; a read error means it left
		for {
			if _, _, err := st.Recv(); err != nil {
				cancel()
				return
			}
		}
	}()
	t := s.opt.Clock.NewTimer(0)
	defer t.Stop()
	for {
		rs, err := s.own()
		if err != nil {
			s.log.Warn("reading local routes", "err", err)
		} else {
			s.mu.Lock()
			snap := snapshot{Active: s.active, Routes: rs}
			s.mu.Unlock()
			data, _ := json.Marshal(snap)
			if err := st.Send(frameSnapshot, data); err != nil {
				return
			}
		}
		t.Reset(s.cfg.Interval)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-s.roleC:
		case <-t.C():
		}
	}
}

// Run receives the peer's routes until ctx ends, dialling again every
// interval when the stream breaks.
func (s *Sync) Run(ctx context.Context) error {
	for {
		st, err := s.opt.Dial(ctx)
		if err == nil {
			err = s.receive(ctx, st)
		}
		if ctx.Err() != nil {
			return nil
		}
		s.mu.Lock()
		s.lastErr = err.Error()
		s.mu.Unlock()
		if err := clock.Sleep(ctx, s.opt.Clock, s.cfg.Interval); err != nil {
			return nil
		}
	}
}

func (s *Sync) receive(ctx context.Context, st Stream) error {
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	defer st.Close()
	for {
		typ, p, err := st.Recv()
		if err != nil {
			return fmt.Errorf("receiving the peer's routes: %w", err)
		}
		if typ != frameSnapshot {
			continue
		}
		snap, err := decodeSnapshot(p)
		if err != nil {
			return err
		}
		// The match applies on this side too: a peer with a wider match
		// does not widen what this node installs.
		rs := slices.DeleteFunc(snap.Routes, func(r Route) bool { return !s.m.match(r) })
		s.mu.Lock()
		s.received++
		s.lastErr = ""
		if snap.Active {
			if !slices.Equal(s.held, rs) {
				s.log.Info("copied the active peer's routes", "routes", len(rs))
			}
			s.held, s.heldAt = rs, s.opt.Clock.Now()
		}
		s.mu.Unlock()
	}
}

// Name is the action's and the subsystem's name.
func (s *Sync) Name() string { return "local_routes" }

// Activate installs the copy of the peer's routes.
func (s *Sync) Activate(_ context.Context, _ action.Takeover) error {
	s.mu.Lock()
	held := slices.Clone(s.held)
	s.mu.Unlock()
	var errs []error
	var done []Route
	for _, r := range held {
		if err := s.opt.Kernel.Replace(r); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, r)
	}
	s.mu.Lock()
	for _, r := range done {
		if !slices.Contains(s.installed, r) {
			s.installed = append(s.installed, r)
		}
	}
	s.mu.Unlock()
	if len(done) > 0 {
		s.log.Info("installed the peer's routes", "routes", len(done))
	}
	return errors.Join(errs...)
}

// Deactivate removes the routes Activate installed.
func (s *Sync) Deactivate(_ context.Context, _ action.Takeover) error {
	s.mu.Lock()
	inst := s.installed
	s.installed = nil
	s.mu.Unlock()
	var errs []error
	for _, r := range inst {
		if err := s.opt.Kernel.Delete(r); err != nil {
			errs = append(errs, err)
		}
	}
	if len(inst) > 0 {
		s.log.Info("removed the copied routes", "routes", len(inst))
	}
	return errors.Join(errs...)
}

// Verify reinstalls copied routes that went missing while active.
func (s *Sync) Verify(ctx context.Context, active bool) error {
	if !active {
		return nil
	}
	s.mu.Lock()
	inst := slices.Clone(s.installed)
	s.mu.Unlock()
	if len(inst) == 0 {
		return nil
	}
	cur, err := s.opt.Kernel.List(s.m.table)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range inst {
		if !slices.Contains(cur, r) {
			s.log.Warn("a copied route went missing; reinstalling", "dst", r.Dst)
			errs = append(errs, s.opt.Kernel.Replace(r))
		}
	}
	return errors.Join(errs...)
}

// Status is shown under subsystems.local_routes.
type Status struct {
	Held      []Route   `json:"held"`
	HeldAt    time.Time `json:"held_at,omitzero"`
	Received  uint64    `json:"received"`
	Installed []Route   `json:"installed,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// Status reports the copy and what is installed.
func (s *Sync) Status() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Status{Held: slices.Clone(s.held), HeldAt: s.heldAt, Received: s.received, Installed: slices.Clone(s.installed), LastError: s.lastErr}
}
