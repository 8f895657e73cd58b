// Package check runs baton's local health checks (a command, an
// interface's link state, a TCP connect, an HTTP GET) on their own
// intervals and turns their results, with rise/fall hysteresis, into one
// healthy/unhealthy verdict that moves the node to FAULT and back.
//
// Start-up semantics: a check has no verdict until its first result, and
// that first result decides at once (a pass makes it healthy, a failure
// unhealthy) so that a freshly started node is neither held in FAULT for
// rise intervals nor trusted before anything was checked. From then on a
// healthy check needs fall consecutive failures to become unhealthy, and
// an unhealthy one rise consecutive passes to become healthy again. The
// Set is settled once every check has its first result; until then
// Healthy reports false and the daemon should wait on Settled (bounded by
// the largest check timeout) before claiming a role.
package check

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/batonha/baton/internal/clock"
)

// Defaults applied to zero fields of a Config.
const (
	DefaultInterval = time.Second
	DefaultTimeout  = time.Second
	DefaultRise     = 2
	DefaultFall     = 3
)

// Prober runs one execution of a check; nil means it passed. It must
// return soon after ctx is done.
type Prober interface {
	Probe(ctx context.Context) error
}

// Status is the state of one check, for status pages and metrics.
type Status struct {
	Name         string
	Type         string
	Known        bool // a result has been recorded
	Healthy      bool // the verdict after hysteresis
	Successes    int  // consecutive passes
	Failures     int  // consecutive failures
	LastResult   string
	LastRun      time.Time
	LastDuration time.Duration
}

// Set runs a group of checks and keeps their verdicts.
type Set struct {
	clk      clock.Clock
	log      *slog.Logger
	onChange func(healthy bool, failing []string)
	checks   []Config // defaults applied
	probers  []Prober

	// notifyMu serialises recording a result and calling onChange, so
	// that callbacks arrive in the order the verdicts changed. It is
	// taken before mu.
	notifyMu sync.Mutex

	mu        sync.Mutex
	status    []Status
	known     int // checks with at least one result
	isSettled bool
	settled   chan struct{}
	started   bool
}

// NewSet builds the probers for checks and returns a Set that runs them.
// onChange (which may be nil) is called once when the Set settles, then
// each time a check's verdict flips, with the overall verdict and the
// names of the unhealthy checks in configuration order. It is called from
// a check's goroutine and holds up that check while it runs, so it should
// only hand the news on; it may call Healthy and Status.
func NewSet(checks []Config, clk clock.Clock, log *slog.Logger, onChange func(healthy bool, failing []string)) (*Set, error) {
	probers := make([]Prober, len(checks))
	for i, c := range checks {
		p, err := NewProber(c)
		if err != nil {
			return nil, err
		}
		probers[i] = p
	}
	return NewSetWithProbers(checks, probers, clk, log, onChange)
}

// NewSetWithProbers is NewSet with the probers given, one per check in
// the same order; tests use it to run fake probers. The Type, Command,
// Interface and Target fields of checks are then only reported, not used.
func NewSetWithProbers(checks []Config, probers []Prober, clk clock.Clock, log *slog.Logger, onChange func(healthy bool, failing []string)) (*Set, error) {
	if len(probers) != len(checks) {
		return nil, fmt.Errorf("building check set: %d probers for %d checks", len(probers), len(checks))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Set{
		clk:      clk,
		log:      log.With("component", "check"),
		onChange: onChange,
		checks:   make([]Config, len(checks)),
		probers:  probers,
		status:   make([]Status, len(checks)),
		settled:  make(chan struct{}),
	}
	seen := make(map[string]bool)
	for i, c := range checks {
		if c.Name == "" {
			return nil, fmt.Errorf("building check set: check %d has no name", i+1)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("building check set: duplicate check name %q", c.Name)
		}
		seen[c.Name] = true
		if probers[i] == nil {
			return nil, fmt.Errorf("building check set: check %q has no prober", c.Name)
		}
		s.checks[i] = withDefaults(c)
		s.status[i] = Status{Name: c.Name, Type: c.Type}
	}
	if len(checks) == 0 {
		s.isSettled = true
		close(s.settled)
	}
	return s, nil
}

func withDefaults(c Config) Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Rise <= 0 {
		c.Rise = DefaultRise
	}
	if c.Fall <= 0 {
		c.Fall = DefaultFall
	}
	return c
}

