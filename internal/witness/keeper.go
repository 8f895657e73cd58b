package witness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
)

// KeeperConfig configures a Keeper.
type KeeperConfig struct {
	// Node is this node's name, the lease holder it acquires for.
	Node string
	// TTL is the lease time requested from the witness.
	TTL time.Duration
	// DriftMargin allows for the witness's clock running faster than ours
	// over one TTL and for the witness expiring leases a little late or
	// early: the node must have stepped down by TTL - DriftMargin after
	// the last successful request was sent (MustLeaveBy).
	DriftMargin time.Duration
	// StepDown is the time reserved for leaving ACTIVE (withdrawing the
	// probe answer, announcements and addresses): Lost is reported
	// StepDown before MustLeaveBy. Zero means DriftMargin, or TTL/10 when
	// that is zero too.
	StepDown time.Duration
	// Retry is the wait after a failed or refused request before the
	// next one. Zero means TTL/40, at least 25ms and at most 100ms: a node
	// waiting for an expired lease, or for the witness to come back,
	// notices within that much.
	Retry time.Duration
	// RequestTimeout bounds one request (zero: 300ms). A request lost in
	// an outage is given up after it and sent again (on a new connection),
	// so that a witness that is back is reached within about
	// RequestTimeout + Retry. It is also never longer than the time left
	// before the lease must be given up.
	RequestTimeout time.Duration
	// Backend is the witness store.
	Backend Backend
	// Clock is the time source; nil means clock.Real.
	Clock clock.Clock
	// Logger receives state changes; nil discards them.
	Logger *slog.Logger
}

// Event is what a Keeper reports on Events: Acquired, Lost or Held.
type Event interface{ isEvent() }

// Acquired reports that the node now holds the lease.
type Acquired struct {
	Token       uint64    // fencing token of the grant
	MustLeaveBy time.Time // the current step-down deadline (it moves on with every renewal)
}

// Lost reports that the node no longer holds the lease (or can no longer
// be sure it does): it must leave ACTIVE now.
type Lost struct {
	Token  uint64 // the token of the grant that ended
	Reason string // why: "renew deadline passed", "released", the witness's answer
}

// Held reports that an acquire was refused because another node holds the
// lease. It is sent when the holder changes, not on every retry.
type Held struct {
	Holder string
	Token  uint64
}

func (Acquired) isEvent() {}
func (Lost) isEvent()     {}
func (Held) isEvent()     {}

// Status is a snapshot of the Keeper for the status page and metrics.
type Status struct {
	Node    string
	Wanted  bool   // the daemon wants the lease
	Holding bool   // this node holds the lease
	Holder  string // the holder last seen: this node while Holding, else the node that refused us ("" unknown or free)
	Token   uint64 // the holder's fencing token, 0 when unknown
	// MustLeaveBy is the step-down deadline while Holding; TimeLeft is the
	// time until it at the moment of the snapshot.
	MustLeaveBy   time.Time
	TimeLeft      time.Duration
	Renewals      uint64    // successful renewals since start
	RenewFailures uint64    // failed renew attempts since start (ErrLost included)
	Failures      int       // consecutive failed requests of any kind, 0 after a success
	LastRenew     time.Time // when the last successful request was sent
	LastError     string    // the last request error, "" after a success
}

// Keeper holds the lease for the daemon. It acquires when asked (Want),
// renews at TTL/3 after each successful request was sent, retries failed
// renewals every Retry, and reports Lost when it has not renewed by
// TTL - DriftMargin - StepDown after the last successful request was sent,
// so the node has left ACTIVE by MustLeaveBy = TTL - DriftMargin, before
// the witness lets anyone else acquire. All times are measured on the
// injected clock from the moment a request was sent.
type Keeper struct {
	cfg    KeeperConfig
	log    *slog.Logger
	events chan Event
	wantCh chan struct{}

	mu     sync.Mutex
	want   bool
	status Status
}

