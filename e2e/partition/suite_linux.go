package partition

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/stats"
)

// Options configure one run of the suite.
type Options struct {
	Bin     string // the baton binary
	Dir     string // working directory (configs, logs)
	Witness string // none, etcd, azureblob or dynamodb
	Trials  int
	Seed    int64
	// Interval is the heartbeat interval (default 100ms); TTL the lease
	// time (default 2s, azureblob 15s).
	Interval, TTL time.Duration
	AzuriteDir    string
	// Extra faults run after the seeded schedule (the reduced suite uses
	// them to cover every witness fault in a few trials).
	Extra []Fault
	Log   *slog.Logger // progress; nil discards
}

// Result is a run's outcome.
type Result struct {
	Witness string
	Seed    int64
	Limits  Limits
	Trials  []Trial
	Report
	// Tails are the last lines of both nodes' logs (for failures).
	Tails [2]string
	// Samples is the prober's record.
	Samples []Sample
}

// Record draws what the prober saw during trial i (from its start to the
// next trial's, or the end), run-length coded: "a" nva-a alone answered
// 200, "b" nva-b alone, "2" both, "." neither; "|" marks the heal.
func (r Result) Record(i int) string {
	if i < 0 || i >= len(r.Trials) {
		return ""
	}
	from, heal := r.Trials[i].Start, r.Trials[i].Heal
	var to time.Time
	if i+1 < len(r.Trials) {
		to = r.Trials[i+1].Start
	}
	var b strings.Builder
	last, n := byte(0), 0
	flush := func() {
		if n > 0 {
			fmt.Fprintf(&b, "%c%d ", last, n)
		}
	}
	healed := false
	for _, s := range r.Samples {
		if s.At.Before(from) || (!to.IsZero() && !s.At.Before(to)) {
			continue
		}
		if !healed && !heal.IsZero() && !s.At.Before(heal) {
			flush()
			b.WriteString("| ")
			last, n, healed = 0, 0, true
		}
		c := byte('.')
		switch s.actives() {
		case 2:
			c = '2'
		case 1:
			c = byte('a' + s.alone())
		}
		if c != last {
			flush()
			last, n = c, 0
		}
		n++
	}
	flush()
	return strings.TrimSpace(b.String())
}

// Line is the summary line the issue asks for.
func (r Result) Line() string {
	return fmt.Sprintf("partition trials=%d witness=%s dual_active_samples=%d no_active_p50_ms=%d no_active_p95_ms=%d witness_outage_no_active_ms=%d",
		r.Report.Trials, r.Witness, r.DualActiveSamples, r.P50.Milliseconds(), r.P95.Milliseconds(), r.WitnessOutageNoActive.Milliseconds())
}

// Details summarises the rest of the report: convergence after the
// heals and, without a witness, how long dual-active outlived a heal.
func (r Result) Details() string {
	conv := make([]time.Duration, 0, len(r.Convergence))
	for _, c := range r.Convergence {
		if c >= 0 {
			conv = append(conv, c)
		}
	}
	s := fmt.Sprintf("seed=%d no_active_windows=%d convergence_p50_ms=%d convergence_p95_ms=%d convergence_max_ms=%d",
		r.Seed, len(r.NoActive), stats.Duration(conv, 50).Milliseconds(), stats.Duration(conv, 95).Milliseconds(), stats.Duration(conv, 100).Milliseconds())
	if r.Witness == WitnessNone {
		s += fmt.Sprintf(" dual_after_heal_windows=%d dual_after_heal_max_ms=%d", len(r.DualAfterHeal), stats.Duration(r.DualAfterHeal, 100).Milliseconds())
	} else {
		s += fmt.Sprintf(" no_active_limit_ms=%d log_overlaps=%d", r.Limits.NoActiveLimit().Milliseconds(), len(r.LogOverlaps))
	}
	return s
}

// Longest lists the n longest no-active windows with their trials.
func (r Result) Longest(n int) []string {
	idx := make([]int, len(r.NoActive))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(r.NoActive[b], r.NoActive[a]) })
	var out []string
	for _, i := range idx[:min(n, len(idx))] {
		what := "before the first trial"
		if t := r.NoActiveTrial[i]; t >= 0 && t < len(r.Trials) {
			tr := r.Trials[t]
			what = fmt.Sprintf("trial %d: %s on %s", tr.N, tr.Fault, lab.ApplianceName(tr.Node))
		}
		out = append(out, fmt.Sprintf("%dms (%s)", r.NoActive[i].Milliseconds(), what))
	}
	return out
}

