package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/hooks"
	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/heartbeat"
	"github.com/batonha/baton/internal/role"
	"github.com/batonha/baton/internal/witness"
)

// loop owns the role machine.
func (d *Daemon) loop(ctx context.Context, hbErr, subErr <-chan error, leaseEvents <-chan witness.Event) error {
	timer := d.timer
	defer timer.Stop()
	// The watchdog is fed from this loop, so a wedged role machine gets
	// the process restarted by systemd.
	var wdC <-chan time.Time
	wdEvery, wdOn := d.notify.WatchdogInterval()
	if wdOn {
		wd := d.clk.NewTimer(wdEvery)
		defer wd.Stop()
		wdC = wd.C()
		d.feedWatchdog = func() {
			_ = d.notify.Notify("WATCHDOG=1")
			wd.Reset(wdEvery)
		}
	}
	d.apply(d.initial)
	d.arm(timer)
	for {
		var trs []role.Transition
		select {
		case <-ctx.Done():
			return nil
		case err := <-hbErr:
			if err != nil {
				return fmt.Errorf("heartbeats: %w", err)
			}
			return nil
		case err := <-subErr:
			return err
		case ev := <-d.hb.Events():
			trs = d.onHeartbeat(ev)
		case u := <-d.linkCh:
			if u.Up {
				d.log.Info("interface up", "interface", u.Name)
			} else {
				d.log.Warn("interface down", "interface", u.Name)
			}
			trs = d.machine.SetLink(d.clk.Now(), u.Name, u.Up)
		case h := <-d.healthCh:
			d.checkHealth = h
			trs = d.machine.SetHealth(d.clk.Now(), d.health())
		case ev := <-leaseEvents:
			trs = d.onLease(ev)
		case f := <-d.faultCh:
			d.log.Error("action refused the active role", "action", f.action, "reason", f.err)
			d.actionFaults[f.action] = f
			trs = d.machine.SetHealth(d.clk.Now(), d.health())
		case cmd := <-d.cmdCh:
			var err error
			switch cmd.kind {
			case cmdSwitchover:
				trs, err = d.machine.Switchover(d.clk.Now())
			case cmdMaintenance:
				if err = d.machine.MaintenanceRefused(); err == nil || !cmd.on {
					err = nil
					trs = d.machine.SetMaintenance(d.clk.Now(), cmd.on)
				}
			}
			cmd.reply <- err
		case <-timer.C():
			// A deadline of holding by peer agreement: the newest echo first.
			trs = d.machine.PeerAcked(d.clk.Now(), d.hb.Acked())
			trs = append(trs, d.machine.Tick(d.clk.Now())...)
			if d.expireFaults() {
				trs = append(trs, d.machine.SetHealth(d.clk.Now(), d.health())...)
			}
		case <-wdC:
			d.feedWatchdog()
		}
		d.apply(trs)
		if c, ok := d.machine.TakeReassert(); ok {
			d.reassert(c)
		}
		d.arm(timer)
		d.noteHoldingByPeer()
		if d.keeper != nil && d.machine.WantsLease() != d.wantedLease {
			d.wantedLease = d.machine.WantsLease()
			d.keeper.Want(d.wantedLease)
		}
	}
}

// onLease feeds the witness keeper's news to the role machine.
func (d *Daemon) onLease(ev witness.Event) []role.Transition {
	now := d.clk.Now()
	switch e := ev.(type) {
	case witness.Acquired:
		if !d.machine.Snapshot().Lease {
			d.log.Info("witness lease acquired", "token", e.Token, "must_leave_by", e.MustLeaveBy)
		}
		trs := d.clearWitnessFault(now)
		return append(trs, d.machine.LeaseAcquired(now, e.Token)...)
	case witness.Lost:
		d.log.Warn("witness lease lost", "token", e.Token, "reason", e.Reason)
		trs := d.machine.PeerAcked(now, d.hb.Acked())
		trs = append(trs, d.machine.LeaseLost(now)...)
		if e.Reason == witnessDeadline && d.machine.State() != role.Active {
			// This node cannot reach the witness (and its peer does not
			// defer to it: it left ACTIVE). Were it to stay a healthy
			// standby that ranks first, the peer would defer to it and
			// nobody would hold the role: stand aside (FAULT) for one lease
			// time so that the peer takes the lease once it expires.
			d.actionFaults["witness"] = actionFault{action: "witness", err: "witness unreachable: " + e.Reason,
				until: now.Add(d.cfg.Witness.LeaseTTL())}
			trs = append(trs, d.machine.SetHealth(now, d.health())...)
		}
		return trs
	case witness.Held:
		d.log.Info("witness lease held by another node", "holder", e.Holder, "token", e.Token)
		return append(d.clearWitnessFault(now), d.machine.LeaseHeld(now)...)
	}
	return nil
}

