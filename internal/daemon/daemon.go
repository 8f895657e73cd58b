// Package daemon wires baton's subsystems together: it is the only package
// that imports them all. One goroutine owns the role machine; everything
// else talks to it through channels.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/hooks"
	"github.com/batonha/baton/internal/action/probe"
	"github.com/batonha/baton/internal/action/vip"
	"github.com/batonha/baton/internal/alerts"
	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/check"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/feed"
	"github.com/batonha/baton/internal/heartbeat"
	"github.com/batonha/baton/internal/linkwatch"
	"github.com/batonha/baton/internal/metrics"
	"github.com/batonha/baton/internal/peerlink"
	"github.com/batonha/baton/internal/peerview"
	"github.com/batonha/baton/internal/role"
	"github.com/batonha/baton/internal/sdnotify"
	"github.com/batonha/baton/internal/store"
	"github.com/batonha/baton/internal/trim"
	"github.com/batonha/baton/internal/ui"
	"github.com/batonha/baton/internal/witness"
)

// Options are what the CLI hands the daemon.
type Options struct {
	Config  *config.Config
	Logger  *slog.Logger
	Clock   clock.Clock
	Environ []string
	Version string
	// Links reports the interfaces' state; nil means the kernel's
	// (netlink).
	Links linkwatch.Source
	// PeeringsBackends builds the bgp.peerings reconciler's inventory and
	// route servers; nil means the clouds' (peerings.Backends).
	PeeringsBackends PeeringsBackends
}

// peerWatch is what the daemon needs of the heartbeat monitor: events
// about the peer in, this node's advertised state out.
type peerWatch interface {
	Run(ctx context.Context) error
	Events() <-chan heartbeat.Event
	SetLocal(heartbeat.Local)
	SendNow()
	Status() heartbeat.Status
	// Acked is the newest of this node's heartbeats the peer echoed.
	Acked() time.Time
}

// Daemon is one running baton node.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	clk     clock.Clock
	version string
	started time.Time

	machine  *role.Machine
	hb       peerWatch
	checks   *check.Set
	probe    *probe.Responder
	hooks    *hooks.Runner
	pipeline *action.Pipeline
	store    *store.Store
	metrics  *metrics.Metrics
	notify   *sdnotify.Notifier

	healthCh chan role.Health
	faultCh  chan actionFault
	linkCh   chan linkwatch.Update
	links    linkwatch.Source
	// pathLinks: the interfaces the heartbeat paths leave by.
	pathLinks []string
	stopped   chan struct{} // closed when the role loop has returned
	cmdCh     chan command
	vip       *vip.VIP
	link      *peerlink.Link // nil unless the link section is configured
	peerView  *peerview.View // the peer's own status over the link; nil without it

	subsystems []subsystem
	// peeringsBackends: Options.PeeringsBackends or the clouds'.
	peeringsBackends PeeringsBackends

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
	// peerLostAt is when the peer was lost: the last heartbeat heard from
	// it (when the silence began) or its channel's close; zero while it is
	// alive (owned by the loop).
	peerLostAt time.Time

	// Owned by the loop: the checks' verdict and the actions that refused
	// the active role; the machine sees their combination.
	checkHealth  role.Health
	actionFaults map[string]actionFault

	feedWatchdog func()

	events  *feed.Hub          // the event stream (GET /v1/events)
	history *history           // the transitions of the last day, on disk
	samples *sampler           // the paths' recent round trips
	alerts  *alerts.Dispatcher // nil without an alerts section

	// timer wakes the loop at the role machine's next deadline.
	timer clock.Timer
	// initial are the transitions New caused (maintenance restored), for
	// the loop to carry out first.
	initial []role.Transition
	// persisted is what the state file holds (owned by the loop).
	persisted store.State

	mu           sync.Mutex
	snap         role.Snapshot
	snapCh       chan struct{} // closed and replaced when snap changes
	reassertions map[role.Cause]uint64
	lastReassert *api.Reassertion
}

// actionFault is an action that refused the active role (a VIP owned by
// another host, say); it holds the node in FAULT for faultHold.
type actionFault struct {
	action string
	err    string
	until  time.Time
}

