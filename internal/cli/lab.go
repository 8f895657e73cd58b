package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/batonha/baton/internal/lab"
)

func cmdLab(e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(e.stderr, "usage: baton lab demo [--baton PATH] | baton lab down [--prefix P]")
		return exitUsage
	}
	switch args[0] {
	case "demo":
		fs := newFlags(e, "lab demo", "[--baton PATH]")
		bin := fs.String("baton", "", "baton binary to run in the lab (default: this one)")
		verbose := fs.Bool("v", false, "log the lab's own steps")
		if err := fs.Parse(args[1:]); err != nil {
			return exitUsage
		}
		if os.Geteuid() != 0 {
			fmt.Fprintln(e.stderr, "baton lab demo must run as root: it creates network namespaces, veth pairs and bridges (try: sudo make demo).")
			return exitFailure
		}
		path := *bin
		if path == "" {
			self, err := os.Executable()
			if err != nil {
				fmt.Fprintf(e.stderr, "baton: finding own binary: %v\n", err)
				return exitFailure
			}
			path = self
		}
		level := slog.LevelWarn
		if *verbose {
			level = slog.LevelDebug
		}
		log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if err := lab.Demo(ctx, path, e.stdout, log); err != nil {
			fmt.Fprintf(e.stderr, "baton: demo: %v\n", err)
			return exitFailure
		}
		return exitOK
	case "down":
		fs := newFlags(e, "lab down", "[--prefix P]")
		prefix := fs.String("prefix", "", "namespace prefix to remove (default: every baton lab)")
		if err := fs.Parse(args[1:]); err != nil {
			return exitUsage
		}
		if os.Geteuid() != 0 {
			fmt.Fprintln(e.stderr, "baton lab down must run as root: it deletes network namespaces.")
			return exitFailure
		}
		if err := lab.Cleanup(*prefix); err != nil {
			fmt.Fprintf(e.stderr, "baton: lab down: %v\n", err)
			return exitFailure
		}
		fmt.Fprintln(e.stdout, "lab namespaces removed")
		return exitOK
	}
	fmt.Fprintf(e.stderr, "baton: unknown lab command %q\n", args[0])
	return exitUsage
}
