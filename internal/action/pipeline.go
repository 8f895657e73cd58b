package action

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
)

// Phase orders the steps of a takeover: state first, then addresses,
// then what attracts traffic to them.
type Phase int

const (
	PhasePrepare   Phase = iota // make held state live (session sync commit)
	PhaseAddresses              // VIPs, secondary and public IPs
	PhaseRoutes                 // cloud route tables
	PhaseAnnounce               // BGP announcements
	PhaseProbe                  // the load balancer's health probe
)

// Step is one action of the pipeline with its time limit.
type Step struct {
	Action  Action
	Timeout time.Duration
	Phase   Phase
}

// SortSteps orders steps by phase, keeping the given order within one.
func SortSteps(steps []Step) {
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].Phase < steps[j].Phase })
}

// Result is the outcome of one action run.
type Result struct {
	Action   string        `json:"action"`
	Op       string        `json:"op"` // activate | deactivate | verify | reassert
	OK       bool          `json:"ok"`
	Error    string        `json:"error,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Attempts int           `json:"attempts"`
	// Parts are the targets the action reported (ReportPart): its route
	// tables, its addresses.
	Parts []Part `json:"parts,omitempty"`
	Err   error  `json:"-"`
}

// Run is the record of one activation or deactivation of the whole
// pipeline, measured from the role decision.
type Run struct {
	Op       string    `json:"op"`
	Term     uint64    `json:"term"`
	Decided  time.Time `json:"decided"`
	Steps    []Result  `json:"steps"`
	Finished time.Time `json:"finished"`
}

// Observer is told about every finished step: sinceDecision is the time
// from the role decision, or negative for reconcile runs.
type Observer func(op string, r Result, sinceDecision time.Duration)

// Pipeline runs the actions for the role this node holds: Activate in
// order on entering ACTIVE, Deactivate in reverse order on leaving it, and
// Verify periodically, retrying failed steps. It owns one goroutine; Set
// never blocks the caller.
type Pipeline struct {
	steps   []Step
	clk     clock.Clock
	log     *slog.Logger
	observe Observer
	onRun   func(Run)
	every   time.Duration

	mu      sync.Mutex
	want    desired
	wake    chan struct{}
	done    chan struct{} // closed and replaced each time a wish is applied
	last    map[string]Result
	runs    []Run
	applied *desired
	// reassert: re-run every Activate of the applied active role at once
	// (the cause is logged); cleared when the run starts.
	reassert    string
	reasserting bool
}

type desired struct {
	active  bool
	t       Takeover
	decided time.Time
	gen     uint64
}

// NewPipeline returns a pipeline over steps. verifyEvery is the reconcile
// interval (0 disables it).
func NewPipeline(steps []Step, verifyEvery time.Duration, clk clock.Clock, log *slog.Logger, observe Observer) *Pipeline {
	if observe == nil {
		observe = func(string, Result, time.Duration) {}
	}
	return &Pipeline{
		steps: steps, clk: clk, log: log.With("component", "pipeline"), observe: observe,
		every: verifyEvery, wake: make(chan struct{}, 1), last: map[string]Result{}, done: make(chan struct{}),
	}
}

// OnRun sets fn to be told about every finished activation or
// deactivation (called from the pipeline's goroutine; it must not block).
func (p *Pipeline) OnRun(fn func(Run)) {
	p.mu.Lock()
	p.onRun = fn
	p.mu.Unlock()
}

// Set asks for the actions to match the role: active or not. decided is
// when the role machine took the decision.
func (p *Pipeline) Set(active bool, t Takeover, decided time.Time) {
	p.mu.Lock()
	p.want = desired{active: active, t: t, decided: decided, gen: p.want.gen + 1}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Reassert asks an active node's actions to announce and verify again at
// once: every step's Activate runs (they are idempotent: the VIP sends its
// gratuitous ARP burst again, route tables are read and repaired, BGP
// re-advertised). It does nothing unless the applied role is active; a
// pending Set is applied first.
func (p *Pipeline) Reassert(cause string) {
	p.mu.Lock()
	p.reassert = cause
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run applies what Set asked for until ctx ends.
func (p *Pipeline) Run(ctx context.Context) {
	var verify clock.Timer
	if p.every > 0 {
		verify = p.clk.NewTimer(p.every)
		defer verify.Stop()
	}
	var verifyC <-chan time.Time
	for {
		if verify != nil {
			verifyC = verify.C()
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
			p.apply(ctx)
		case <-verifyC:
			p.reconcile(ctx)
			verify.Reset(p.every)
		}
	}
}

// apply runs until the applied state equals the wanted one.
func (p *Pipeline) apply(ctx context.Context) {
	for ctx.Err() == nil {
		p.mu.Lock()
		want := p.want
		applied := p.applied
		p.mu.Unlock()
		if applied != nil && applied.gen == want.gen {
			p.reassertNow(ctx)
			return
		}
		if applied != nil && applied.active == want.active && applied.t.Term == want.t.Term {
			p.mu.Lock()
			p.markAppliedLocked(want)
			p.mu.Unlock()
			p.reassertNow(ctx)
			return
		}
		run := p.runAll(ctx, want)
		p.mu.Lock()
		p.markAppliedLocked(want)
		p.appendRunLocked(run)
		onRun := p.onRun
		p.mu.Unlock()
		if onRun != nil {
			onRun(run)
		}
	}
}

// reassertNow runs a pending re-assertion of the applied active role.
func (p *Pipeline) reassertNow(ctx context.Context) {
	p.mu.Lock()
	cause, applied := p.reassert, p.applied
	p.reassert = ""
	run := cause != "" && applied != nil && applied.active
	p.reasserting = run
	p.mu.Unlock()
	if !run {
		return
	}
	start := p.clk.Now()
	rec := Run{Op: "reassert", Term: applied.t.Term, Decided: start}
	for _, s := range p.steps {
		r := p.runStep(ctx, s, "reassert", func(ctx context.Context) error { return s.Action.Activate(ctx, applied.t) })
		rec.Steps = append(rec.Steps, r)
		p.observe("reassert", r, -1)
	}
	rec.Finished = p.clk.Now()
	p.log.Info("actions re-asserted", "cause", cause, "term", applied.t.Term, "ms", float64(rec.Finished.Sub(start).Microseconds())/1000)
	p.mu.Lock()
	p.appendRunLocked(rec)
	p.reasserting = false
	close(p.done)
	p.done = make(chan struct{})
	p.mu.Unlock()
}

func (p *Pipeline) appendRunLocked(run Run) {
	p.runs = append(p.runs, run)
	if len(p.runs) > 20 {
		p.runs = p.runs[len(p.runs)-20:]
	}
}

func (p *Pipeline) markAppliedLocked(want desired) {
	p.applied = &want
	close(p.done)
	p.done = make(chan struct{})
}

func (p *Pipeline) runAll(ctx context.Context, want desired) Run {
	op := "deactivate"
	order := make([]Step, 0, len(p.steps))
	if want.active {
		op = "activate"
		order = append(order, p.steps...)
	} else {
		for i := len(p.steps) - 1; i >= 0; i-- {
			order = append(order, p.steps[i])
		}
	}
	run := Run{Op: op, Term: want.t.Term, Decided: want.decided}
	for _, s := range order {
		r := p.runStep(ctx, s, op, func(ctx context.Context) error {
			if want.active {
				return s.Action.Activate(ctx, want.t)
			}
			return s.Action.Deactivate(ctx, want.t)
		})
		run.Steps = append(run.Steps, r)
		p.observe(op, r, p.clk.Now().Sub(want.decided))
	}
	run.Finished = p.clk.Now()
	p.log.Info("actions done", "op", op, "term", want.t.Term, "ms", float64(run.Finished.Sub(want.decided).Microseconds())/1000)
	return run
}

func (p *Pipeline) runStep(ctx context.Context, s Step, op string, fn func(context.Context) error) Result {
	name := s.Action.Name()
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sctx, parts := withParts(sctx)
	start := p.clk.Now()
	err := fn(sctx)
	r := Result{Action: name, Op: op, OK: err == nil, Started: start, Duration: p.clk.Now().Sub(start), Parts: parts.list(), Err: err}
	p.mu.Lock()
	prev, ok := p.last[name]
	if ok && !prev.OK && prev.Op == op {
		r.Attempts = prev.Attempts + 1
	} else {
		r.Attempts = 1
	}
	if err != nil {
		r.Error = err.Error()
		if sctx.Err() == context.DeadlineExceeded {
			r.Error = fmt.Sprintf("timed out after %s: %v", timeout, err)
		}
	}
	p.last[name] = r
	p.mu.Unlock()
	if err != nil {
		p.log.Warn("action failed", "action", name, "op", op, "attempt", r.Attempts, "err", r.Error)
	}
	return r
}

// reconcile verifies every action against the applied role and retries
// steps whose last run failed.
func (p *Pipeline) reconcile(ctx context.Context) {
	p.mu.Lock()
	applied := p.applied
	p.mu.Unlock()
	if applied == nil {
		return
	}
	for _, s := range p.steps {
		p.mu.Lock()
		prev := p.last[s.Action.Name()]
		p.mu.Unlock()
		if !prev.OK && prev.Op != "" && prev.Op != "verify" {
			// Retry the failed activation or deactivation itself.
			r := p.runStep(ctx, s, prev.Op, func(ctx context.Context) error {
				if applied.active {
					return s.Action.Activate(ctx, applied.t)
				}
				return s.Action.Deactivate(ctx, applied.t)
			})
			p.observe(prev.Op, r, -1)
			continue
		}
		r := p.runStep(ctx, s, "verify", func(ctx context.Context) error {
			return s.Action.Verify(ctx, applied.active)
		})
		p.observe("verify", r, -1)
	}
}

// Results returns the last result of every action, in pipeline order.
func (p *Pipeline) Results() []Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Result, 0, len(p.steps))
	for _, s := range p.steps {
		if r, ok := p.last[s.Action.Name()]; ok {
			out = append(out, r)
		}
	}
	return out
}

// Runs returns the most recent pipeline runs, oldest first.
func (p *Pipeline) Runs() []Run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Run(nil), p.runs...)
}

// WaitSettled blocks until the last Set (and any Reassert) has been
// applied or ctx ends.
func (p *Pipeline) WaitSettled(ctx context.Context) error {
	for {
		p.mu.Lock()
		settled := p.applied != nil && p.applied.gen == p.want.gen && p.reassert == "" && !p.reasserting
		done := p.done
		p.mu.Unlock()
		if settled {
			return nil
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Settled reports whether the last Set has been applied.
func (p *Pipeline) Settled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied != nil && p.applied.gen == p.want.gen
}