// Run runs every check on its own interval timer until ctx is done, then
// waits for the probes in flight and returns nil. Each check runs once at
// once, then every Interval measured from the start of the previous run
// (a run that overruns is followed by the next one without delay; runs of
// one check never overlap). A run is cancelled after Timeout on the Set's
// clock and counts as a failure. Run may be called only once.
func (s *Set) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("running checks: already running")
	}
	s.started = true
	s.mu.Unlock()

	var wg sync.WaitGroup
	for i := range s.checks {
		wg.Go(func() { s.loop(ctx, i) })
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

func (s *Set) loop(ctx context.Context, i int) {
	c := s.checks[i]
	tick := s.clk.NewTimer(0)
	tick.Stop()
	defer tick.Stop()
	for {
		// Arm the next tick before probing: the interval runs from the
		// start of this probe.
		tick.Reset(c.Interval)
		start := s.clk.Now()
		err := s.probeOnce(ctx, i)
		if ctx.Err() != nil {
			return
		}
		s.record(i, err, start, s.clk.Now().Sub(start))
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
		}
	}
}

func (s *Set) probeOnce(ctx context.Context, i int) error {
	c := s.checks[i]
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := s.clk.AfterFunc(c.Timeout, cancel)
	err := s.probers[i].Probe(pctx)
	timer.Stop()
	if pctx.Err() != nil && ctx.Err() == nil {
		// The deadline passed: a late pass is still a failure.
		if err == nil || errors.Is(err, context.Canceled) {
			return fmt.Errorf("timed out after %v", c.Timeout)
		}
		return fmt.Errorf("timed out after %v: %w", c.Timeout, err)
	}
	return err
}

// record applies one result to check i and reports a change.
func (s *Set) record(i int, err error, start time.Time, dur time.Duration) {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()

	c := s.checks[i]
	s.mu.Lock()
	st := &s.status[i]
	wasKnown, wasHealthy := st.Known, st.Healthy
	st.LastRun, st.LastDuration = start, dur
	if err == nil {
		st.Successes++
		st.Failures = 0
		st.LastResult = "ok"
		if !st.Known || st.Successes >= c.Rise {
			st.Healthy = true
		}
	} else {
		st.Failures++
		st.Successes = 0
		st.LastResult = err.Error()
		if !st.Known || st.Failures >= c.Fall {
			st.Healthy = false
		}
	}
	st.Known = true
	flipped := wasKnown && wasHealthy != st.Healthy
	justSettled := false
	if !wasKnown {
		s.known++
		if s.known == len(s.checks) {
			s.isSettled = true
			justSettled = true
			close(s.settled)
		}
	}
	healthy, failing := s.verdictLocked()
	settled := s.isSettled
	now := *st
	s.mu.Unlock()

	log := s.log.With("check", c.Name, "type", c.Type)
	switch {
	case !wasKnown:
		log.Info("first check result", "healthy", now.Healthy, "reason", now.LastResult)
	case flipped && now.Healthy:
		log.Info("check became healthy", "successes", now.Successes, "reason", now.LastResult)
	case flipped:
		log.Warn("check became unhealthy", "failures", now.Failures, "reason", now.LastResult)
	case err != nil:
		log.Debug("check failed", "failures", now.Failures, "fall", c.Fall, "reason", now.LastResult)
	}
	if justSettled {
		s.log.Info("checks settled", "healthy", healthy, "failing", failing)
	}
	if (justSettled || (flipped && settled)) && s.onChange != nil {
		s.onChange(healthy, failing)
	}
}

func (s *Set) verdictLocked() (bool, []string) {
	var failing []string
	for _, st := range s.status {
		if st.Known && !st.Healthy {
			failing = append(failing, st.Name)
		}
	}
	return s.isSettled && len(failing) == 0, failing
}

// Healthy reports whether the Set is settled and every check is healthy.
func (s *Set) Healthy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, _ := s.verdictLocked()
	return h
}

// Failing lists the checks whose verdict is unhealthy, in configuration
// order.
func (s *Set) Failing() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, f := s.verdictLocked()
	return f
}

// Settled is closed once every check has its first result (at once for
// an empty Set).
func (s *Set) Settled() <-chan struct{} { return s.settled }

// Status returns a copy of every check's state, in configuration order.
func (s *Set) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, len(s.status))
	copy(out, s.status)
	return out
}
