package vip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
)

// Netlinker is what the action needs from the host's network stack. The
// real one is *linux.Host; Fake records calls for tests.
type Netlinker interface {
	AddAddress(ctx context.Context, iface string, p netip.Prefix) error
	RemoveAddress(ctx context.Context, iface string, p netip.Prefix) error
	HasAddress(ctx context.Context, iface string, p netip.Prefix) (bool, error)
	// Announce sends one round of gratuitous ARP (IPv4) or unsolicited
	// neighbour advertisement (IPv6) for ip from iface's MAC.
	Announce(ctx context.Context, iface string, ip netip.Addr) error
	// ProbeConflict returns the MAC of another host answering for ip, or
	// nil; answers from a MAC in ignore do not count.
	ProbeConflict(ctx context.Context, iface string, ip netip.Addr, timeout time.Duration, ignore ...net.HardwareAddr) (net.HardwareAddr, error)
	EnsureMacvlan(parent, name string, mac net.HardwareAddr) error
	DeleteLink(name string) error
}

// ErrConflict is wrapped by the error Activate returns when another host on
// the segment already uses a virtual address.
var ErrConflict = errors.New("virtual address is in use by another host")

// ConflictError tells which address is taken and by whom.
type ConflictError struct {
	Address   netip.Prefix
	Interface string
	MAC       net.HardwareAddr
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("vip %s on %s is already in use by the host with MAC %s; refusing to take it", e.Address, e.Interface, e.MAC)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// MacvlanNamer names the macvlan that carries the virtual MAC on parent.
type MacvlanNamer func(parent string) string

// addr is one validated virtual address.
type addr struct {
	prefix netip.Prefix
	parent string // the configured interface
	dev    string // where the address lives: parent, or its macvlan
}

// VIP is the vip action. It implements action.Action.
type VIP struct {
	cfg    Config
	addrs  []addr
	vmac   net.HardwareAddr
	links  []string // macvlans, in parent order: dev names
	parent map[string]string
	ignore map[string]bool
	// ignored lists the same MACs for the probe, so that the peer still
	// answering for an address does not hide a third host that also does.
	ignored []net.HardwareAddr
	nl      Netlinker
	clk     clock.Clock
	log     *slog.Logger
	closer  io.Closer

	op sync.Mutex // serialises Activate, Deactivate, Verify, Cleanup

	mu    sync.Mutex // guards the announcement schedule below
	gen   uint64     // bumped to cancel scheduled announcements
	timer clock.Timer
	left  int // burst rounds still to send
}

var _ action.Action = (*VIP)(nil)

// NewWith returns the action using nl for the network stack. name gives the
// macvlan name for a parent interface when virtual_mac is set.
func NewWith(cfg Config, nl Netlinker, name MacvlanNamer, clk clock.Clock, log *slog.Logger) (*VIP, error) {
	cfg = cfg.WithDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("configuring the vip action: %w", errors.Join(errs...))
	}
	v := &VIP{cfg: cfg, nl: nl, clk: clk, log: log.With("component", "vip"),
		parent: map[string]string{}, ignore: map[string]bool{}}
	if cfg.VirtualMAC != "" {
		v.vmac, _ = parseUnicastMAC(cfg.VirtualMAC)
		v.ignore[v.vmac.String()] = true
		v.ignored = append(v.ignored, v.vmac)
	}
	for _, m := range cfg.ConflictIgnore {
		mac, _ := parseUnicastMAC(m)
		v.ignore[mac.String()] = true
		v.ignored = append(v.ignored, mac)
	}
	for _, a := range cfg.Addresses {
		p, _ := parsePrefix(a.Address)
		dev := a.Interface
		if v.vmac != nil {
			dev = name(a.Interface)
			if _, ok := v.parent[dev]; !ok {
				v.parent[dev] = a.Interface
				v.links = append(v.links, dev)
			}
		}
		v.addrs = append(v.addrs, addr{prefix: p, parent: a.Interface, dev: dev})
	}
	return v, nil
}

// Name is "vip".
func (v *VIP) Name() string { return "vip" }

// Close stops announcing and releases what New opened. It does not remove
// addresses; Deactivate does.
func (v *VIP) Close() error {
	v.stopAnnouncing()
	if v.closer != nil {
		return v.closer.Close()
	}
	return nil
}

