// Package daemon wires baton's subsystems together: it is the only package
// that imports them all. One goroutine owns the role machine; everything
// else talks to it through channels.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/hooks"
	"github.com/batonha/baton/internal/action/probe"
	"github.com/batonha/baton/internal/action/vip"
	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/check"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/heartbeat"
	"github.com/batonha/baton/internal/metrics"
	"github.com/batonha/baton/internal/peerlink"
	"github.com/batonha/baton/internal/role"
	"github.com/batonha/baton/internal/sdnotify"
	"github.com/batonha/baton/internal/store"
	"github.com/batonha/baton/internal/trim"
	"github.com/batonha/baton/internal/witness"
)

// Options are what the CLI hands the daemon.
type Options struct {
	Config  *config.Config
	Logger  *slog.Logger
	Clock   clock.Clock
	Environ []string
	Version string
}

// Daemon is one running baton node.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	clk     clock.Clock
	version string
	started time.Time

	machine  *role.Machine
	hb       *heartbeat.Monitor
	checks   *check.Set
	probe    *probe.Responder
	hooks    *hooks.Runner
	pipeline *action.Pipeline
	store    *store.Store
	metrics  *metrics.Metrics
	notify   *sdnotify.Notifier

	healthCh chan role.Health
	faultCh  chan actionFault
	stopped  chan struct{} // closed when the role loop has returned
	cmdCh    chan command
	vip      *vip.VIP
	link     *peerlink.Link // nil unless the link section is configured

	subsystems []subsystem

	// witness: the lease a node must hold to be ACTIVE (nil without one).
	keeper      *witness.Keeper
	witnessB    witness.Backend
	wantedLease bool
	// byPeerUntil: while the node holds the role by peer agreement, the
	// unix nanoseconds of its hold deadline as last computed by the loop;
	// 0 otherwise (read by the probe guard).
	byPeerUntil atomic.Int64
	byPeerFor   time.Duration // how long after the newest echo the hold lasts
	advert      role.PeerInfo // what the heartbeats advertise (owned by the loop)

	// Owned by the loop: the checks' verdict and the actions that refused
	// the active role; the machine sees their combination.
	checkHealth  role.Health
	actionFaults map[string]actionFault

	feedWatchdog func()

	mu          sync.Mutex
	snap        role.Snapshot
	transitions []api.Transition
}

// actionFault is an action that refused the active role (a VIP owned by
// another host, say); it holds the node in FAULT for faultHold.
type actionFault struct {
	action string
	err    string
	until  time.Time
}

const faultHold = 30 * time.Second

type command struct {
	kind  string // switchover | maintenance
	on    bool
	reply chan error
}

const historySize = 50

