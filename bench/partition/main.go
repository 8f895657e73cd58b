// Command partition runs baton's partition suite (make test-partition):
// for each witness type it builds the lab, runs a seeded random schedule
// of faults against two real baton nodes and prints
//
//	partition trials=200 witness=etcd dual_active_samples=X no_active_p50_ms=X no_active_p95_ms=X
//
// followed by a details line on stderr. It exits 1 when a target is missed
// and prints the seed, so that `-seed N -witness W` repeats the run.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
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
	witnesses := flag.String("witness", "etcd,azureblob,dynamodb,none", "comma-separated witness types to run")
	trials := flag.Int("trials", 200, "trials per witness type")
	azureTrials := flag.Int("azure-trials", 20, "trials for azureblob (its minimum lease is 15s)")
	seed := flag.Int64("seed", 0, "schedule seed (0: from the time)")
	dir := flag.String("dir", "", "working directory (default: a temporary one, removed on success)")
	verbose := flag.Bool("v", false, "log every trial")
	flag.Parse()

	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "partition: needs root (network namespaces)")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "partition:", err)
		os.Exit(2)
	}
	if *seed == 0 {
		*seed = time.Now().UnixNano() % 1_000_000_007
	}
	work := *dir
	if work == "" {
		if work, err = os.MkdirTemp("", "baton-partition-"); err != nil {
			fmt.Fprintln(os.Stderr, "partition:", err)
			os.Exit(2)
		}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	failed := false
	for _, w := range strings.Split(*witnesses, ",") {
		n := *trials
		if w == partition.WitnessAzureBlob {
			n = *azureTrials
		}
		started := time.Now()
		res, err := partition.Run(ctx, partition.Options{
			Bin: abs, Dir: filepath.Join(work, w), Witness: w, Trials: n, Seed: *seed, Log: log,
		})
		fmt.Println(res.Line())
		fmt.Fprintf(os.Stderr, "  %s took=%v\n", res.Details(), time.Since(started).Round(time.Second))
		if *verbose {
			for _, l := range res.Longest(10) {
				fmt.Fprintf(os.Stderr, "  no active for %s\n", l)
			}
		}
		if err != nil || !res.OK() {
			failed = true
			if err != nil {
				fmt.Fprintf(os.Stderr, "  error: %v\n", err)
			}
			for _, v := range res.Violations {
				fmt.Fprintf(os.Stderr, "  violation: %s\n", v)
			}
			fmt.Fprintf(os.Stderr, "  repeat with: go run ./bench/partition -baton %s -witness %s -trials %d -seed %d (logs in %s)\n",
				*bin, w, n, *seed, filepath.Join(work, w))
		}
		if ctx.Err() != nil {
			break
		}
	}
	if failed {
		os.Exit(1)
	}
	if *dir == "" {
		os.RemoveAll(work)
	}
}
