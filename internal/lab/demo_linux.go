package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/batonha/baton/internal/clock"
)

// demoSettings are the demo's timings; tests shorten them.
type demoSettings struct {
	interval   time.Duration // heartbeat interval
	misses     int
	lbEvery    time.Duration // balancer probe period
	sendEvery  time.Duration // UDP request period
	settleWait time.Duration // how long to wait for one active node
	settleFor  time.Duration // how long the verdict must hold
	takeover   time.Duration // how long to wait for the standby to take over
}

func defaultDemoSettings() demoSettings {
	return demoSettings{
		interval:   100 * time.Millisecond,
		misses:     3,
		lbEvery:    20 * time.Millisecond,
		sendEvery:  10 * time.Millisecond,
		settleWait: 30 * time.Second,
		settleFor:  500 * time.Millisecond,
		takeover:   15 * time.Second,
	}
}

// Demo builds the pair topology, runs baton (batonBin) on both appliances,
// puts an emulated load balancer and a stream of UDP requests in front of
// them, SIGKILLs the active node's daemon and writes a timeline of the
// takeover to out. It restarts the killed node, shows it rejoin, and tears
// everything down before returning.
func Demo(ctx context.Context, batonBin string, out io.Writer, log *slog.Logger) error {
	return runDemo(ctx, batonBin, out, log, defaultDemoSettings())
}

type demo struct {
	s     demoSettings
	out   io.Writer
	log   *slog.Logger
	pair  *Pair
	nodes [2]*BatonNode
	lb    *Balancer
	tr    *Traffic
	bin   string
}

func runDemo(ctx context.Context, batonBin string, out io.Writer, log *slog.Logger, s demoSettings) (err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin, err := exec.LookPath(batonBin)
	if err != nil {
		return fmt.Errorf("finding the baton binary %q (build it with `go build -o bin/baton ./cmd/baton`): %w", batonBin, err)
	}
	if os.Geteuid() != 0 {
		return errors.New("the demo needs root: it creates network namespaces")
	}
	dir, err := os.MkdirTemp("", "baton-demo-")
	if err != nil {
		return fmt.Errorf("creating demo directory: %w", err)
	}
	defer os.RemoveAll(dir)

	prefix := RandomPrefix()
	pair, err := NewPair(prefix, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, pair.Close()) }()

	d := &demo{s: s, out: out, log: log, pair: pair, bin: bin}
	opts := [2]NodeOptions{
		{Priority: 150, Interval: s.interval, Misses: s.misses},
		{Priority: 100, Interval: s.interval, Misses: s.misses},
	}
	if d.nodes, err = SetupBatonNodes(pair, dir, opts); err != nil {
		return err
	}
	err = d.run(ctx)
	if err != nil {
		d.dumpLogs()
	}
	return err
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