// New builds the daemon: it reads the key file and the persisted state and
// validates every part, but binds nothing yet.
func New(opt Options) (*Daemon, error) {
	cfg := opt.Config
	clk := opt.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	log := opt.Logger.With("node", cfg.Node.Name)
	d := &Daemon{
		cfg: cfg, log: log, clk: clk, version: opt.Version, started: clk.Now(),
		healthCh: make(chan role.Health, 16), faultCh: make(chan actionFault, 16), cmdCh: make(chan command),
		stopped:     make(chan struct{}),
		checkHealth: role.Health{Known: true, Healthy: true}, actionFaults: map[string]actionFault{},
		notify: sdnotify.New(opt.Environ),
	}

	// The first key signs; every key verifies, so that a new key can be
	// rolled out to both nodes before either signs with it.
	keys, err := heartbeat.LoadKeys(append([]string{cfg.Heartbeat.KeyFile}, cfg.Heartbeat.KeyFiles...)...)
	if err != nil {
		return nil, fmt.Errorf("loading heartbeat key (heartbeat.key_file): %w", err)
	}

	d.store, err = store.Open(cfg.Node.StateDir)
	if err != nil {
		return nil, fmt.Errorf("opening state directory (node.state_dir): %w", err)
	}
	prev, found, err := d.store.Load()
	if err != nil {
		return nil, fmt.Errorf("loading persisted state: %w", err)
	}
	if found {
		log.Info("restored state", "last_role", prev.Role, "term", prev.Term, "since", prev.Since)
	}

	hold := time.Duration(cfg.Heartbeat.Misses) * cfg.Heartbeat.Interval
	d.byPeerFor = hold - holdMargin(cfg)
	d.machine = role.New(role.Config{
		Node: cfg.Node.Name, Priority: cfg.Node.Priority, Preempt: cfg.Node.Preempt,
		PreemptDelay: cfg.Node.PreemptDelay, InitHold: hold,
		HandoverTimeout: max(5*time.Second, 4*hold),
		Witness:         cfg.Witness != nil,
		PeerTimeout:     hold,
		HoldMargin:      holdMargin(cfg),
	}, clk.Now(), prev.Term)
	if cfg.Witness != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		d.witnessB, err = witness.New(ctx, *cfg.Witness, witness.Options{Clock: clk, Logger: log})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("connecting to the witness (witness): %w", err)
		}
		d.keeper, err = witness.NewKeeper(cfg.Witness.KeeperConfig(cfg.Node.Name, d.witnessB, clk, log))
		if err != nil {
			return nil, fmt.Errorf("configuring the witness lease: %w", err)
		}
	}

	hbc := heartbeat.Config{
		Node: cfg.Node.Name, Peer: cfg.Peer.Name,
		Interval: cfg.Heartbeat.Interval, Misses: cfg.Heartbeat.Misses,
		Listen: cfg.Heartbeat.Listen, Keys: keys, ReplayWindow: cfg.Heartbeat.ReplayWindow,
		Clock: clk, Logger: log,
	}
	for _, p := range cfg.Peer.Paths {
		hbc.Paths = append(hbc.Paths, heartbeat.PathConfig{Name: p.Name, Address: p.Address, Source: p.Source})
	}
	if cfg.Peer.Channel.Enabled {
		hbc.Channel = &heartbeat.ChannelConfig{Listen: cfg.Peer.Channel.Listen, Address: cfg.Peer.Channel.Address}
	}
	for _, c := range cfg.Peer.Checks {
		hbc.Checks = append(hbc.Checks, heartbeat.CheckConfig{
			Name: c.Name, Type: c.Type, Target: c.Target, Interval: c.Interval,
			Timeout: c.Timeout, Misses: c.Misses, Insecure: c.Insecure,
		})
	}
	d.hb, err = heartbeat.New(hbc)
	if err != nil {
		return nil, fmt.Errorf("configuring heartbeats: %w", err)
	}

	if len(cfg.Checks) > 0 {
		d.checks, err = check.NewSet(cfg.Checks, clk, log, func(healthy bool, failing []string) {
			select {
			case d.healthCh <- role.Health{Known: true, Healthy: healthy, Failing: failing}:
			case <-d.stopped:
			}
		})
		if err != nil {
			return nil, fmt.Errorf("configuring checks: %w", err)
		}
		d.checkHealth = role.Health{Known: false}
		d.machine.SetHealth(clk.Now(), d.checkHealth)
	}

	d.hooks, err = hooks.New(cfg.Hooks, clk, log)
	if err != nil {
		return nil, fmt.Errorf("configuring hooks: %w", err)
	}

	// The takeover pipeline, in order: addresses first, then what
	// attracts traffic to them.
	var steps []action.Step
	if cfg.VIP != nil {
		d.vip, err = vip.New(*cfg.VIP, clk, log)
		if err != nil {
			return nil, fmt.Errorf("configuring VIPs: %w", err)
		}
		steps = append(steps, action.Step{Action: action.FaultOn(d.vip, vip.ErrConflict), Timeout: 5 * time.Second, Phase: action.PhaseAddresses})
	}
	if cfg.Probe.Mode != "off" {
		d.probe, err = probe.New(cfg.Probe, cfg.Node.Name, clk, log)
		if err != nil {
			return nil, fmt.Errorf("configuring probe responder: %w", err)
		}
		steps = append(steps, action.Step{Action: d.probe, Timeout: 5 * time.Second, Phase: action.PhaseProbe})
	}
	if cfg.Link.Configured() {
		d.link, err = peerlink.New(peerlink.Config{
			Node: cfg.Node.Name, Peer: cfg.Peer.Name, Listen: cfg.Link.Listen, Address: cfg.Link.Address,
			CAFile: cfg.Link.CAFile, CertFile: cfg.Link.CertFile, KeyFile: cfg.Link.KeyFile, Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("configuring the peer link (link): %w", err)
		}
	}
	d.metrics = metrics.New(d.Status)
	if err := d.buildSubsystems(); err != nil {
		return nil, err
	}
	for _, sub := range d.subsystems {
		steps = append(steps, sub.Steps()...)
	}
	action.SortSteps(steps)
	d.pipeline = action.NewPipeline(steps, reconcileEvery(cfg), clk, log, func(op string, r action.Result, since time.Duration) {
		if since >= 0 {
			d.metrics.Step(op, r.Action, since)
		}
		if op != "deactivate" && errors.Is(r.Err, action.ErrFault) {
			select {
			case d.faultCh <- actionFault{action: r.Action, err: r.Error, until: d.clk.Now().Add(faultHold)}:
			case <-d.stopped:
			}
		}
	})
	d.snap = d.machine.Snapshot()
	return d, nil
}