// holdMargin is how long before the peer could find this node dead an
// active node holding by peer agreement steps down: the witness's
// step_down, but never so much that fewer than three heartbeat intervals
// are left between the newest echo and the deadline (an echo is up to
// about two intervals old before the next one arrives). With the usual
// three misses that is no margin: the node steps down, and its probe stops
// answering, the moment the peer could first find it dead, and the peer
// still needs a round trip to the witness before it may take over.
func holdMargin(cfg *config.Config) time.Duration {
	if cfg.Witness == nil {
		return 0
	}
	hold := time.Duration(cfg.Heartbeat.Misses) * cfg.Heartbeat.Interval
	return max(0, min(cfg.Witness.StepDown, hold-3*cfg.Heartbeat.Interval))
}

// noteHoldingByPeer publishes whether the node holds the role by peer
// agreement (for the probe guard) and logs when that starts and ends.
func (d *Daemon) noteHoldingByPeer() {
	snap := d.machine.Snapshot()
	was := d.byPeerUntil.Load() != 0
	switch {
	case snap.HoldingByPeer && !snap.HoldUntil.IsZero():
		d.byPeerUntil.Store(snap.HoldUntil.UnixNano())
		if !was {
			d.log.Warn("witness: unreachable, holding by peer agreement", "peer", d.cfg.Peer.Name, "until", snap.HoldUntil)
		}
	case was:
		d.byPeerUntil.Store(0)
		d.log.Info("witness: holding by peer agreement ended", "role", snap.State.String(), "lease", snap.Lease)
	}
}

// witnessDeadline is the keeper's reason when a renewal did not succeed in
// time (the witness is unreachable or too slow).
const witnessDeadline = "renew deadline passed"

// clearWitnessFault ends a witness-unreachable fault: the witness answers.
func (d *Daemon) clearWitnessFault(now time.Time) []role.Transition {
	if _, ok := d.actionFaults["witness"]; !ok {
		return nil
	}
	delete(d.actionFaults, "witness")
	return d.machine.SetHealth(now, d.health())
}

// health combines the checks' verdict with the actions' faults.
func (d *Daemon) health() role.Health {
	h := d.checkHealth
	h.Failing = append([]string(nil), h.Failing...)
	for _, f := range d.actionFaults {
		h.Healthy = false
		h.Failing = append(h.Failing, "action "+f.action+": "+f.err)
	}
	return h
}

// expireFaults forgets action faults whose hold has passed, so the node
// may try the role again.
func (d *Daemon) expireFaults() bool {
	now, changed := d.clk.Now(), false
	for k, f := range d.actionFaults {
		if !now.Before(f.until) {
			delete(d.actionFaults, k)
			changed = true
		}
	}
	return changed
}

// arm sets timer to the machine's next deadline.
func (d *Daemon) arm(t clock.Timer) {
	t.Stop()
	next, ok := d.machine.Next()
	for _, f := range d.actionFaults {
		if !ok || f.until.Before(next) {
			next, ok = f.until, true
		}
	}
	if !ok {
		t.Reset(time.Hour)
		return
	}
	t.Reset(max(0, next.Sub(d.clk.Now())))
}

func (d *Daemon) onHeartbeat(ev heartbeat.Event) []role.Transition {
	now := d.clk.Now()
	d.publishHeartbeat(ev)
	switch ev.Kind {
	case heartbeat.EventMessage:
		return d.machine.PeerMessage(now, ev.Info)
	case heartbeat.EventPeerAlive:
		d.log.Info("peer alive", "peer", d.cfg.Peer.Name, "path", ev.Path)
		d.peerLostAt = time.Time{}
		if ev.Info.Name != "" {
			return d.machine.PeerMessage(now, ev.Info)
		}
		return d.machine.PeerAliveNoState(now)
	case heartbeat.EventPeerDead:
		d.log.Warn("peer dead", "peer", d.cfg.Peer.Name, "gone", ev.Gone, "leaving", ev.Leaving)
		d.peerLostAt = ev.At
		if last := d.hb.Status().LastHeard; !ev.Gone && !ev.Leaving && !last.IsZero() && last.Before(ev.At) {
			d.peerLostAt = last // silence: detected from the last heartbeat heard
		}
		return d.machine.PeerDead(now, ev.Gone || ev.Leaving)
	case heartbeat.EventPathUp:
		d.log.Info("path up", "peer", d.cfg.Peer.Name, "path", ev.Path)
	case heartbeat.EventPathDown:
		d.log.Warn("path down", "peer", d.cfg.Peer.Name, "path", ev.Path)
	}
	return nil
}