func (d *demo) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.printf("baton demo in lab %s: client -> {nva-a, nva-b} -> server\n", d.pair.Prefix)
	d.printf("  nva-a priority 150, nva-b priority 100, heartbeat %v x %d misses, paths front + hb, channel on hb\n", d.s.interval, d.s.misses)

	echoAddr := net.JoinHostPort(ServerBack, "7")
	echo, err := StartEcho(d.pair.Server, echoAddr)
	if err != nil {
		return err
	}
	defer echo.Close()

	for _, n := range d.nodes {
		if err := n.Start(d.bin); err != nil {
			return err
		}
	}
	d.lb = NewBalancer(d.pair, d.s.lbEvery, d.log)
	go d.lb.Run(ctx)
	if d.tr, err = NewTraffic(d.pair.Client, echoAddr, d.s.sendEvery); err != nil {
		return err
	}
	go d.tr.Run(ctx)

	d.printf("  waiting for exactly one node to answer the load balancer's probe...\n")
	active, err := d.waitOneActive(ctx, d.s.settleWait)
	if err != nil {
		return err
	}
	standby := 1 - active
	d.printf("  %s answers 200, %s does not: traffic flows via %s\n\n", ApplianceName(active), ApplianceName(standby), ApplianceName(active))

	// Let some traffic flow, then kill.
	if err := clock.Sleep(ctx, clock.Real{}, 300*time.Millisecond); err != nil {
		return err
	}
	follow := NewLogFollower(d.nodes[standby].LogPath)
	if err := follow.SkipToEnd(); err != nil {
		return err
	}
	killed := d.nodes[active]
	t0 := time.Now()
	if err := killed.Proc.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	tl := &timeline{t0: t0}
	tl.add(t0, fmt.Sprintf("SIGKILL baton on %s (pid %d)", ApplianceName(active), killed.Proc.PID))

	var roleAt, probeAt, answerAt time.Time
	var rc RoleChange
	deadline := time.Now().Add(d.s.takeover)
	for roleAt.IsZero() || probeAt.IsZero() || answerAt.IsZero() {
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting %v for %s to take over: role change seen=%t, probe 200 seen=%t, answer via it seen=%t",
				d.s.takeover, ApplianceName(standby), !roleAt.IsZero(), !probeAt.IsZero(), !answerAt.IsZero())
		}
		if err := clock.Sleep(ctx, clock.Real{}, 10*time.Millisecond); err != nil {
			return err
		}
		if roleAt.IsZero() {
			rcs, err := follow.Next()
			if err != nil {
				return err
			}
			for _, r := range rcs {
				if r.To == "ACTIVE" && roleAt.IsZero() {
					rc, roleAt = r, r.Time
				}
			}
		}
		var steerAt time.Time
		for _, e := range d.lb.Events() {
			if e.Time.Before(t0) {
				continue
			}
			if !e.Steer && e.Node == standby && e.Healthy && probeAt.IsZero() {
				probeAt = e.Time
			}
			if e.Steer && e.Node == standby && steerAt.IsZero() {
				steerAt = e.Time
			}
		}
		if !steerAt.IsZero() && answerAt.IsZero() {
			_, answers := d.tr.Stats()
			for _, a := range answers {
				if !a.Sent.Before(steerAt) {
					answerAt = a.Received
					break
				}
			}
		}
	}
	for _, e := range d.lb.Events() {
		if e.Time.Before(t0) || e.Time.After(answerAt) {
			continue
		}
		switch {
		case e.Steer && e.Node < 0:
			tl.add(e.Time, "load balancer: no appliance healthy, client traffic has no path")
		case e.Steer:
			tl.add(e.Time, "load balancer: client and server routes now via "+ApplianceName(e.Node))
		case e.Healthy:
			tl.add(e.Time, fmt.Sprintf("load balancer: %s probe answers 200", ApplianceName(e.Node)))
		default:
			tl.add(e.Time, fmt.Sprintf("load balancer: %s probe fails", ApplianceName(e.Node)))
		}
	}
	tl.add(roleAt, fmt.Sprintf("%s logs role changed %s -> %s (reason %q, term %d)", ApplianceName(standby), rc.From, rc.To, rc.Reason, rc.Term))
	tl.add(answerAt, "first UDP answer via "+ApplianceName(standby))
	tl.print(d.out)

	// Traffic gap: the longest silence between answers around the failure.
	if err := clock.Sleep(ctx, clock.Real{}, 200*time.Millisecond); err != nil {
		return err
	}
	gap, lost, sent := d.trafficGap(t0.Add(-200*time.Millisecond), answerAt.Add(100*time.Millisecond))
	d.printf("\n  detection + decision (kill -> role change):   %8.1f ms\n", ms(roleAt.Sub(t0)))
	d.printf("  takeover (kill -> standby's probe 200):        %8.1f ms\n", ms(probeAt.Sub(t0)))
	d.printf("  traffic gap (longest silence between answers): %8.1f ms (%d of %d requests lost)\n\n", ms(gap), lost, sent)

	// Rejoin.
	d.printf("  restarting baton on %s...\n", ApplianceName(active))
	rejoin := NewLogFollower(killed.LogPath)
	if err := rejoin.SkipToEnd(); err != nil {
		return err
	}
	t1 := time.Now()
	if err := killed.Start(d.bin); err != nil {
		return err
	}
	var last RoleChange
	deadline = time.Now().Add(d.s.takeover)
	for {
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting %v for the restarted %s to settle (last role change %q)", d.s.takeover, ApplianceName(active), last.To)
		}
		if err := clock.Sleep(ctx, clock.Real{}, 20*time.Millisecond); err != nil {
			return err
		}
		rcs, err := rejoin.Next()
		if err != nil {
			return err
		}
		for _, r := range rcs {
			last = r
			d.printf("  %+9.1f ms  %s logs role changed %s -> %s (reason %q)\n", ms(r.Time.Sub(t1)), ApplianceName(active), r.From, r.To, r.Reason)
		}
		if last.To == "STANDBY" || last.To == "ACTIVE" {
			// Give the pair a moment and read the load balancer's verdict.
			if err := clock.Sleep(ctx, clock.Real{}, 5*d.s.interval); err != nil {
				return err
			}
			h := d.lb.Healthy()
			d.printf("  now: nva-a probe %s, nva-b probe %s; traffic via %s\n", verdict(h[0]), verdict(h[1]), targetName(d.lb.Target()))
			return nil
		}
	}
}

