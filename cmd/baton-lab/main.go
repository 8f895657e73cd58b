// Command baton-lab runs baton's network-namespace lab: `baton-lab demo`
// starts a client, two appliances and a server in namespaces, kills the
// active and prints the failover timeline; `baton-lab down` removes what an
// interrupted run left behind. It is a separate binary so that the test
// topology is never linked into the shipped baton.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/batonha/baton/internal/lab"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: baton-lab demo --baton PATH [-v] | baton-lab down [--prefix P]")
		return exitUsage
	}
	switch args[0] {
	case "demo":
		fs := flag.NewFlagSet("baton-lab demo", flag.ContinueOnError)
		fs.SetOutput(stderr)
		bin := fs.String("baton", "", "the baton binary to run on the lab's appliances (required)")
		verbose := fs.Bool("v", false, "log the lab's own steps")
		if err := fs.Parse(args[1:]); err != nil {
			return exitUsage
		}
		if *bin == "" {
			fmt.Fprintln(stderr, "baton-lab demo: --baton PATH is required (make demo passes bin/baton)")
			return exitUsage
		}
		if os.Geteuid() != 0 {
			fmt.Fprintln(stderr, "baton-lab demo must run as root: it creates network namespaces, veth pairs and bridges (try: sudo make demo).")
			return exitFailure
		}
		level := slog.LevelWarn
		if *verbose {
			level = slog.LevelDebug
		}
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if err := lab.Demo(ctx, *bin, stdout, log); err != nil {
			fmt.Fprintf(stderr, "baton-lab: demo: %v\n", err)
			return exitFailure
		}
		return exitOK
	case "down":
		fs := flag.NewFlagSet("baton-lab down", flag.ContinueOnError)
		fs.SetOutput(stderr)
		prefix := fs.String("prefix", "", "namespace prefix to remove (default: every baton lab)")
		if err := fs.Parse(args[1:]); err != nil {
			return exitUsage
		}
		if os.Geteuid() != 0 {
			fmt.Fprintln(stderr, "baton-lab down must run as root: it deletes network namespaces.")
			return exitFailure
		}
		if err := lab.Cleanup(*prefix); err != nil {
			fmt.Fprintf(stderr, "baton-lab: down: %v\n", err)
			return exitFailure
		}
		fmt.Fprintln(stdout, "lab namespaces removed")
		return exitOK
	}
	fmt.Fprintf(stderr, "baton-lab: unknown command %q\n", args[0])
	return exitUsage
}