// apply carries out transitions: the actions first (on a takeover the
// probe flip is the product), then tell the peer (so that a dual-active
// window closes within one message), then hooks, metrics and disk.
func (d *Daemon) apply(trs []role.Transition) {
	var last role.Transition
	if len(trs) > 0 {
		last = trs[len(trs)-1]
		d.pipeline.Set(last.To == role.Active, action.Takeover{Term: last.Term, Reason: string(last.Reason), Token: d.machine.LeaseToken()}, last.At)
	}
	// Tell the peer at once whenever what we advertise changed, so that a
	// dual-active window closes within one message.
	if adv := d.machine.Advert(); adv != d.advert {
		d.advert = adv
		d.hb.SetLocal(local(adv))
		d.hb.SendNow()
	}
	d.persist(trs)
	snap := d.machine.Snapshot()
	if len(trs) == 0 {
		d.mu.Lock()
		changed := snapChanged(d.snap, snap)
		d.publishLocked(snap)
		d.mu.Unlock()
		if changed {
			d.notifySubsystems(snap)
		}
		return
	}
	defer d.notifySubsystems(snap)
	for _, tr := range trs {
		d.log.Info("role changed", "from", tr.From.String(), "to", tr.To.String(), "reason", string(tr.Reason),
			"term", tr.Term, "role", tr.To.String(), "detail", tr.Detail)
		d.metrics.Transition(tr.From.String(), tr.To.String(), string(tr.Reason))
		if d.probe != nil {
			d.probe.SetState(strings.ToLower(tr.To.String()))
		}
		d.hooks.Run(hooks.Transition{
			Node: d.cfg.Node.Name, Peer: d.cfg.Peer.Name, From: tr.From.String(), To: tr.To.String(),
			Reason: string(tr.Reason), Term: tr.Term, At: tr.At,
		})
	}
	_ = d.notify.Status(fmt.Sprintf("%s (term %d, %s)", last.To, last.Term, last.Reason))
	d.mu.Lock()
	d.publishLocked(snap)
	d.mu.Unlock()
	recs := make([]api.Transition, len(trs))
	for i, tr := range trs {
		recs[i] = api.Transition{At: tr.At, From: tr.From.String(), To: tr.To.String(), Reason: string(tr.Reason), Detail: tr.Detail, Term: tr.Term}
		if lost := d.peerLostAt; (tr.Reason == role.ReasonPeerLost || tr.Reason == role.ReasonPeerGone) && !lost.IsZero() && !tr.At.Before(lost) {
			recs[i].DetectedMs = ms(tr.At.Sub(lost))
		}
	}
	d.publishTransitions(recs)
}

// publishLocked makes snap the one Status and waitRole read, and wakes
// the waiters. d.mu must be held.
func (d *Daemon) publishLocked(snap role.Snapshot) {
	d.snap = snap
	close(d.snapCh)
	d.snapCh = make(chan struct{})
}

// persist saves what must survive a restart whenever it changed: the role
// of the last transition (if any), the highest term seen and maintenance.
func (d *Daemon) persist(trs []role.Transition) {
	st, was := d.persisted, d.persisted
	if n := len(trs); n > 0 {
		st.Role, st.Term, st.Since = trs[n-1].To.String(), trs[n-1].Term, trs[n-1].At
	}
	st.Node = d.cfg.Node.Name
	st.HighestTerm = d.machine.HighestTerm()
	st.Maintenance = d.machine.Snapshot().Maintenance
	if st.Role == was.Role && st.Term == was.Term && st.Since.Equal(was.Since) && st.Node == was.Node &&
		st.HighestTerm == was.HighestTerm && st.Maintenance == was.Maintenance {
		return
	}
	if err := d.store.Save(st); err != nil {
		d.log.Error("persisting state", "err", err)
		return
	}
	d.persisted = st
}

// reassert re-runs every action's announce-and-verify at once: the world
// may point at the peer (it was active too, or this node's link was down).
func (d *Daemon) reassert(c role.Cause) {
	if d.machine.State() != role.Active {
		return
	}
	now := d.clk.Now()
	d.log.Info("re-asserting the active role", "cause", string(c), "term", d.machine.Term())
	d.metrics.Reassertion(string(c))
	d.pipeline.Reassert(string(c))
	d.mu.Lock()
	d.reassertions[c]++
	d.lastReassert = &api.Reassertion{Cause: string(c), At: now, Term: d.machine.Term()}
	d.mu.Unlock()
}
