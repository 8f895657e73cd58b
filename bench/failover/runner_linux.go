package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/batonha/baton/internal/lab"
)

// variant is how the active node fails.
type variant string

const (
	variantKill     variant = "kill"     // SIGKILL the active daemon
	variantLinkDown variant = "linkdown" // set every link of the active node down
)

// driver runs one HA daemon (baton or keepalived) on both appliances of a
// pair and knows how to fail, observe and restore it.
type driver interface {
	name() string
	start(node int) error
	// settled reports the active node when the pair is settled right now:
	// both daemons up, exactly one active, the other standing by. When it
	// is not, the string says why.
	settled() (active int, ok bool, why string)
	// stableFor is how long settled must hold before a failure.
	stableFor() time.Duration
	// arm starts watching the standby before a failure.
	arm(standby int, stop <-chan struct{}) (*watch, error)
	fail(node int, v variant) error
	restore(node int, v variant) error
	// pids are the node's daemon processes (for CPU and memory).
	pids(node int) ([]int, error)
	// logTail returns the end of the node's daemon log for error reports.
	logTail(node int) string
}

// watch observes a takeover on the standby.
type watch struct {
	// role polls for measure (a): the standby's own record of becoming
	// active, with the time it recorded.
	role func() (time.Time, bool, error)
	// serving delivers measure (b): the standby serving (probe 200 / VIP).
	serving <-chan observation
}

// env is one daemon's run in one lab: the pair, a directory, the interval.
type env struct {
	pair     *lab.Pair
	dir      string
	interval time.Duration
	misses   int
}

func newEnv(interval time.Duration, misses int) (*env, error) {
	p, err := lab.NewPair(lab.RandomPrefix(), nil)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "baton-bench-")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("creating bench directory: %w", err), p.Close())
	}
	return &env{pair: p, dir: dir, interval: interval, misses: misses}, nil
}

func (e *env) close(keep bool) error {
	err := e.pair.Close()
	if !keep {
		err = errors.Join(err, os.RemoveAll(e.dir))
	}
	return err
}

func (e *env) nodeDir(i int) string { return filepath.Join(e.dir, lab.ApplianceName(i)) }

// setLinks sets every link of appliance i up or down.
func (e *env) setLinks(i int, up bool) error {
	h := e.pair.Appliances()[i]
	links, err := h.Links()
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := h.SetLink(l, up); err != nil {
			return err
		}
	}
	return nil
}

// trial is one measured failure.
type trial struct {
	role, serving time.Duration
}

// settle waits until d reports the same active node for d.stableFor().
func settle(ctx context.Context, d driver, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	cur, since := -1, time.Time{}
	why := ""
	for {
		a, ok, w := d.settled()
		if !ok {
			a, why = -1, w
		}
		if a != cur {
			cur, since = a, time.Now()
		}
		if cur >= 0 && time.Since(since) >= d.stableFor() {
			return cur, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("%s did not settle within %v: %s", d.name(), limit, why)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return -1, err
		}
	}
}

// runFailures fails the active node n times and measures each takeover.
func runFailures(ctx context.Context, d driver, e *env, v variant, n int, rng *rand.Rand, progress io.Writer) ([]trial, error) {
	settleLimit := 30*time.Second + 20*e.interval
	takeoverLimit := 5*time.Second + time.Duration(4*e.misses)*e.interval
	var out []trial
	failures := 0
	for i := 0; i < n; i++ {
		active, err := settle(ctx, d, settleLimit)
		if err != nil {
			return out, err
		}
		standby := 1 - active
		// Random phase of the heartbeat timer.
		if err := sleepCtx(ctx, time.Duration(rng.Float64()*float64(e.interval))); err != nil {
			return out, err
		}
		stop := make(chan struct{})
		w, err := d.arm(standby, stop)
		if err != nil {
			close(stop)
			return out, err
		}
		t0 := time.Now()
		if err := d.fail(active, v); err != nil {
			close(stop)
			return out, err
		}
		tr, err := waitTakeover(ctx, w, t0, takeoverLimit)
		close(stop)
		if rerr := d.restore(active, v); rerr != nil {
			return out, errors.Join(err, rerr)
		}
		if err != nil {
			failures++
			fmt.Fprintf(progress, "  %s %v %s #%d: %v\n%s", d.name(), e.interval, v, i+1, err, d.logTail(standby))
			if failures >= 3 {
				return out, fmt.Errorf("%s %s: %d takeovers failed", d.name(), v, failures)
			}
			i--
			continue
		}
		fmt.Fprintf(progress, "  %s %v %s #%d: %s -> %s role change %.1f ms, serving %.1f ms\n",
			d.name(), e.interval, v, i+1, lab.ApplianceName(active), lab.ApplianceName(standby), ms(tr.role), ms(tr.serving))
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
			if o.err != nil {
				return tr, o.err
			}
			servingAt, serving = o.at, nil
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

// footprint samples CPU and RSS of both nodes' daemons over d while idle and
// returns per-node averages: CPU percent of one core and RSS in MB.
func footprint(ctx context.Context, drv driver, d time.Duration) (cpuPct, rssMB float64, err error) {
	const clkTck = 100 // USER_HZ on Linux
	ticks := func() (uint64, []int, error) {
		var sum uint64
		var all []int
		for i := range 2 {
			pids, err := drv.pids(i)
			if err != nil {
				return 0, nil, err
			}
			for _, pid := range pids {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				if err != nil {
					return 0, nil, fmt.Errorf("reading stat of pid %d: %w", pid, err)
				}
				n, err := cpuTicks(b)
				if err != nil {
					return 0, nil, err
				}
				sum += n
				all = append(all, pid)
			}
		}
		return sum, all, nil
	}
	t0 := time.Now()
	c0, pids0, err := ticks()
	if err != nil {
		return 0, 0, err
	}
	if err := sleepCtx(ctx, d); err != nil {
		return 0, 0, err
	}
	c1, pids1, err := ticks()
	if err != nil {
		return 0, 0, err
	}
	if fmt.Sprint(pids0) != fmt.Sprint(pids1) {
		return 0, 0, fmt.Errorf("daemon processes changed while measuring the footprint: %v -> %v", pids0, pids1)
	}
	wall := time.Since(t0).Seconds()
	var rss uint64
	for _, pid := range pids1 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, 0, fmt.Errorf("reading status of pid %d: %w", pid, err)
		}
		r, err := vmRSS(b)
		if err != nil {
			return 0, 0, err
		}
		rss += r
	}
	cpuPct = float64(c1-c0) / clkTck / wall * 100 / 2
	rssMB = float64(rss) / (1 << 20) / 2
	return cpuPct, rssMB, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tail returns the last n lines of a file, indented, for error reports.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := ""
	for _, l := range lines {
		out += "      | " + l + "\n"
	}
	return out
}
