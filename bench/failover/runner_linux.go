package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/lab"
)

// driver runs one HA daemon (baton or keepalived) on both appliances of a
// pair and knows how to fail, observe and restore it.
type driver interface {
	Name() string
	Start(node int) error
	// Settled reports the active node when the pair is settled right now:
	// both daemons up, exactly one active, the other standing by. When it
	// is not, the string says why.
	Settled() (active int, ok bool, why string)
	// StableFor is how long Settled must hold before a failure.
	StableFor() time.Duration
	// Arm starts watching the standby before a failure.
	Arm(standby int, stop <-chan struct{}) (*watch, error)
	Fail(node int, v pairbench.Variant) error
	Restore(node int, v pairbench.Variant) error
	// PIDs are the node's daemon processes (for CPU and memory).
	PIDs(node int) ([]int, error)
	// LogTail returns the end of the node's daemon log for error reports.
	LogTail(node int) string
}

// watch observes a takeover on the standby.
type watch struct {
	// role polls for measure (a): the standby's own record of becoming
	// active, with the time it recorded.
	role func() (time.Time, bool, error)
	// serving delivers measure (b): the standby serving (probe 200 / VIP).
	serving <-chan pairbench.Observation
}

// trial is one measured failure.
type trial struct {
	role, serving time.Duration
}

// settle waits until d reports the same active node for d.StableFor().
func settle(ctx context.Context, d driver, limit time.Duration) (int, error) {
	return pairbench.Settle(ctx, d.Name(), d.Settled, d.StableFor(), limit)
}

// runFailures fails the active node n times and measures each takeover.
func runFailures(ctx context.Context, d driver, e *pairbench.Env, v pairbench.Variant, n int, rng *rand.Rand, progress io.Writer) ([]trial, error) {
	settleLimit := 30*time.Second + 20*e.Interval
	takeoverLimit := 5*time.Second + time.Duration(4*e.Misses)*e.Interval
	var out []trial
	failures := 0
	for i := 0; i < n; i++ {
		active, err := settle(ctx, d, settleLimit)
		if err != nil {
			return out, err
		}
		standby := 1 - active
		// Random phase of the heartbeat timer.
		if err := clock.Sleep(ctx, clock.Real{}, time.Duration(rng.Float64()*float64(e.Interval))); err != nil {
			return out, err
		}
		stop := make(chan struct{})
		w, err := d.Arm(standby, stop)
		if err != nil {
			close(stop)
			return out, err
		}
		t0 := time.Now()
		if err := d.Fail(active, v); err != nil {
			close(stop)
			return out, err
		}
		tr, err := waitTakeover(ctx, w, t0, takeoverLimit)
		close(stop)
		if rerr := d.Restore(active, v); rerr != nil {
			return out, errors.Join(err, rerr)
		}
		if err != nil {
			failures++
			fmt.Fprintf(progress, "  %s %v %s #%d: %v\n%s", d.Name(), e.Interval, v, i+1, err, d.LogTail(standby))
			if failures >= 3 {
				return out, fmt.Errorf("%s %s: %d takeovers failed", d.Name(), v, failures)
			}
			i--
			continue
		}
		fmt.Fprintf(progress, "  %s %v %s #%d: %s -> %s role change %.1f ms, serving %.1f ms\n",
			d.Name(), e.Interval, v, i+1, lab.ApplianceName(active), lab.ApplianceName(standby), pairbench.Millis(tr.role), pairbench.Millis(tr.serving))
		out = append(out, tr)
	}
	return out, nil
}

// waitTakeover waits for both measures after a failure at t0.
func waitTakeover(ctx context.Context, w *watch, t0 time.Time, limit time.Duration) (trial, error) {
	var tr trial
	var roleAt, servingAt time.Time
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	serving := w.serving
	for roleAt.IsZero() || servingAt.IsZero() {
		select {
		case <-ctx.Done():
			return tr, ctx.Err()
		case <-deadline.C:
			return tr, fmt.Errorf("no takeover within %v (role change seen: %t, serving: %t)", limit, !roleAt.IsZero(), !servingAt.IsZero())
		case o := <-serving:
			if o.Err != nil {
				return tr, o.Err
			}
			servingAt, serving = o.At, nil
		case <-tick.C:
			if roleAt.IsZero() {
				at, ok, err := w.role()
				if err != nil {
					return tr, err
				}
				if ok {
					roleAt = at
				}
			}
		}
	}
	return trial{role: roleAt.Sub(t0), serving: servingAt.Sub(t0)}, nil
}

// usage is a daemon's idle footprint per node: CPU in percent of one
// core, PSS and RSS in MiB.
type usage struct {
	cpuPct, pssMB, rssMB float64
}

// footprint samples CPU time, PSS and RSS of both nodes' daemons over d while
// idle and returns per-node averages (the pair's total divided by two).
func footprint(ctx context.Context, drv driver, d time.Duration) (*usage, error) {
	// CPU time per thread from schedstat (nanoseconds on a CPU): clock
	// ticks (10 ms) are too coarse for keepalived, which runs well under
	// one tick a minute at 1s adverts.
	sample := func() (map[int]uint64, []int, error) {
		per := map[int]uint64{}
		var all []int
		for i := range 2 {
			pids, err := drv.PIDs(i)
			if err != nil {
				return nil, nil, err
			}
			for _, pid := range pids {
				tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
				if err != nil {
					return nil, nil, fmt.Errorf("listing threads of pid %d: %w", pid, err)
				}
				for _, t := range tasks {
					tid, err := strconv.Atoi(t.Name())
					if err != nil {
						continue
					}
					b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, tid))
					if err != nil {
						continue // the thread ended meanwhile
					}
					ns, err := schedNS(b)
					if err != nil {
						return nil, nil, err
					}
					per[tid] = ns
				}
				all = append(all, pid)
			}
		}
		return per, all, nil
	}
	t0 := time.Now()
	c0, pids0, err := sample()
	if err != nil {
		return nil, err
	}
	if err := clock.Sleep(ctx, clock.Real{}, d); err != nil {
		return nil, err
	}
	c1, pids1, err := sample()
	if err != nil {
		return nil, err
	}
	if fmt.Sprint(pids0) != fmt.Sprint(pids1) {
		return nil, fmt.Errorf("daemon processes changed while measuring the footprint: %v -> %v", pids0, pids1)
	}
	// Threads started meanwhile count from zero; threads that ended are
	// lost (Go rarely ends its threads, keepalived has one each).
	var cpu uint64
	for tid, ns := range c1 {
		if ns >= c0[tid] {
			cpu += ns - c0[tid]
		}
	}
	wall := time.Since(t0).Seconds()
	var rss, pss uint64
	for _, pid := range pids1 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return nil, fmt.Errorf("reading status of pid %d: %w", pid, err)
		}
		r, err := procKB(b, "VmRSS")
		if err != nil {
			return nil, err
		}
		if b, err = os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err != nil {
			return nil, fmt.Errorf("reading smaps_rollup of pid %d: %w", pid, err)
		}
		p, err := procKB(b, "Pss")
		if err != nil {
			return nil, err
		}
		rss, pss = rss+r, pss+p
	}
	return &usage{
		cpuPct: float64(cpu) / 1e9 / wall * 100 / 2,
		pssMB:  float64(pss) / (1 << 20) / 2,
		rssMB:  float64(rss) / (1 << 20) / 2,
	}, nil
}