// NewKeeper checks cfg and returns a Keeper; call Run to start it.
func NewKeeper(cfg KeeperConfig) (*Keeper, error) {
	switch {
	case cfg.Node == "":
		return nil, errors.New("creating witness keeper: node name is empty")
	case cfg.Backend == nil:
		return nil, errors.New("creating witness keeper: no backend")
	case cfg.TTL <= 0:
		return nil, fmt.Errorf("creating witness keeper: ttl %v must be positive", cfg.TTL)
	case cfg.DriftMargin < 0 || cfg.StepDown < 0 || cfg.Retry < 0 || cfg.RequestTimeout < 0:
		return nil, errors.New("creating witness keeper: drift margin, step-down time, retry and request timeout must not be negative")
	}
	if cfg.StepDown == 0 {
		cfg.StepDown = cfg.DriftMargin
		if cfg.StepDown == 0 {
			cfg.StepDown = cfg.TTL / 10
		}
	}
	if cfg.DriftMargin+cfg.StepDown > cfg.TTL/2 {
		return nil, fmt.Errorf("creating witness keeper: drift margin %v + step-down %v must be at most half the ttl %v, to leave time to renew",
			cfg.DriftMargin, cfg.StepDown, cfg.TTL)
	}
	if cfg.Retry == 0 {
		cfg.Retry = min(max(cfg.TTL/40, 25*time.Millisecond), 100*time.Millisecond)
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Keeper{
		cfg:    cfg,
		log:    log.With("component", "witness"),
		events: make(chan Event, 32),
		wantCh: make(chan struct{}, 1),
		status: Status{Node: cfg.Node},
	}, nil
}

// Want tells the Keeper whether the daemon wants the lease (the node would
// be, or is, ACTIVE) or not. Want(false) while holding reports Lost with
// reason "released" and releases the lease at the witness; call it after
// the node has left ACTIVE.
func (k *Keeper) Want(hold bool) {
	k.mu.Lock()
	k.want = hold
	k.status.Wanted = hold
	k.mu.Unlock()
	select {
	case k.wantCh <- struct{}{}:
	default:
	}
}

// Events delivers Acquired, Lost and Held in order. The daemon must keep
// reading it: the Keeper waits for room before it goes on.
func (k *Keeper) Events() <-chan Event { return k.events }

// Status returns a snapshot.
func (k *Keeper) Status() Status {
	k.mu.Lock()
	s := k.status
	k.mu.Unlock()
	if s.Holding {
		s.TimeLeft = max(s.MustLeaveBy.Sub(k.cfg.Clock.Now()), 0)
	}
	return s
}

// MustLeaveBy returns the deadline by which an active node must have left
// ACTIVE, and whether the node holds the lease at all. The role machine
// may use it as a second line of defence beside the Lost event.
func (k *Keeper) MustLeaveBy() (time.Time, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.status.MustLeaveBy, k.status.Holding
}

// opKind is a request the Keeper sends to the backend.
type opKind int

const (
	opAcquire opKind = iota
	opRenew
	opRelease
)

func (o opKind) String() string {
	return [...]string{"acquire", "renew", "release"}[o]
}

// result is the answer to one request.
type result struct {
	kind opKind
	sent time.Time
	in   Grant // the grant renewed or released
	out  Grant
	err  error
}

// run is the state owned by Run's goroutine.
type run struct {
	k       *Keeper
	ctx     context.Context
	results chan result

	busy   bool
	cancel context.CancelFunc // of the request in flight

	grant    *Grant    // held lease
	lostAt   time.Time // when Lost is reported unless renewed
	leaveBy  time.Time // MustLeaveBy
	release  *Grant    // lease to release once no request is in flight
	nextAt   time.Time // when the next acquire or renew is due
	wantSeen bool      // the want the loop last acted on

	armedAt                 time.Time // the nextAt that nextT is armed for
	nextT, lostT            clock.Timer
	nextC, lostC            <-chan time.Time
	lastHeld                string
	renewals, renewFailures uint64
	failures                int
	lastRenew               time.Time
	lastErr                 string
	seenHolder              string
	seenToken               uint64
}

// Run keeps the lease until ctx ends. It does not release the lease when
// it returns: call Want(false) first (after leaving ACTIVE) for a quick
// hand-over; otherwise the lease simply expires.
func (k *Keeper) Run(ctx context.Context) error {
	r := &run{k: k, ctx: ctx, results: make(chan result, 1)}
	r.wantSeen = r.wanted()
	defer func() {
		if r.cancel != nil {
			r.cancel()
		}
		stop(r.nextT)
		stop(r.lostT)
	}()
	r.step()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-k.wantCh:
			r.onWant()
		case <-r.nextC:
			r.nextC = nil
		case <-r.lostC:
			r.lostC = nil
			r.onDeadline()
		case res := <-r.results:
			r.busy = false
			r.cancel()
			r.cancel = nil
			r.onResult(res)
		}
		r.step()
		r.publish()
	}
}