func reconcileEvery(cfg *config.Config) time.Duration {
	return max(time.Second, 10*cfg.Heartbeat.Interval)
}

// Run runs the node until ctx ends, then steps down and tells the peer.
func (d *Daemon) Run(ctx context.Context) error {
	d.log.Info("starting", "version", d.version, "priority", d.cfg.Node.Priority, "preempt", d.cfg.Node.Preempt,
		"interval", d.cfg.Heartbeat.Interval, "misses", d.cfg.Heartbeat.Misses)

	// Bind everything that can fail first, so that a bad address stops the
	// start with a clear error before any role is taken.
	if d.probe != nil {
		if err := d.probe.Start(ctx); err != nil {
			return err
		}
		defer d.probe.Close()
	}
	if d.vip != nil {
		// A node that starts is not active: drop VIPs a crash left behind.
		if err := d.vip.Cleanup(ctx); err != nil {
			return fmt.Errorf("removing stale VIPs: %w", err)
		}
		defer d.vip.Close()
	}
	token := ""
	if d.cfg.API.TokenFile != "" {
		b, err := os.ReadFile(d.cfg.API.TokenFile)
		if err != nil {
			return fmt.Errorf("reading API token (api.token_file): %w", err)
		}
		token = strings.TrimSpace(string(b))
		if len(token) < 16 {
			return fmt.Errorf("API token in %s is shorter than 16 characters", d.cfg.API.TokenFile)
		}
	}
	if d.link != nil {
		if err := d.link.Listen(); err != nil {
			return err
		}
	}
	apiSrv, err := api.Listen(d, api.Options{Socket: d.cfg.API.Socket, Listen: d.cfg.API.Listen, Token: token,
		Metrics: d.metrics.Handler(), Extra: d.subsystemRoutes}, d.log)
	if err != nil {
		return err
	}
	defer apiSrv.Close()
	var metricsLn net.Listener
	if d.cfg.Metrics.Listen != "" && d.cfg.Metrics.Listen != "off" {
		metricsLn, err = net.Listen("tcp", d.cfg.Metrics.Listen)
		if err != nil {
			return fmt.Errorf("binding metrics listener %s (metrics.listen): %w", d.cfg.Metrics.Listen, err)
		}
	}

	var wg sync.WaitGroup
	bg, stopBG := context.WithCancel(context.Background())
	defer func() { stopBG(); wg.Wait() }()
	goRun := func(fn func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); fn(bg) }()
	}

	// Heartbeats stop when ctx ends (sending a leaving message); the rest
	// stays up until this node has stepped down.
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	hbErr := make(chan error, 1)
	hbDone := make(chan struct{})
	d.advert = d.machine.Advert()
	d.hb.SetLocal(local(d.advert))
	go func() { defer close(hbDone); hbErr <- d.hb.Run(hbCtx) }()

	goRun(func(c context.Context) { _ = apiSrv.Serve(c) })
	if metricsLn != nil {
		srv := &http.Server{Handler: d.metrics.Handler(), ReadHeaderTimeout: 5 * time.Second}
		goRun(func(c context.Context) {
			go func() { <-c.Done(); srv.Close() }()
			_ = srv.Serve(metricsLn)
		})
	}
	goRun(d.pipeline.Run)
	if d.link != nil {
		goRun(func(c context.Context) {
			if err := d.link.Run(c); err != nil {
				d.log.Error("peer link stopped", "err", err)
			}
		})
	}
	subErr := make(chan error, len(d.subsystems))
	subCtx, stopSubs := context.WithCancel(context.Background())
	waitSubs := d.runSubsystems(subCtx, subErr)
	if d.checks != nil {
		goRun(func(c context.Context) { _ = d.checks.Run(c) })
	}
	var leaseEvents <-chan witness.Event
	if d.keeper != nil && d.probe != nil {
		// Answer as active only before the lease deadline: a node resuming
		// from a freeze longer than its lease must not answer 200 in the
		// moment before its keeper reports the lease lost.
		d.probe.SetGuard(func() bool {
			now := d.clk.Now()
			if until, ok := d.keeper.MustLeaveBy(); ok && now.Before(until) {
				return true
			}
			// Holding by peer agreement: the newest echo may have moved the
			// deadline on since the loop last looked.
			if d.byPeerUntil.Load() == 0 {
				return false
			}
			return now.Before(d.hb.Acked().Add(d.byPeerFor))
		})
	}
	if d.keeper != nil {
		leaseEvents = d.keeper.Events()
		goRun(func(c context.Context) {
			if err := d.keeper.Run(c); err != nil {
				d.log.Error("witness lease keeper stopped", "err", err)
			}
		})
		if cl, ok := d.witnessB.(interface{ Close() error }); ok {
			defer cl.Close()
		}
	}

	// Package initialisers of the linked SDKs touched megabytes of code
	// that will not run again: drop those pages from the resident set once
	// start-up is over.
	trimTimer := d.clk.AfterFunc(5*time.Second, func() {
		if n, err := trim.Executable(); err != nil {
			d.log.Debug("trimming the resident set", "err", err)
		} else {
			d.log.Debug("trimmed the resident set", "advised_mb", n>>20)
		}
	})
	defer trimTimer.Stop()

	_ = d.notify.Notify("READY=1")
	_ = d.notify.Status("INIT: listening for peer " + d.cfg.Peer.Name)
	if iv, ok := d.notify.WatchdogInterval(); ok {
		d.log.Info("systemd watchdog enabled", "interval", iv)
	}

	err = d.loop(ctx, hbErr, subErr, leaseEvents)
	close(d.stopped)

	// Shutdown: the heartbeat monitor has told the peer we are leaving (so
	// it takes over at once); now withdraw our own side effects.
	_ = d.notify.Notify("STOPPING=1")
	stopHB()
	<-hbDone
	if d.machine.State() == role.Active {
		d.log.Info("stepping down for shutdown")
		d.pipeline.Set(false, action.Takeover{Term: d.machine.Term(), Reason: "shutdown"}, d.clk.Now())
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := d.pipeline.WaitSettled(sctx); err != nil {
			d.log.Warn("stepping down for shutdown did not finish", "err", err)
		}
		cancel()
	}
	stopSubs()
	waitSubs()
	hctx, cancel := context.WithTimeout(context.Background(), d.cfg.Hooks.Timeout+time.Second)
	_ = d.hooks.Close(hctx)
	cancel()
	d.log.Info("stopped")
	return err
}

