// Command bgp measures how fast a route server stops (and starts again)
// sending traffic to a baton appliance: two baton nodes announce a prefix
// to FRR and BIRD route servers in network namespaces, one of them fails
// (local check, SIGTERM, SIGKILL, silent link cut with hold time 3s), and
// the time from the event until its next hop leaves the route server's
// kernel table is measured, as is the time from restoring the link until
// it is back. It prints one line per event and route server:
//
//	bgp event=check_fail rs=frr p50_ms=X
//	bgp recovery rs=frr p50_ms=X
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/rslab"
	"github.com/batonha/baton/internal/lab/stats"
)

// Targets from the issue.
const (
	hold          = 3 * time.Second
	targetFast    = 300 * time.Millisecond
	targetLinkCut = hold + 500*time.Millisecond
	targetRecover = 6 * time.Second
	poll          = 2 * time.Millisecond
)

func main() {
	bin := flag.String("baton", "bin/baton", "baton binary")
	runs := flag.Int("n", 10, "runs per event and route server")
	kinds := flag.String("rs", "frr,bird", "route servers: frr, bird")
	keep := flag.Bool("keep", false, "keep the working directory (logs) and print its path")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench-bgp must run as root (network namespaces)")
		os.Exit(1)
	}
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "-n must be at least 1")
		os.Exit(2)
	}
	failed := false
	for _, k := range strings.Split(*kinds, ",") {
		kind := rslab.Kind(strings.TrimSpace(k))
		if why := rslab.Available(kind); why != "" {
			fmt.Fprintln(os.Stderr, why)
			os.Exit(1)
		}
		ok, err := bench(kind, *bin, *runs, *keep)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench-bgp (%s): %v\n", kind, err)
			os.Exit(1)
		}
		failed = failed || !ok
	}
	if failed {
		fmt.Fprintln(os.Stderr, "bench-bgp: a target was missed")
		os.Exit(1)
	}
}

type runner struct {
	l    *rslab.Lab
	bin  string
	kind rslab.Kind
}

// bench runs every event n times against one route server and reports
// whether every target was met.
func bench(kind rslab.Kind, bin string, n int, keep bool) (bool, error) {
	dir, err := os.MkdirTemp("", "bench-bgp-")
	if err != nil {
		return false, err
	}
	if keep {
		fmt.Fprintf(os.Stderr, "bench-bgp: working directory %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	l, err := rslab.New(lab.RandomPrefix(), rslab.Options{Kind: kind, Nodes: 2, Dir: dir, Hold: hold,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return false, err
	}
	defer l.Close()
	// ^C tears the lab down.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		if _, ok := <-sig; ok {
			_ = l.Close()
			os.Exit(130)
		}
	}()
	r := &runner{l: l, bin: bin, kind: kind}
	for i := range 2 {
		if err := l.StartNode(i, bin); err != nil {
			return false, err
		}
	}
	if err := r.waitBack(30 * time.Second); err != nil {
		return false, fmt.Errorf("initial ECMP: %w", err)
	}
	type result struct {
		label  string
		target time.Duration
		ds     []time.Duration
	}
	var results []result
	measure := func(label string, target time.Duration, event func() error, restore func() error, rec *[]time.Duration) error {
		res := result{label: label, target: target}
		for range n {
			start := time.Now()
			if err := event(); err != nil {
				return err
			}
			at, hops, err := l.WaitHops(target+10*time.Second, poll, func(h []string) bool { return !rslab.Has(h, 0) })
			if err != nil {
				return err
			}
			if at.IsZero() {
				return fmt.Errorf("%s: next hop never left the route server (hops %v)", label, hops)
			}
			res.ds = append(res.ds, at.Sub(start))
			rstart := time.Now()
			if keep {
				fmt.Fprintf(os.Stderr, "%s: restoring at %s\n", label, rstart.Format("15:04:05.000"))
			}
			if err := restore(); err != nil {
				return err
			}
			if err := r.waitBack(30 * time.Second); err != nil {
				return fmt.Errorf("%s: recovery: %w", label, err)
			}
			if rec != nil {
				*rec = append(*rec, time.Since(rstart))
			}
			// Settle: let the session's keepalives resume before the next run.
			time.Sleep(500 * time.Millisecond)
		}
		results = append(results, res)
		return nil
	}
	node := l.Nodes[0]
	restart := func() error {
		select {
		case <-node.Proc.Done():
		case <-time.After(10 * time.Second):
			return fmt.Errorf("%s did not exit", node.Name)
		}
		return l.StartNode(0, bin)
	}
	if err := measure("event=check_fail", targetFast,
		func() error { return os.Remove(node.Healthy) },
		func() error { return os.WriteFile(node.Healthy, nil, 0o644) }, nil); err != nil {
		return false, err
	}
	if err := measure("event=sigterm", targetFast,
		func() error { return node.Proc.Signal(syscall.SIGTERM) }, restart, nil); err != nil {
		return false, err
	}
	if err := measure("event=sigkill", targetFast,
		func() error { return node.Proc.Signal(syscall.SIGKILL) }, restart, nil); err != nil {
		return false, err
	}
	var recovery []time.Duration
	if err := measure("event=link_cut hold=3s", targetLinkCut,
		func() error { return node.Host.SetLink("eth0", false) },
		func() error { return node.Host.SetLink("eth0", true) }, &recovery); err != nil {
		return false, err
	}
	ok := true
	for _, res := range results {
		p50 := stats.Duration(res.ds, 50)
		fmt.Printf("bgp %s rs=%s p50_ms=%.1f\n", res.label, kind, ms(p50))
		fmt.Fprintf(os.Stderr, "  n=%d p90_ms=%.1f max_ms=%.1f target_ms=%.0f\n", len(res.ds), ms(stats.Duration(res.ds, 90)),
			ms(stats.Duration(res.ds, 100)), ms(res.target))
		ok = ok && p50 <= res.target
	}
	p50 := stats.Duration(recovery, 50)
	fmt.Printf("bgp recovery rs=%s p50_ms=%.1f\n", kind, ms(p50))
	fmt.Fprintf(os.Stderr, "  n=%d p90_ms=%.1f max_ms=%.1f target_ms=%.0f\n", len(recovery), ms(stats.Duration(recovery, 90)),
		ms(stats.Duration(recovery, 100)), ms(targetRecover))
	return ok && p50 <= targetRecover, nil
}

// waitBack waits until both nodes are next hops again.
func (r *runner) waitBack(limit time.Duration) error {
	at, hops, err := r.l.WaitHops(limit, poll, func(h []string) bool { return rslab.Has(h, 0) && rslab.Has(h, 1) })
	if err != nil {
		return err
	}
	if at.IsZero() {
		return fmt.Errorf("next hops %v after %v, want both nodes", hops, limit)
	}
	return nil
}