func stop(t clock.Timer) {
	if t != nil {
		t.Stop()
	}
}

func (r *run) now() time.Time { return r.k.cfg.Clock.Now() }

func (r *run) wanted() bool {
	r.k.mu.Lock()
	defer r.k.mu.Unlock()
	return r.k.want
}

// emit delivers an event, waiting for room unless Run is ending.
func (r *run) emit(e Event) {
	select {
	case r.k.events <- e:
	case <-r.ctx.Done():
	}
}

func (r *run) onWant() {
	w := r.wanted()
	was := r.wantSeen
	r.wantSeen = w
	if w {
		if !was && r.grant == nil {
			r.nextAt = r.now() // newly wanted: acquire at once
		}
		return
	}
	if r.grant != nil {
		g := *r.grant
		r.drop("released")
		r.release = &g
	}
}

// onDeadline runs when the lost timer fires.
func (r *run) onDeadline() {
	if r.grant == nil || r.now().Before(r.lostAt) {
		return
	}
	r.k.log.Warn("witness lease not renewed in time: leaving active", "reason", "renew deadline passed",
		"token", r.grant.Token, "must_leave_by", r.leaveBy)
	r.drop("renew deadline passed")
	if r.cancel != nil {
		r.cancel() // the renew in flight is too late to help
	}
	r.nextAt = r.now()
}

// drop forgets the held grant and reports Lost.
func (r *run) drop(reason string) {
	tok := r.grant.Token
	r.grant = nil
	r.lostAt, r.leaveBy = time.Time{}, time.Time{}
	stop(r.lostT)
	r.lostC = nil
	if reason != "released" {
		r.seenHolder, r.seenToken = "", 0
	}
	r.publish()
	r.emit(Lost{Token: tok, Reason: reason})
}

// effTTL is the lease time the Keeper counts with: the shorter of the one
// asked for and the one granted.
func (r *run) effTTL(g Grant) time.Duration {
	if g.TTL > 0 && g.TTL < r.k.cfg.TTL {
		return g.TTL
	}
	return r.k.cfg.TTL
}

// hold records a successful acquire or renew sent at sent. It returns
// false when the answer came too late to be of use.
func (r *run) hold(g Grant, sent time.Time) bool {
	cfg := r.k.cfg
	ttl := r.effTTL(g)
	lostAt := sent.Add(ttl - cfg.DriftMargin - cfg.StepDown)
	now := r.now()
	if !now.Before(lostAt) {
		return false
	}
	r.grant = &g
	r.lostAt = lostAt
	r.leaveBy = sent.Add(ttl - cfg.DriftMargin)
	stop(r.lostT)
	r.lostT = cfg.Clock.NewTimer(lostAt.Sub(now))
	r.lostC = r.lostT.C()
	r.nextAt = sent.Add(ttl / 3)
	r.armNext(now)
	r.failures, r.lastErr = 0, ""
	r.lastRenew = sent
	r.seenHolder, r.seenToken = g.Holder, g.Token
	return true
}

func (r *run) fail(res result) {
	r.failures++
	r.lastErr = res.err.Error()
	r.nextAt = r.now().Add(r.k.cfg.Retry)
	r.armNext(r.now())
}

