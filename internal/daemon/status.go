package daemon

import (
	"time"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/role"
)

// Status implements api.Backend.
func (d *Daemon) Status() api.Status {
	d.mu.Lock()
	snap := d.snap
	var reasserts map[string]uint64
	for c, n := range d.reassertions {
		if reasserts == nil {
			reasserts = map[string]uint64{}
		}
		reasserts[string(c)] = n
	}
	var lastReassert *api.Reassertion
	if d.lastReassert != nil {
		r := *d.lastReassert
		lastReassert = &r
	}
	d.mu.Unlock()

	st := api.Status{
		Node: d.cfg.Node.Name, Version: d.version, Role: snap.State.String(), Term: snap.Term,
		Reason: string(snap.Reason), Since: snap.Since, Priority: d.cfg.Node.Priority, Preempt: d.cfg.Node.Preempt,
		Maintenance: snap.Maintenance, Handover: snap.Handover, Healthy: snap.Health.Known && snap.Health.Healthy,
		LastError: snap.LastError, StartedAt: d.started,
		LinksDown: snap.LinksDown, LinksRising: snap.LinksRising, Reassertions: reasserts, LastReassertion: lastReassert,
	}
	hs := d.hb.Status()
	st.Peer = api.PeerStatus{Name: d.cfg.Peer.Name, Alive: hs.Alive, Gone: hs.Gone, LastHeard: hs.LastHeard, Drops: hs.Drops}
	if hs.Peer != nil && hs.Alive {
		st.Peer.Role, st.Peer.Term, st.Peer.Priority = hs.Peer.State.String(), hs.Peer.Term, hs.Peer.Priority
		st.Peer.Healthy, st.Peer.Maintenance = hs.Peer.Healthy, hs.Peer.Maintenance
	}
	for _, p := range hs.Paths {
		st.Peer.Paths = append(st.Peer.Paths, api.Path{
			Name: p.Name, Kind: p.Kind, Up: p.Up, RTTMillis: float64(p.RTT.Microseconds()) / 1000,
			LastHeard: p.LastHeard, Sent: p.Sent, Received: p.Received, LastError: p.LastError,
			RTTHistory: d.samples.history(p.Name),
		})
	}
	if d.probe != nil {
		ps := d.probe.Stats()
		state := "unconnected"
		if ps.Connected {
			state = "connected"
		}
		code := 503
		if snap.State == role.Active {
			code = 200
		}
		st.Probe = &api.ProbeStatus{Mode: d.cfg.Probe.Mode, Listen: d.cfg.Probe.Listen, Answering: code, State: state,
			LastProbe: ps.LastProbe, LastSource: ps.LastSource, Count200: ps.Count200, Count503: ps.Count503}
	}
	if d.checks != nil {
		for _, c := range d.checks.Status() {
			st.Checks = append(st.Checks, api.Check{Name: c.Name, Type: c.Type, Healthy: c.Healthy, LastResult: c.LastResult, LastRun: c.LastRun})
		}
	}
	for _, r := range d.pipeline.Results() {
		st.Actions = append(st.Actions, api.Action{Name: r.Action, Op: r.Op, OK: r.OK, Error: r.Error, At: r.Started,
			DurationMs: ms(r.Duration), Attempts: r.Attempts})
	}
	st.Transitions = d.history.transitions()
	st.Subsystems = d.subsystemStatus()
	if d.keeper != nil {
		ws := d.keeper.Status()
		st.Witness = &api.Witness{Type: d.cfg.Witness.Type, Holding: ws.Holding, Holder: ws.Holder, Token: ws.Token,
			TimeLeftMs: ms(ws.TimeLeft), Renewals: ws.Renewals, RenewFailures: ws.RenewFailures, LastError: ws.LastError,
			Waiting: snap.WantsLease && !snap.Lease && !snap.HoldingByPeer, HoldingByPeer: snap.HoldingByPeer}
	}
	st.HooksDropped = d.hooks.Dropped()
	for _, h := range d.hooks.Status() {
		st.Hooks = append(st.Hooks, api.Hook{Path: h.Path, State: h.To, ExitCode: h.ExitCode, DurationMs: ms(h.Duration), Error: h.Error})
	}
	return st
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// snapChanged reports whether anything a subsystem follows changed.
func snapChanged(a, b role.Snapshot) bool {
	return a.State != b.State || a.Term != b.Term || a.Maintenance != b.Maintenance ||
		a.Handover != b.Handover || a.Health.Healthy != b.Health.Healthy || a.Health.Known != b.Health.Known ||
		a.PeerAlive != b.PeerAlive || a.Peer != b.Peer
}