// Activate adds every virtual address (on the macvlans, when virtual_mac is
// set), probing first when conflict_check is on, announces them at once
// and schedules the rest of the burst and the refresh.
func (v *VIP) Activate(ctx context.Context, t action.Takeover) error {
	v.op.Lock()
	defer v.op.Unlock()
	if err := v.ensureLinks(); err != nil {
		return err
	}
	missing, err := v.missing(ctx)
	if err != nil {
		return err
	}
	if err := v.probe(ctx, missing); err != nil {
		return err
	}
	// Each address is a part of the step (action.ReportPart): from its
	// add to its first announcement.
	started := map[netip.Prefix]time.Time{}
	for _, a := range missing {
		started[a.prefix] = v.clk.Now()
		if err := v.nl.AddAddress(ctx, a.dev, a.prefix); err != nil {
			err = fmt.Errorf("adding %s on %s: %w", a.prefix, a.dev, err)
			action.ReportPart(ctx, action.NewPart(a.prefix.String()+" on "+a.dev, started[a.prefix], v.clk.Now().Sub(started[a.prefix]), 1, err))
			return fmt.Errorf("activating vip: %w", err)
		}
		v.log.Info("vip added", "address", a.prefix.String(), "interface", a.dev, "term", t.Term, "reason", t.Reason)
	}
	var errs []error
	for _, a := range v.addrs {
		t0, added := started[a.prefix]
		if !added {
			t0 = v.clk.Now()
		}
		err := v.nl.Announce(ctx, a.dev, a.prefix.Addr())
		if err != nil {
			err = fmt.Errorf("announcing %s on %s: %w", a.prefix.Addr(), a.dev, err)
			errs = append(errs, err)
		}
		if added || err != nil {
			action.ReportPart(ctx, action.NewPart(a.prefix.String()+" on "+a.dev, t0, v.clk.Now().Sub(t0), 1, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("activating vip: %w", err)
	}
	v.startAnnouncing()
	return nil
}

// Deactivate stops announcing and removes the addresses (and macvlans).
func (v *VIP) Deactivate(ctx context.Context, t action.Takeover) error {
	v.op.Lock()
	defer v.op.Unlock()
	return v.release(ctx, "vip removed", "reason", t.Reason, "term", t.Term)
}

// Cleanup removes virtual addresses left behind by a previous run (a crash
// while active). Call it at start on a node that is not active.
func (v *VIP) Cleanup(ctx context.Context) error {
	v.op.Lock()
	defer v.op.Unlock()
	return v.release(ctx, "removed stale vip left by a previous run", "reason", "startup cleanup")
}

// Verify checks the addresses against the role: an active node that lost
// one re-adds it (after a probe, when conflict_check is on) and restarts the
// announcement burst; a node that is not active removes any it holds.
func (v *VIP) Verify(ctx context.Context, active bool) error {
	v.op.Lock()
	defer v.op.Unlock()
	if !active {
		return v.release(ctx, "removed vip held while not active", "reason", "drift")
	}
	if err := v.ensureLinks(); err != nil {
		return err
	}
	missing, err := v.missing(ctx)
	if err != nil || len(missing) == 0 {
		return err
	}
	if err := v.probe(ctx, missing); err != nil {
		return err
	}
	var errs []error
	repaired := 0
	for _, a := range missing {
		v.log.Warn("vip missing while active; re-adding", "address", a.prefix.String(), "interface", a.dev, "reason", "drift")
		if err := v.nl.AddAddress(ctx, a.dev, a.prefix); err != nil {
			errs = append(errs, fmt.Errorf("repairing vip: %w", err))
			continue
		}
		repaired++
	}
	if repaired > 0 {
		if err := v.announceAll(ctx); err != nil {
			errs = append(errs, fmt.Errorf("repairing vip: %w", err))
		}
		v.startAnnouncing()
	}
	return errors.Join(errs...)
}

func (v *VIP) ensureLinks() error {
	for _, dev := range v.links {
		if err := v.nl.EnsureMacvlan(v.parent[dev], dev, v.vmac); err != nil {
			return fmt.Errorf("preparing virtual MAC %s: %w", v.vmac, err)
		}
	}
	return nil
}

func (v *VIP) missing(ctx context.Context) ([]addr, error) {
	var out []addr
	for _, a := range v.addrs {
		ok, err := v.nl.HasAddress(ctx, a.dev, a.prefix)
		if err != nil {
			return nil, fmt.Errorf("checking vip %s on %s: %w", a.prefix, a.dev, err)
		}
		if !ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// probe looks for other hosts using the addresses, all at once. It returns
// a *ConflictError for the first address (in configuration order) that
// another host answers for.
func (v *VIP) probe(ctx context.Context, as []addr) error {
	if !v.cfg.ConflictCheck || len(as) == 0 {
		return nil
	}
	type result struct {
		mac net.HardwareAddr
		err error
	}
	res := make([]result, len(as))
	var wg sync.WaitGroup
	for i, a := range as {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mac, err := v.nl.ProbeConflict(ctx, a.dev, a.prefix.Addr(), v.cfg.ConflictTimeout, v.ignored...)
			res[i] = result{mac, err}
		}()
	}
	wg.Wait()
	for i, r := range res {
		a := as[i]
		if r.err != nil {
			return fmt.Errorf("checking that vip %s is free: %w", a.prefix, r.err)
		}
		if r.mac == nil {
			continue
		}
		if v.ignore[r.mac.String()] {
			v.log.Info("vip answered by an ignored MAC (the peer); taking it", "address", a.prefix.String(), "interface", a.dev, "mac", r.mac.String())
			continue
		}
		err := &ConflictError{Address: a.prefix, Interface: a.dev, MAC: r.mac}
		v.log.Error("vip conflict", "address", a.prefix.String(), "interface", a.dev, "mac", r.mac.String(), "reason", "conflict")
		return err
	}
	return nil
}

// release stops announcing, then removes every address this node holds and
// the macvlans, logging msg for each address it found.
func (v *VIP) release(ctx context.Context, msg string, kv ...any) error {
	v.stopAnnouncing()
	var errs []error
	for _, a := range v.addrs {
		ok, err := v.nl.HasAddress(ctx, a.dev, a.prefix)
		if err != nil {
			errs = append(errs, fmt.Errorf("checking vip %s on %s: %w", a.prefix, a.dev, err))
			continue
		}
		if !ok {
			continue
		}
		if err := v.nl.RemoveAddress(ctx, a.dev, a.prefix); err != nil {
			errs = append(errs, fmt.Errorf("releasing vip: %w", err))
			continue
		}
		v.log.Info(msg, append([]any{"address", a.prefix.String(), "interface", a.dev}, kv...)...)
	}
	for _, dev := range v.links {
		if err := v.nl.DeleteLink(dev); err != nil {
			errs = append(errs, fmt.Errorf("releasing virtual MAC: %w", err))
		}
	}
	return errors.Join(errs...)
}

// announceAll sends one round for every address; it returns the first
// error but tries them all.
func (v *VIP) announceAll(ctx context.Context) error {
	var errs []error
	for _, a := range v.addrs {
		if err := v.nl.Announce(ctx, a.dev, a.prefix.Addr()); err != nil {
			errs = append(errs, fmt.Errorf("announcing %s on %s: %w", a.prefix.Addr(), a.dev, err))
		}
	}
	return errors.Join(errs...)
}

// startAnnouncing (re)starts the schedule after the first round was sent:
// GARPCount-1 more rounds GARPInterval apart, then one every Refresh.
func (v *VIP) startAnnouncing() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen++
	if v.timer != nil {
		v.timer.Stop()
		v.timer = nil
	}
	v.left = v.cfg.GARPCount - 1
	v.armLocked(v.gen)
}

func (v *VIP) stopAnnouncing() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen++
	if v.timer != nil {
		v.timer.Stop()
		v.timer = nil
	}
}

func (v *VIP) armLocked(gen uint64) {
	var d time.Duration
	switch {
	case v.left > 0:
		d = v.cfg.GARPInterval
	case v.cfg.Refresh > 0:
		d = v.cfg.Refresh
	default:
		v.timer = nil
		return
	}
	v.timer = v.clk.AfterFunc(d, func() { v.tick(gen) })
}

// tick sends one scheduled round. It holds mu while sending, so once
// stopAnnouncing returns no round is in flight.
func (v *VIP) tick(gen uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if gen != v.gen {
		return
	}
	if v.left > 0 {
		v.left--
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := v.announceAll(ctx)
	cancel()
	if err != nil {
		v.log.Warn("announcing vip failed", "err", err, "reason", "announce")
	}
	v.armLocked(gen)
}
