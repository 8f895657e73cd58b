package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/lab"
)

// The fault scenarios' client probes the VIP this often, and a failback
// is watched until this long after the link came back (and after the
// returning node first answered, when that is later).
const (
	probePeriod    = 10 * time.Millisecond
	failbackWindow = 2 * time.Second
)

// faultResult is what one daemon produced in the failback and flap
// scenarios at one interval.
type faultResult struct {
	failback      []float64 // ms: longest silence after each link-up
	flapMax       float64   // ms: longest silence over every flap sequence
	flaps, flapOK int       // flap sequences run, and ended with one node serving
}

func printFaults(out io.Writer, o options, iv time.Duration, res map[string]*faultResult) {
	get := func(name string) *faultResult {
		if r := res[name]; r != nil {
			return r
		}
		return &faultResult{flapMax: math.NaN()}
	}
	b, k := get("baton"), get("keepalived")
	if o.scenarios["failback"] {
		fmt.Fprintf(out, "failback interval=%s variant=linkdown baton_gap_p50_ms=%s baton_gap_p95_ms=%s keepalived_gap_p50_ms=%s keepalived_gap_p95_ms=%s\n",
			intervalName(iv), pairbench.Decimal1(pairbench.Percentile(b.failback, 50)), pairbench.Decimal1(pairbench.Percentile(b.failback, 95)),
			pairbench.Decimal1(pairbench.Percentile(k.failback, 50)), pairbench.Decimal1(pairbench.Percentile(k.failback, 95)))
	}
	if o.scenarios["flap"] {
		fmt.Fprintf(out, "flap interval=%s baton_max_gap_ms=%s keepalived_max_gap_ms=%s baton_end_ok=%s keepalived_end_ok=%s\n",
			intervalName(iv), pairbench.Decimal1(b.flapMax), pairbench.Decimal1(k.flapMax), okFraction(b), okFraction(k))
	}
}

// okFraction is the share of flap sequences that ended with one node
// serving: 1 when all did, NaN when none ran.
func okFraction(r *faultResult) string {
	if r.flaps == 0 {
		return "NaN"
	}
	return fmt.Sprintf("%.3g", float64(r.flapOK)/float64(r.flaps))
}

// measureFaults runs the failback and flap scenarios for one daemon at one
// interval in a fresh lab with preemption on and a client probing the VIP.
// A scenario that cannot go on (the pair does not settle again) ends with
// what it measured so far; the reason goes to progress.
func measureFaults(ctx context.Context, o options, name string, iv time.Duration, rng *rand.Rand, progress io.Writer) (res *faultResult, err error) {
	l, err := startLab(ctx, o, name, iv, labOptions{faults: true}, progress)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, l.close(o, progress)) }()
	res = &faultResult{flapMax: math.NaN()}
	if o.scenarios["failback"] {
		var ferr error
		res.failback, ferr = runFailbacks(ctx, l, o.n, rng, progress)
		if ferr != nil {
			if ctx.Err() != nil {
				return nil, ferr
			}
			fmt.Fprintf(progress, "  %s %v failback stopped after %d: %v\n%s%s", name, iv, len(res.failback), ferr, l.d.LogTail(0), l.d.LogTail(1))
		}
		fmt.Fprintf(progress, "  %s %v failback: n=%d gap p50 %s ms p95 %s ms\n", name, iv, len(res.failback),
			pairbench.Decimal1(pairbench.Percentile(res.failback, 50)), pairbench.Decimal1(pairbench.Percentile(res.failback, 95)))
	}
	if o.scenarios["flap"] {
		if ferr := runFlaps(ctx, l, o, res, rng, progress); ferr != nil {
			if ctx.Err() != nil {
				return nil, ferr
			}
			fmt.Fprintf(progress, "  %s %v flap stopped after %d: %v\n%s%s", name, iv, res.flaps, ferr, l.d.LogTail(0), l.d.LogTail(1))
		}
		fmt.Fprintf(progress, "  %s %v flap: %d sequences, %d ended ok, longest gap %s ms\n", name, iv, res.flaps, res.flapOK, pairbench.Decimal1(res.flapMax))
	}
	return res, nil
}

