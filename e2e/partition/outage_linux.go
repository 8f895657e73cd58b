package partition

import (
	"context"
	"fmt"
	"time"

	"github.com/batonha/baton/internal/clock"
)

// OutageResult is what one outage of the witness alone did to the pair.
type OutageResult struct {
	Witness string
	Outage  time.Duration
	// NoActive is the time without a node answering 200, from the start
	// of the outage until the pair converged after it.
	NoActive time.Duration
	// DualActiveSamples are the prober's samples with both nodes at 200
	// over the same span.
	DualActiveSamples int
	// Recover is the time from the witness's return until the active held
	// a lease again, confirmed by the witness (its first successful
	// request after the outage).
	Recover time.Duration
	// During is the active's witness status at the end of the outage.
	During string
}

// Line is the line make bench-witness prints.
func (r OutageResult) Line() string {
	return fmt.Sprintf("witness outage_s=%d witness=%s no_active_ms=%d dual_active_samples=%d recover_ms=%d",
		int(r.Outage.Round(time.Second)/time.Second), r.Witness, r.NoActive.Milliseconds(), r.DualActiveSamples, r.Recover.Milliseconds())
}

// MeasureWitnessOutage builds the cluster, waits for an active node
// holding the lease, makes the witness unreachable from both nodes for
// outage and measures, with the prober, what the clients saw and how soon
// after the witness is back the active holds the lease again.
func MeasureWitnessOutage(ctx context.Context, o ClusterOptions, outage time.Duration) (OutageResult, error) {
	o.setDefaults()
	res := OutageResult{Witness: o.Witness, Outage: outage}
	c, err := NewCluster(ctx, o)
	if err != nil {
		return res, err
	}
	defer c.Close()
	for i := range 2 {
		if err := c.Start(i); err != nil {
			return res, err
		}
	}
	pctx, stopProber := context.WithCancel(ctx)
	defer stopProber()
	prober := NewProber(c, 10*time.Millisecond)
	proberDone := make(chan struct{})
	go func() { defer close(proberDone); prober.Run(pctx) }()
	defer func() { stopProber(); <-proberDone }()

	converge := 15*time.Second + 3*o.TTL
	active, err := waitConverged(ctx, c, prober, time.Time{}, converge)
	if err != nil {
		return res, fmt.Errorf("initial election: %w", err)
	}
	// One lease renewal after the election, so the outage starts from a
	// lease in its ordinary rhythm.
	if err := clock.Sleep(ctx, clock.Real{}, o.TTL/2); err != nil {
		return res, err
	}
	if err := c.SetCuts(ctx, Cuts{Witness: [2]bool{true, true}}); err != nil {
		return res, err
	}
	start := time.Now()
	err = clock.Sleep(ctx, clock.Real{}, outage)
	if st, serr := c.Status(ctx, active); serr == nil && st.Witness != nil {
		res.During = fmt.Sprintf("role=%s holding=%v holding_by_peer=%v last_error=%q", st.Role, st.Witness.Holding, st.Witness.HoldingByPeer, st.Witness.LastError)
	}
	if herr := c.SetCuts(context.WithoutCancel(ctx), Cuts{}); herr != nil {
		return res, herr
	}
	heal := time.Now()
	if err != nil {
		return res, err
	}
	// The active's first successful request after the heal clears its
	// last error; poll its status until then.
	deadline := heal.Add(converge)
	for {
		st, err := c.Status(ctx, active)
		if err == nil && st.Witness != nil && st.Witness.Holding && st.Witness.LastError == "" {
			res.Recover = time.Since(heal)
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("the active did not hold the lease within %v of the witness's return (%s now)", converge, c.Role(ctx, active))
		}
		if err := clock.Sleep(ctx, clock.Real{}, 5*time.Millisecond); err != nil {
			return res, err
		}
	}
	if _, err := waitConverged(ctx, c, prober, heal, converge); err != nil {
		return res, fmt.Errorf("after the outage: %w", err)
	}
	end := time.Now()
	stopProber()
	<-proberDone
	var span []Sample
	for _, s := range prober.Samples() {
		if !s.At.Before(start) && s.At.Before(end) {
			span = append(span, s)
		}
	}
	for _, w := range runs(span, func(s Sample) bool { return s.actives() == 0 }) {
		stop := w.next
		if stop.IsZero() {
			stop = w.last.Add(10 * time.Millisecond)
		}
		res.NoActive += stop.Sub(w.first)
	}
	for _, s := range span {
		if s.actives() == 2 {
			res.DualActiveSamples++
		}
	}
	return res, nil
}
