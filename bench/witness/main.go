// Command witness measures an outage of the witness alone (make
// bench-witness): for each witness type it builds the partition lab (two
// real baton nodes, 100 ms heartbeats, the witness in its own namespace
// and a prober polling both probes every 10 ms), makes the witness
// unreachable from both nodes for -outage while they still hear each
// other, and prints
//
//	witness outage_s=10 witness=etcd no_active_ms=X dual_active_samples=X recover_ms=X
//
// no_active_ms and dual_active_samples count the prober's samples from the
// start of the outage until the pair has converged after it (targets: 0
// and 0); recover_ms is the time from the witness's return until the
// active holds a lease again, confirmed by the witness (target ≤ 500).
// It exits 1 when a target is missed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/batonha/baton/e2e/partition"
)

func main() {
	bin := flag.String("baton", "bin/baton", "baton binary")
	witnesses := flag.String("witness", "etcd,dynamodb,azureblob", "comma-separated witness types")
	outage := flag.Duration("outage", 10*time.Second, "how long the witness is unreachable")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench-witness: needs root (network namespaces)")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-witness:", err)
		os.Exit(2)
	}
	work, err := os.MkdirTemp("", "baton-bench-witness-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-witness:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed := false
	for _, w := range strings.Split(*witnesses, ",") {
		res, err := partition.MeasureWitnessOutage(ctx, partition.ClusterOptions{Bin: abs, Dir: filepath.Join(work, w), Witness: w}, *outage)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench-witness %s: %v (logs in %s)\n", w, err, filepath.Join(work, w))
			failed = true
			continue
		}
		fmt.Println(res.Line())
		fmt.Fprintf(os.Stderr, "  at the end of the outage the active had %s\n", res.During)
		if res.NoActive > 0 || res.DualActiveSamples > 0 || res.Recover > 500*time.Millisecond {
			fmt.Fprintf(os.Stderr, "  %s: target missed (no_active_ms=0, dual_active_samples=0, recover_ms<=500)\n", w)
			failed = true
		}
		if ctx.Err() != nil {
			break
		}
	}
	if failed {
		os.Exit(1)
	}
	os.RemoveAll(work)
}