// Run builds the cluster, runs o.Trials faults from the schedule of
// o.Seed and checks the record. An error means the run could not be
// carried out (or the pair did not converge); a run that completes
// returns its Result, whose Report says whether the targets were met.
func Run(ctx context.Context, o Options) (Result, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	co := ClusterOptions{Bin: o.Bin, Dir: o.Dir, Witness: o.Witness, Interval: o.Interval, TTL: o.TTL, AzuriteDir: o.AzuriteDir}
	co.setDefaults()
	res := Result{Witness: co.Witness, Seed: o.Seed}
	res.Limits = Limits{Witness: co.Witness != WitnessNone, TTL: co.TTL, Interval: co.Interval, Tick: 10 * time.Millisecond}
	c, err := NewCluster(ctx, co)
	if err != nil {
		return res, err
	}
	defer c.Close()

	maxCut := max(3*time.Second, co.TTL*3/2)
	sched := Schedule(o.Seed, o.Trials, ScheduleOptions{Witness: res.Limits.Witness, MaxCut: maxCut})
	if res.Limits.Witness {
		sched = append(sched, o.Extra...)
	}
	for i, f := range sched {
		if f.Kind == WitnessKill && !c.CanRestartWitness() {
			sched[i].Kind = WitnessDown
		}
	}
	converge := 15*time.Second + 3*co.TTL

	for i := range 2 {
		if err := c.Start(i); err != nil {
			return res, err
		}
	}
	pctx, stopProber := context.WithCancel(ctx)
	prober := NewProber(c, res.Limits.Tick)
	proberDone := make(chan struct{})
	go func() { defer close(proberDone); prober.Run(pctx) }()
	defer func() { stopProber(); <-proberDone }()

	finish := func(runErr error) (Result, error) {
		stopProber()
		<-proberDone
		var logs [2][]lab.RoleChange
		for i := range 2 {
			logs[i], err = c.RoleChanges(i)
			if err != nil {
				runErr = errors.Join(runErr, err)
			}
			res.Tails[i] = c.LogTail(i, 80)
		}
		res.Samples = prober.Samples()
		res.Report = Check(res.Samples, res.Trials, logs, res.Limits)
		return res, runErr
	}

	// since is the last heal: the pair has converged when one node alone
	// answered 200 for a while after it.
	var since time.Time
	if _, err := waitConverged(ctx, c, prober, since, converge); err != nil {
		return finish(fmt.Errorf("initial election (seed %d): %w", o.Seed, err))
	}
	for n, f := range sched {
		// Converged (the prober saw one active for a while), then a pause.
		if _, err := waitConverged(ctx, c, prober, since, converge); err != nil {
			return finish(fmt.Errorf("before trial %d (%s), seed %d: %w", n, f, o.Seed, err))
		}
		if err := clock.Sleep(ctx, clock.Real{}, f.Settle); err != nil {
			return finish(err)
		}
		active, err := waitConverged(ctx, c, prober, since, converge)
		if err != nil {
			return finish(fmt.Errorf("before trial %d (%s), seed %d: %w", n, f, o.Seed, err))
		}
		tr := Trial{N: n, Fault: f, Node: active}
		if f.Target == TargetStandby {
			tr.Node = 1 - active
		}
		log.Info("trial", "n", n, "fault", f.String(), "node", lab.ApplianceName(tr.Node))
		if err := inject(ctx, c, &tr); err != nil {
			return finish(fmt.Errorf("trial %d (%s), seed %d: %w", n, f, o.Seed, err))
		}
		res.Trials = append(res.Trials, tr)
		since = tr.Heal
	}
	if _, err := waitConverged(ctx, c, prober, since, converge); err != nil {
		return finish(fmt.Errorf("after the last trial, seed %d: %w", o.Seed, err))
	}
	return finish(nil)
}

// inject carries out one fault and heals it, recording the times.
func inject(ctx context.Context, c *Cluster, tr *Trial) error {
	i := tr.Node
	var cs Cuts
	switch tr.Fault.Kind {
	case CutNodes:
		cs.Nodes = true
	case CutWitness:
		cs.Witness[i] = true
	case Isolate:
		cs.Nodes = true
		cs.Witness[i] = c.Witness != nil
	case Freeze:
		if err := c.Freeze(i, true); err != nil {
			return err
		}
		tr.Start = time.Now()
		tr.Down = tr.Start
		if err := clock.Sleep(ctx, clock.Real{}, tr.Fault.Dur); err != nil {
			return errors.Join(err, c.Freeze(i, false))
		}
		if err := c.Freeze(i, false); err != nil {
			return err
		}
		tr.Heal = time.Now()
		return nil
	case Kill:
		if err := c.Kill(i); err != nil {
			return err
		}
		tr.Start = time.Now()
		tr.Down = tr.Start
		if err := clock.Sleep(ctx, clock.Real{}, tr.Fault.Dur); err != nil {
			return err
		}
		tr.Heal = time.Now()
		return c.Start(i)
	}
	if tr.Fault.Kind.WitnessOnly() || tr.Fault.Kind.Compound() {
		return injectWitness(ctx, c, tr)
	}
	if err := c.SetCuts(ctx, cs); err != nil {
		return err
	}
	tr.Start = time.Now()
	err := clock.Sleep(ctx, clock.Real{}, tr.Fault.Dur)
	if herr := c.SetCuts(context.WithoutCancel(ctx), Cuts{}); herr != nil {
		return errors.Join(err, herr)
	}
	tr.Heal = time.Now()
	return err
}