func local(p role.PeerInfo) heartbeat.Local {
	return heartbeat.Local{State: p.State, Term: p.Term, Priority: p.Priority, Healthy: p.Healthy,
		Maintenance: p.Maintenance, Handover: p.Handover, Preempt: p.Preempt, Yielding: p.Yielding}
}

// loop owns the role machine.
func (d *Daemon) loop(ctx context.Context, hbErr, subErr <-chan error, leaseEvents <-chan witness.Event) error {
	timer := d.clk.NewTimer(time.Hour)
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
			case "switchover":
				trs, err = d.machine.Switchover(d.clk.Now())
			case "maintenance":
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
			// This node cannot reach the witness. Were it to stay a healthy
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
		d.log.Info("witness: holding by peer agreement ended", "role", snap.State, "lease", snap.Lease)
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
	switch ev.Kind {
	case heartbeat.EventMessage:
		return d.machine.PeerMessage(now, ev.Info)
	case heartbeat.EventPeerAlive:
		d.log.Info("peer alive", "peer", d.cfg.Peer.Name, "path", ev.Path)
		if ev.Info.Name != "" {
			return d.machine.PeerMessage(now, ev.Info)
		}
		return d.machine.PeerAliveNoState(now)
	case heartbeat.EventPeerDead:
		d.log.Warn("peer dead", "peer", d.cfg.Peer.Name, "gone", ev.Gone, "leaving", ev.Leaving)
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
	snap := d.machine.Snapshot()
	if len(trs) == 0 {
		d.mu.Lock()
		changed := snapChanged(d.snap, snap)
		d.snap = snap
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
	if err := d.store.Save(store.State{Role: last.To.String(), Term: last.Term, Since: last.At, Node: d.cfg.Node.Name}); err != nil {
		d.log.Error("persisting state", "err", err)
	}
	_ = d.notify.Status(fmt.Sprintf("%s (term %d, %s)", last.To, last.Term, last.Reason))
	d.mu.Lock()
	d.snap = snap
	for _, tr := range trs {
		d.transitions = append(d.transitions, api.Transition{
			At: tr.At, From: tr.From.String(), To: tr.To.String(), Reason: string(tr.Reason), Detail: tr.Detail, Term: tr.Term,
		})
	}
	if len(d.transitions) > historySize {
		d.transitions = d.transitions[len(d.transitions)-historySize:]
	}
	d.mu.Unlock()
}

// Status implements api.Backend.
func (d *Daemon) Status() api.Status {
	d.mu.Lock()
	snap := d.snap
	trs := append([]api.Transition(nil), d.transitions...)
	d.mu.Unlock()

	st := api.Status{
		Node: d.cfg.Node.Name, Version: d.version, Role: snap.State.String(), Term: snap.Term,
		Reason: string(snap.Reason), Since: snap.Since, Priority: d.cfg.Node.Priority, Preempt: d.cfg.Node.Preempt,
		Maintenance: snap.Maintenance, Handover: snap.Handover, Healthy: snap.Health.Known && snap.Health.Healthy,
		LastError: snap.LastError, StartedAt: d.started,
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
	// Attach each pipeline run to the transition that decided it.
	runs := d.pipeline.Runs()
	for i := range trs {
		for _, run := range runs {
			if run.Decided.Equal(trs[i].At) && run.Term == trs[i].Term {
				for _, s := range run.Steps {
					trs[i].Steps = append(trs[i].Steps, api.Step{Action: s.Action, Op: s.Op, OK: s.OK, Error: s.Error,
						Ms: ms(s.Duration), DoneAtMs: ms(s.Started.Add(s.Duration).Sub(run.Decided))})
				}
				trs[i].TotalMs = ms(run.Finished.Sub(run.Decided))
			}
		}
	}
	st.Transitions = trs
	st.Subsystems = d.subsystemStatus()
	if d.keeper != nil {
		ws := d.keeper.Status()
		st.Witness = &api.Witness{Type: d.cfg.Witness.Type, Holding: ws.Holding, Holder: ws.Holder, Token: ws.Token,
			TimeLeftMs: ms(ws.TimeLeft), Renewals: ws.Renewals, RenewFailures: ws.RenewFailures, LastError: ws.LastError,
			Waiting: snap.WantsLease && !snap.Lease && !snap.HoldingByPeer, HoldingByPeer: snap.HoldingByPeer}
	}
	for _, h := range d.hooks.Status() {
		st.Hooks = append(st.Hooks, api.Hook{Path: h.Path, State: h.To, ExitCode: h.ExitCode, DurationMs: ms(h.Duration), Error: h.Error})
	}
	return st
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Switchover implements api.Backend: it returns once the role moved, or
// with the reason it did not.
func (d *Daemon) Switchover(ctx context.Context) error {
	before := d.Status().Role
	if err := d.command(ctx, command{kind: "switchover"}); err != nil {
		return err
	}
	return d.waitRole(ctx, func(s role.Snapshot) (bool, error) {
		if s.State.String() != before {
			return true, nil
		}
		if !s.Handover && s.LastError != "" {
			return true, fmt.Errorf("switchover: %s", s.LastError)
		}
		return false, nil
	})
}

// Maintenance implements api.Backend.
func (d *Daemon) Maintenance(ctx context.Context, on bool) error {
	if err := d.command(ctx, command{kind: "maintenance", on: on}); err != nil {
		return err
	}
	if !on {
		return nil
	}
	return d.waitRole(ctx, func(s role.Snapshot) (bool, error) { return s.State == role.Maintenance, nil })
}

func (d *Daemon) command(ctx context.Context, c command) error {
	c.reply = make(chan error, 1)
	select {
	case d.cmdCh <- c:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.stopped:
		return errors.New("baton is shutting down")
	}
	err := <-c.reply
	if errors.Is(err, role.ErrRefused) {
		return fmt.Errorf("%w: %v", api.ErrRefused, err)
	}
	return err
}

// waitRole polls the published snapshot until done says so or the
// handover deadline passes.
func (d *Daemon) waitRole(ctx context.Context, done func(role.Snapshot) (bool, error)) error {
	deadline := time.Now().Add(max(5*time.Second, 5*time.Duration(d.cfg.Heartbeat.Misses)*d.cfg.Heartbeat.Interval))
	for time.Now().Before(deadline) {
		d.mu.Lock()
		s := d.snap
		d.mu.Unlock()
		if ok, err := done(s); ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return errors.New("timed out waiting for the role to change")
}

// snapChanged reports whether anything a subsystem follows changed.
func snapChanged(a, b role.Snapshot) bool {
	return a.State != b.State || a.Term != b.Term || a.Maintenance != b.Maintenance ||
		a.Handover != b.Handover || a.Health.Healthy != b.Health.Healthy || a.Health.Known != b.Health.Known ||
		a.PeerAlive != b.PeerAlive || a.Peer != b.Peer
}