const faultHold = 30 * time.Second

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
		linkCh: make(chan linkwatch.Update, 16), links: opt.Links,
		snapCh: make(chan struct{}), reassertions: map[role.Cause]uint64{},
		peeringsBackends: opt.PeeringsBackends,
	}
	if d.links == nil {
		d.links = linkwatch.Netlink{}
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
		log.Info("restored state", "last_role", prev.Role, "term", prev.Term, "highest_term", prev.HighestTerm,
			"maintenance", prev.Maintenance, "since", prev.Since)
	}
	d.persisted = prev

	d.events = feed.New(cfg.Node.Name, clk, 256)
	d.samples = newSampler()
	if d.history, err = loadHistory(cfg.Node.StateDir, clk, log); err != nil {
		return nil, err
	}
	if cfg.Alerts != nil {
		if d.alerts, err = alerts.New(*cfg.Alerts, cfg.Node.Name, clk, log); err != nil {
			return nil, fmt.Errorf("configuring alerts (alerts): %w", err)
		}
	}
	d.pathLinks = pathLinks(cfg, log)
	hold := time.Duration(cfg.Heartbeat.Misses) * cfg.Heartbeat.Interval
	rise := cfg.Node.LinkRise
	if rise == 0 {
		rise = cfg.Heartbeat.Interval
	}
	d.machine = role.New(role.Config{
		Node: cfg.Node.Name, Priority: cfg.Node.Priority, Preempt: cfg.Node.Preempt,
		PreemptDelay: cfg.Node.PreemptDelay, InitHold: hold,
		HandoverTimeout: max(5*time.Second, 4*hold),
		Witness:         cfg.Witness != nil,
		Links:           trackedLinks(cfg),
		PathLinks:       d.pathLinks,
		LinkRise:        rise,
		PeerTimeout:     hold,
		HoldMargin:      holdMargin(cfg),
	}, clk.Now(), max(prev.Term, prev.HighestTerm))
	d.byPeerFor = hold - holdMargin(cfg)
	if prev.Maintenance {
		// A node restarted mid-upgrade stays out of the way until the
		// operator turns maintenance off.
		log.Info("maintenance mode restored from the state file")
		d.initial = d.machine.SetMaintenance(clk.Now(), true)
	}
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
		Clock: clk, Logger: log, Epoch: nextEpoch(prev, clk.Now()),
	}
	d.persisted.Epoch = hbc.Epoch
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
	if cfg.Probe.Mode != probe.ModeOff {
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
		d.link.Handle(peerview.Service, func(ctx context.Context, st *peerlink.Stream) { _ = peerview.Serve(ctx, st, d.Status) })
		d.peerView = peerview.New(func(ctx context.Context) (peerview.Stream, error) {
			st, err := d.link.Dial(ctx, peerview.Service)
			if err != nil {
				return nil, err
			}
			return st, nil
		}, clk)
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
		d.publishStep(op, r, since)
		if op != "deactivate" && errors.Is(r.Err, action.ErrFault) {
			select {
			case d.faultCh <- actionFault{action: r.Action, err: r.Error, until: d.clk.Now().Add(faultHold)}:
			case <-d.stopped:
			}
		}
	})
	d.pipeline.OnRun(d.onRun)
	d.snap = d.machine.Snapshot()
	d.timer = clk.NewTimer(time.Hour)
	return d, nil
}

// nextEpoch is this run's heartbeat epoch: one more than the last run's,
// so that the peer tells a restart from a replay whatever the wall clock
// does. Without a persisted epoch (first start, or a state file from
// before epochs were persisted) it is the clock's unix nanoseconds, which
// is above what such a peer has heard from this node.
func nextEpoch(prev store.State, now time.Time) uint64 {
	if prev.Epoch == 0 {
		return uint64(now.UnixNano())
	}
	return prev.Epoch + 1
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
		var err error
		if token, err = readToken(d.cfg.API.TokenFile); err != nil {
			return err
		}
	}
	if d.link != nil {
		if err := d.link.Listen(); err != nil {
			return err
		}
	}
	apiTLS := d.cfg.APITLS()
	page, err := ui.New(ui.Options{Status: d.Status, Peer: d.peerView.Get, ReadOnly: d.cfg.API.ReadOnly, Logger: d.log})
	if err != nil {
		return err
	}
	apiSrv, err := api.Listen(d, api.Options{Socket: d.cfg.API.Socket, Listen: d.cfg.API.Listen, Token: token,
		TLSCert: apiTLS.CertFile, TLSKey: apiTLS.KeyFile, Metrics: d.metrics.Handler(),
		Events: d.events, ReadOnly: d.cfg.API.ReadOnly,
		Extra: func(mux *http.ServeMux) { d.subsystemRoutes(mux); page.Register(mux) }}, d.log)
	if err != nil {
		return err
	}
	defer apiSrv.Close()
	uiSrv, err := d.listenUI(apiSrv)
	if err != nil {
		return err
	}
	metricsSrv, metricsLn, err := metrics.Listen(d.cfg.Metrics.Listen, d.cfg.Metrics.TokenFile, d.metrics.Handler(), d.log)
	if err != nil {
		return err
	}
	d.countListenerDrops(apiSrv, metricsLn)

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
	// The epoch is saved before the first heartbeat carries it: a run must
	// never reuse the epoch of an earlier one.
	if err := d.store.Save(d.persisted); err != nil {
		return fmt.Errorf("persisting the heartbeat epoch: %w", err)
	}
	hbErr := make(chan error, 1)
	hbDone := make(chan struct{})
	d.advert = d.machine.Advert()
	d.hb.SetLocal(local(d.advert))
	go func() { defer close(hbDone); hbErr <- d.hb.Run(hbCtx) }()

	goRun(func(c context.Context) { _ = apiSrv.Serve(c) })
	if uiSrv != nil {
		goRun(uiSrv)
	}
	if metricsLn != nil {
		goRun(func(c context.Context) {
			go func() { <-c.Done(); metricsSrv.Close() }()
			_ = metricsSrv.Serve(metricsLn)
		})
	}
	goRun(d.pipeline.Run)
	goRun(d.runSampler)
	goRun(d.history.run)
	if d.alerts != nil {
		goRun(func(c context.Context) { d.alerts.Run(c, d.events) })
	}
	goRun(d.watchLinks)
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
			return d.byPeerUntil.Load() != 0 && now.Before(d.hb.Acked().Add(d.byPeerFor))
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