// settleServed waits until the daemons agree on an active node that holds
// the VIP alone and answers the client, continuously for StableFor.
func settleServed(ctx context.Context, l *benchLab, limit time.Duration) (int, error) {
	settled := func() (int, bool, string) {
		a, ok, why := l.d.Settled()
		if !ok {
			return -1, false, why
		}
		if h, w := l.e.VIPHolder(); h != a {
			return -1, false, fmt.Sprintf("%s is active but: %s (holder %d)", lab.ApplianceName(a), w, h)
		}
		if last, ok := l.echo.Client.Last(); !ok || last.From != a || time.Since(last.At) > 10*probePeriod {
			return -1, false, fmt.Sprintf("the client is not served by %s (last answer %+v)", lab.ApplianceName(a), last)
		}
		return a, true, ""
	}
	return pairbench.Settle(ctx, l.d.Name(), settled, l.d.StableFor(), limit)
}

// waitServedBy waits until the client gets an answer from node after t0
// and returns when it came.
func waitServedBy(ctx context.Context, c *pairbench.Client, node int, t0 time.Time, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for {
		as := c.Snapshot()
		for _, a := range as {
			if a.From == node && !a.At.Before(t0) {
				return a.At, nil
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("the client got no answer from %s within %v", lab.ApplianceName(node), limit)
		}
		if err := clock.Sleep(ctx, clock.Real{}, 5*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}

// served counts the answers from each node in [from, to].
func served(as []pairbench.Answer, from, to time.Time) [2]int {
	var n [2]int
	for _, a := range as {
		if !a.At.Before(from) && !a.At.After(to) {
			n[a.From]++
		}
	}
	return n
}

// sleepUntil sleeps until t.
func sleepUntil(ctx context.Context, t time.Time) error {
	return clock.Sleep(ctx, clock.Real{}, time.Until(t))
}

// runFailbacks: n times, the active node's links go down, the standby
// takes over and serves alone for StableFor, the links come back. The
// sample is the client's longest silence from the link-up until
// failbackWindow after it, or after the returning node's first answer if
// that is later (at 1s the preempting node's timers run past 2s).
func runFailbacks(ctx context.Context, l *benchLab, n int, rng *rand.Rand, progress io.Writer) ([]float64, error) {
	d, e, c := l.d, l.e, l.echo.Client
	settleLimit := 30*time.Second + 20*e.Interval
	limit := 5*time.Second + time.Duration(4*e.Misses)*e.Interval
	var out []float64
	for i := 0; i < n; i++ {
		active, err := settleServed(ctx, l, settleLimit)
		if err != nil {
			return out, err
		}
		standby := 1 - active
		note := ""
		if active != 0 {
			note = " (the preferred node did not take the role back before this cycle)"
		}
		c.Trim(time.Now().Add(-time.Second))
		if err := clock.Sleep(ctx, clock.Real{}, time.Duration(rng.Float64()*float64(e.Interval))); err != nil {
			return out, err
		}
		down := time.Now()
		if err := e.SetLinks(active, false); err != nil {
			return out, err
		}
		took, err := waitServedBy(ctx, c, standby, down, limit)
		if err == nil {
			err = clock.Sleep(ctx, clock.Real{}, d.StableFor())
		}
		up := time.Now()
		if lerr := e.SetLinks(active, true); lerr != nil || err != nil {
			return out, errors.Join(fmt.Errorf("takeover after link-down: %w", err), lerr)
		}
		end := up.Add(failbackWindow)
		back, berr := waitServedBy(ctx, c, active, up, limit)
		if berr == nil && back.Add(failbackWindow).After(end) {
			end = back.Add(failbackWindow)
		}
		if err := sleepUntil(ctx, end.Add(50*time.Millisecond)); err != nil {
			return out, err
		}
		as := c.Snapshot()
		gap := pairbench.MaxSilence(as, up, end)
		cnt := served(as, up, end)
		backNote := "returned " + rel(back, up)
		if berr != nil {
			backNote = "did not answer again"
		}
		fmt.Fprintf(progress, "  %s %v failback #%d: %s down, %s served %s; link up: gap %.1f ms, %s %s, answers %s %d / %s %d%s\n",
			d.Name(), e.Interval, i+1, lab.ApplianceName(active), lab.ApplianceName(standby), rel(took, down), pairbench.Millis(gap),
			lab.ApplianceName(active), backNote, lab.ApplianceName(active), cnt[active], lab.ApplianceName(standby), cnt[standby], note)
		out = append(out, pairbench.Millis(gap))
	}
	return out, nil
}

// runFlaps runs o.flaps sequences: the active node's links change state
// o.toggles times (down first, so they end up), each period uniform in
// [50ms, 2s]; then the pair must settle with one node holding the VIP and
// answering. The sample is the client's longest silence from the first
// link-down until it settled (or gave up).
func runFlaps(ctx context.Context, l *benchLab, o options, res *faultResult, rng *rand.Rand, progress io.Writer) error {
	d, e, c := l.d, l.e, l.echo.Client
	settleLimit := 30*time.Second + 20*e.Interval
	endLimit := 5*time.Second + time.Duration(4*e.Misses)*e.Interval + d.StableFor()
	for i := 0; i < o.flaps; i++ {
		active, err := settleServed(ctx, l, settleLimit)
		if err != nil {
			return err
		}
		c.Trim(time.Now().Add(-time.Second))
		start := time.Now()
		for k := 0; k < o.toggles; k++ {
			if err := e.SetLinks(active, k%2 == 1); err != nil {
				return err
			}
			period := 50*time.Millisecond + time.Duration(rng.Float64()*float64(1950*time.Millisecond))
			if err := clock.Sleep(ctx, clock.Real{}, period); err != nil {
				return err
			}
		}
		last := time.Now()
		holder, serr := settleServed(ctx, l, endLimit)
		end := time.Now()
		if serr == nil {
			// Settled holds for StableFor: it was reached that long ago.
			end = end.Add(-d.StableFor())
		}
		gap := pairbench.Millis(pairbench.MaxSilence(c.Snapshot(), start, end))
		res.flaps++
		if math.IsNaN(res.flapMax) || gap > res.flapMax {
			res.flapMax = gap
		}
		outcome := fmt.Sprintf("%s serves alone %s after the last toggle", lab.ApplianceName(holder), rel(end, last))
		if serr != nil {
			outcome = "NOT settled: " + serr.Error()
		} else {
			res.flapOK++
		}
		fmt.Fprintf(progress, "  %s %v flap #%d: %s toggled %d times over %.1f s, longest gap %.1f ms; %s\n",
			d.Name(), e.Interval, i+1, lab.ApplianceName(active), o.toggles, last.Sub(start).Seconds(), gap, outcome)
	}
	return nil
}

// rel formats t relative to t0 in ms, "?" when t is zero.
func rel(t, t0 time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return fmt.Sprintf("%+.1f ms", pairbench.Millis(t.Sub(t0)))
}

// fastResult is baton's fast-detection run: link-down takeovers, idle CPU
// and role changes while idle.
type fastResult struct {
	serving        []float64 // ms
	cpuPct         float64
	falseFailovers int
}

// measureFast runs baton at o.fast: n link-down takeovers, then o.soak of
// idle running, sampling CPU and counting the nodes that became ACTIVE
// although nothing failed.
func measureFast(ctx context.Context, o options, rng *rand.Rand, progress io.Writer) (res *fastResult, err error) {
	l, err := startLab(ctx, o, "baton", o.fast, labOptions{}, progress)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, l.close(o, progress)) }()
	b := l.d.(*baton)
	trials, err := runFailures(ctx, b, l.e, pairbench.LinkDown, o.n, rng, progress)
	if err != nil {
		return nil, fmt.Errorf("linkdown: %w\n%s%s", err, b.LogTail(0), b.LogTail(1))
	}
	res = &fastResult{}
	for _, t := range trials {
		res.serving = append(res.serving, pairbench.Millis(t.serving))
	}
	if _, err := settle(ctx, b, 30*time.Second+20*o.fast); err != nil {
		return nil, err
	}
	var follow [2]*lab.LogFollower
	for i := range follow {
		follow[i] = lab.NewLogFollower(b.Nodes[i].LogPath)
		if err := follow[i].SkipToEnd(); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(progress, "  baton %v: idle for %v, sampling CPU and counting takeovers\n", o.fast, o.soak)
	u, err := footprint(ctx, b, o.soak)
	if err != nil {
		return nil, err
	}
	res.cpuPct = u.cpuPct
	for i := range follow {
		rcs, err := follow[i].Next()
		if err != nil {
			return nil, err
		}
		for _, rc := range rcs {
			fmt.Fprintf(progress, "  baton %v idle: %s changed role to %s at %s\n", o.fast, lab.ApplianceName(i), rc.To, rc.Time.Format(time.RFC3339Nano))
			if rc.To == "ACTIVE" {
				res.falseFailovers++
			}
		}
	}
	fmt.Fprintf(progress, "  baton %v: linkdown p50 %s ms p95 %s ms, CPU %.3f %%, PSS %.1f MB, %d false failovers\n", o.fast,
		pairbench.Decimal1(pairbench.Percentile(res.serving, 50)), pairbench.Decimal1(pairbench.Percentile(res.serving, 95)), u.cpuPct, u.pssMB, res.falseFailovers)
	return res, nil
}