// injectWitness takes the witness away from both nodes (cut, or killed)
// and, for a compound fault, a third of the way in cuts the nodes apart
// or kills the active; then heals everything at once.
func injectWitness(ctx context.Context, c *Cluster, tr *Trial) error {
	f := tr.Fault
	both := Cuts{Witness: [2]bool{true, true}}
	if f.Kind == WitnessKill {
		if err := c.KillWitness(); err != nil {
			return err
		}
	} else if err := c.SetCuts(ctx, both); err != nil {
		return err
	}
	tr.Start = time.Now()
	rest := f.Dur
	var err error
	if f.Kind.Compound() {
		if err = clock.Sleep(ctx, clock.Real{}, f.Dur/3); err == nil {
			rest -= f.Dur / 3
			if f.Kind == WitnessThenCut {
				both.Nodes = true
				err = c.SetCuts(ctx, both)
			} else {
				err = c.Kill(tr.Node)
				tr.Down = time.Now()
			}
		}
	}
	if err == nil {
		err = clock.Sleep(ctx, clock.Real{}, rest)
	}
	hctx := context.WithoutCancel(ctx)
	var herr error
	if f.Kind == WitnessKill {
		herr = c.StartWitness(hctx)
	} else {
		herr = c.SetCuts(hctx, Cuts{})
	}
	if f.Kind == WitnessThenKill && !tr.Down.IsZero() {
		herr = errors.Join(herr, c.Start(tr.Node))
	}
	tr.Heal = time.Now()
	return errors.Join(err, herr)
}

// waitConverged waits until both nodes run and see each other, exactly
// one is ACTIVE (holding the lease when there is a witness) and the
// prober has seen that node alone answer 200 for 300ms since since. It
// returns the active node.
func waitConverged(ctx context.Context, c *Cluster, p *Prober, since time.Time, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	why := "not checked yet"
	for time.Now().Before(deadline) {
		if active, ok, reason := converged(ctx, c, p, since); ok {
			return active, nil
		} else {
			why = reason
		}
		if err := clock.Sleep(ctx, clock.Real{}, 50*time.Millisecond); err != nil {
			return -1, err
		}
	}
	return -1, fmt.Errorf("pair did not converge within %v: %s", limit, why)
}

func converged(ctx context.Context, c *Cluster, p *Prober, since time.Time) (int, bool, string) {
	active := -1
	for i := range 2 {
		if !c.Running(i) || c.Frozen(i) {
			return -1, false, lab.ApplianceName(i) + " not running"
		}
		st, err := c.Status(ctx, i)
		if err != nil {
			return -1, false, fmt.Sprintf("%s status: %v", lab.ApplianceName(i), err)
		}
		if !st.Peer.Alive {
			return -1, false, lab.ApplianceName(i) + " does not see its peer"
		}
		switch st.Role {
		case "ACTIVE":
			if active >= 0 {
				return -1, false, "both ACTIVE"
			}
			if c.Witness != nil && (st.Witness == nil || !st.Witness.Holding) {
				return -1, false, lab.ApplianceName(i) + " ACTIVE without the lease"
			}
			active = i
		case "STANDBY":
		default:
			return -1, false, lab.ApplianceName(i) + " is " + st.Role
		}
	}
	if active < 0 {
		return -1, false, "no ACTIVE node"
	}
	// The same test the checker makes, held to longer: one node alone
	// answered 200 for 300ms since the heal (a frozen node's stale answers
	// arrive after it resumes; the samples before count for nothing).
	// Leave out the last 150ms, whose probes may
	// still be in flight (they time out after 100ms) and be recorded out
	// of order.
	who, d := settledFor(p.Samples(), since, time.Now().Add(-150*time.Millisecond))
	if who != active || d < 300*time.Millisecond {
		return -1, false, fmt.Sprintf("probes: node %d alone answered 200 for %v (want %d for 300ms)", who, d.Round(time.Millisecond), active)
	}
	return active, true, ""
}
