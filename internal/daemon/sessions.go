package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/peerlink"
	"github.com/batonha/baton/internal/provider/conntrack"
	"github.com/batonha/baton/internal/role"
	"github.com/batonha/baton/internal/sessionsync"
)

// buildSessionSync builds the subsystem from its config section, or returns nil
// when the section is absent.
func (d *Daemon) buildSessionSync() (subsystem, error) {
	c := d.cfg.Sessions
	if c == nil || !c.Enabled {
		return nil, nil
	}
	if d.link == nil {
		return nil, errors.New("session sync (sessions) needs the peer link: configure the link section")
	}
	// One request socket per CPU (up to 4): a commit writes in parallel.
	table, err := conntrack.OpenPool(min(runtime.NumCPU(), 4))
	if err != nil {
		return nil, fmt.Errorf("session sync: %w", err)
	}
	s, err := sessionsync.New(sessionsync.Options{
		Config: *c, Peer: d.cfg.Peer.Name, Table: table, Clock: d.clk, Logger: d.log,
		Exclude: d.ownAddresses(),
		Watch: func() (sessionsync.Watcher, error) {
			w, err := conntrack.NewWatcher(c.EventBuffer, c.EventBufferMax)
			if err != nil {
				return nil, err
			}
			return w, nil
		},
		Dial: func(ctx context.Context) (sessionsync.Stream, error) {
			st, err := d.link.Dial(ctx, sessionsync.Service)
			if err != nil {
				return nil, err
			}
			return st, nil
		},
	})
	if err != nil {
		table.Close()
		return nil, err
	}
	d.link.Handle(sessionsync.Service, func(ctx context.Context, st *peerlink.Stream) { s.Serve(ctx, st) })
	if err := d.metrics.Registry().Register(s.Collector()); err != nil {
		table.Close()
		return nil, fmt.Errorf("registering session sync metrics: %w", err)
	}
	return &sessionSub{s: s, table: table}, nil
}

// ownAddresses are the addresses of the appliances' own flows
// (heartbeats, peer channel, peer link): never synced.
func (d *Daemon) ownAddresses() []netip.Prefix {
	var out []netip.Prefix
	add := func(hostport string, bare bool) {
		h := hostport
		if !bare {
			var err error
			if h, _, err = net.SplitHostPort(hostport); err != nil {
				return
			}
		}
		if a, err := netip.ParseAddr(h); err == nil && !a.IsUnspecified() {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	for _, p := range d.cfg.Peer.Paths {
		add(p.Address, false)
		add(p.Source, true)
	}
	add(d.cfg.Peer.Channel.Address, false)
	add(d.cfg.Peer.Channel.Listen, false)
	add(d.cfg.Link.Address, false)
	add(d.cfg.Link.Listen, false)
	return out
}

type sessionSub struct {
	s     *sessionsync.Syncer
	table *conntrack.Pool
}

func (s *sessionSub) Name() string { return "sessions" }

func (s *sessionSub) Run(ctx context.Context) error {
	defer s.table.Close()
	return s.s.Run(ctx)
}

// Steps: the commit runs first, before anything attracts traffic.
func (s *sessionSub) Steps() []action.Step {
	return []action.Step{{Action: s.s.Action(), Timeout: 30 * time.Second, Phase: action.PhasePrepare}}
}

func (s *sessionSub) Status() any { return s.s.Status() }

func (s *sessionSub) RoleChanged(snap role.Snapshot) { s.s.RoleChanged(snap.State == role.Active) }

func (s *sessionSub) Routes(mux *http.ServeMux) { s.s.Routes(mux) }