func (r *run) onResult(res result) {
	log := r.k.log
	switch res.kind {
	case opRelease:
		if res.err != nil {
			log.Warn("releasing witness lease", "err", res.err, "token", res.in.Token)
		} else {
			log.Info("released witness lease", "token", res.in.Token)
		}
	case opAcquire:
		var held *HeldError
		switch {
		case res.err == nil && !r.wanted():
			r.release = &res.out
		case res.err == nil:
			if !r.hold(res.out, res.sent) {
				r.fail(result{err: fmt.Errorf("acquire sent at %v answered too late", res.sent)})
				r.nextAt = r.now()
				return
			}
			r.lastHeld = ""
			log.Info("acquired witness lease", "token", res.out.Token, "must_leave_by", r.leaveBy)
			r.publish()
			r.emit(Acquired{Token: res.out.Token, MustLeaveBy: r.leaveBy})
		case errors.As(res.err, &held):
			r.failures, r.lastErr = 0, ""
			if held.Holder != "" || r.lastHeld == "" {
				r.seenHolder, r.seenToken = held.Holder, held.Token
			}
			r.nextAt = r.now().Add(r.k.cfg.Retry)
			r.armNext(r.now())
			// A refusal that does not say who holds it (the witness
			// could not be read back) is not news once a holder is known.
			if held.Holder != r.lastHeld && (held.Holder != "" || r.lastHeld == "") {
				r.lastHeld = held.Holder
				log.Info("witness lease held by another node", "peer", held.Holder, "token", held.Token)
				r.publish()
				r.emit(Held{Holder: held.Holder, Token: held.Token})
			}
		default:
			log.Warn("acquiring witness lease", "err", res.err)
			r.fail(res)
		}
	case opRenew:
		if r.grant == nil || r.grant.Token != res.in.Token || r.grant.handle != res.in.handle {
			return // a renew for a grant already given up
		}
		switch {
		case res.err == nil:
			if !r.hold(res.out, res.sent) {
				r.renewFailures++
				r.fail(result{err: fmt.Errorf("renew sent at %v answered too late", res.sent)})
				return
			}
			r.renewals++
		case errors.Is(res.err, ErrLost):
			r.renewFailures++
			r.failures++
			r.lastErr = res.err.Error()
			log.Warn("witness lease lost: leaving active", "reason", "lost at witness", "err", res.err)
			r.drop("lost at witness: " + res.err.Error())
			r.nextAt = r.now()
		default:
			r.renewFailures++
			log.Warn("renewing witness lease", "err", res.err, "failures", r.failures+1)
			r.fail(res)
		}
	}
}

// step starts the request that is due, or arms the timer for it.
func (r *run) step() {
	if r.busy {
		return
	}
	if r.release != nil {
		g := *r.release
		r.release = nil
		r.start(opRelease, g, r.k.cfg.RequestTimeout)
		return
	}
	if !r.wanted() {
		return
	}
	now := r.now()
	if now.Before(r.nextAt) {
		r.armNext(now)
		return
	}
	cfg := r.k.cfg
	if r.grant == nil {
		r.start(opAcquire, Grant{}, min(cfg.RequestTimeout, cfg.TTL-cfg.DriftMargin-cfg.StepDown))
	} else {
		r.start(opRenew, *r.grant, min(cfg.RequestTimeout, r.lostAt.Sub(now)))
	}
}

// armNext arms the timer for nextAt unless it is armed for it already.
func (r *run) armNext(now time.Time) {
	if r.nextC != nil && r.armedAt.Equal(r.nextAt) {
		return
	}
	stop(r.nextT)
	r.nextT = r.k.cfg.Clock.NewTimer(r.nextAt.Sub(now))
	r.nextC = r.nextT.C()
	r.armedAt = r.nextAt
}

// start sends one request in its own goroutine; the answer comes back on
// r.results.
// The timeout runs on the injected clock.
func (r *run) start(kind opKind, g Grant, timeout time.Duration) {
	ctx, cancelCtx := context.WithCancel(r.ctx)
	t := r.k.cfg.Clock.AfterFunc(timeout, cancelCtx)
	cancel := func() { t.Stop(); cancelCtx() }
	r.busy, r.cancel = true, cancel
	sent := r.now()
	b, node, ttl := r.k.cfg.Backend, r.k.cfg.Node, r.k.cfg.TTL
	go func() {
		res := result{kind: kind, sent: sent, in: g}
		switch kind {
		case opAcquire:
			res.out, res.err = b.Acquire(ctx, node, ttl)
		case opRenew:
			res.out, res.err = b.Renew(ctx, g)
		case opRelease:
			res.err = b.Release(ctx, g)
		}
		r.results <- res
	}()
}

// publish copies the run state into the Status snapshot.
func (r *run) publish() {
	k := r.k
	k.mu.Lock()
	defer k.mu.Unlock()
	s := &k.status
	s.Holding = r.grant != nil
	s.Holder, s.Token = r.seenHolder, r.seenToken
	s.MustLeaveBy = r.leaveBy
	s.Renewals, s.RenewFailures = r.renewals, r.renewFailures
	s.Failures, s.LastError, s.LastRenew = r.failures, r.lastErr, r.lastRenew
}