// waitOneActive waits until exactly one appliance answers 200 and that has
// held for settleFor; it returns that appliance.
func (d *demo) waitOneActive(ctx context.Context, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	var since time.Time
	cur := -1
	for {
		for i, n := range d.nodes {
			if n.Proc.Exited() {
				return -1, fmt.Errorf("baton on %s exited: %v", ApplianceName(i), n.Proc.Wait())
			}
		}
		h := d.lb.Healthy()
		one := -1
		if h[0] != h[1] {
			one = 0
			if h[1] {
				one = 1
			}
		}
		if one != cur {
			cur, since = one, time.Now()
		}
		if cur >= 0 && time.Since(since) >= d.s.settleFor && d.lb.Target() == cur {
			return cur, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("waiting %v for exactly one appliance to answer the probe with 200 (now: nva-a %s, nva-b %s)", limit, verdict(h[0]), verdict(h[1]))
		}
		if err := clock.Sleep(ctx, clock.Real{}, d.s.lbEvery); err != nil {
			return -1, err
		}
	}
}

// trafficGap returns the longest interval without an answer in [from, to],
// and how many requests sent in that window went unanswered.
func (d *demo) trafficGap(from, to time.Time) (gap time.Duration, lost, sent int) {
	_, answers := d.tr.Stats()
	prev := from
	answered := 0
	for _, a := range answers {
		if a.Received.Before(from) || a.Received.After(to) {
			continue
		}
		if g := a.Received.Sub(prev); g > gap {
			gap = g
		}
		prev = a.Received
		if !a.Sent.Before(from) {
			answered++
		}
	}
	if g := to.Sub(prev); g > gap {
		gap = g
	}
	sent = d.tr.SentSince(from) - d.tr.SentSince(to)
	return gap, max(sent-answered, 0), sent
}

func (d *demo) dumpLogs() {
	for i, n := range d.nodes {
		if n == nil {
			continue
		}
		b, err := os.ReadFile(n.LogPath)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		d.printf("\n  last lines of %s's log:\n", ApplianceName(i))
		for _, l := range lines {
			d.printf("    %s\n", l)
		}
	}
}

type timeline struct {
	t0     time.Time
	events []tlEvent
}

type tlEvent struct {
	at  time.Time
	msg string
}

func (t *timeline) add(at time.Time, msg string) { t.events = append(t.events, tlEvent{at, msg}) }

func (t *timeline) print(w io.Writer) {
	slices.SortStableFunc(t.events, func(a, b tlEvent) int { return a.at.Compare(b.at) })
	for _, e := range t.events {
		fmt.Fprintf(w, "  %+9.1f ms  %s\n", ms(e.at.Sub(t.t0)), e.msg)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func verdict(ok bool) string {
	if ok {
		return "200"
	}
	return "not 200"
}

func targetName(i int) string {
	if i < 0 {
		return "nobody"
	}
	return ApplianceName(i)
}
