package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/peerings"
	"github.com/batonha/baton/internal/render"
	"github.com/batonha/baton/internal/store"
)

// cmdPeerings runs the route-server peering reconciler from the
// bgp.peerings section: once (--once, optionally --dry-run) or as a
// long-running mode with a poll interval and an optional webhook.
//
// With a witness configured it can run on every appliance: only the holder
// of the peerings lease writes. Without one, run it in one place.
func cmdPeerings(e env, args []string) int {
	fs := newFlags(e, "peerings", "[--config FILE] [--once] [--dry-run] [--json]")
	path := fs.String("config", defaultConfig, "configuration file")
	once := fs.Bool("once", false, "run one round and exit")
	dry := fs.Bool("dry-run", false, "only print what would change")
	asJSON := fs.Bool("json", false, "print plans as JSON")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, code := loadConfig(e, *path)
	if cfg == nil {
		return code
	}
	if cfg.BGP == nil || cfg.BGP.Peerings == nil {
		fmt.Fprintf(e.stderr, "baton: %s has no bgp.peerings section\n", *path)
		return exitUsage
	}
	pc := *cfg.BGP.Peerings
	asn := pc.PeerASN
	if asn == 0 {
		asn = cfg.BGP.ASN
	}
	log := newLogger(e.stderr, cfg.Log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	inv, servers, err := peerings.Backends(ctx, pc)
	if err != nil {
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return exitFailure
	}
	rec := peerings.New(inv, servers, peerings.Options{
		NamePrefix: pc.NamePrefix, PeerASN: uint32(asn), OperationTimeout: pc.OperationTimeout,
		DrainTimeout: pc.DrainTimeout, DryRun: *dry, Logger: log,
	})
	if *once || *dry {
		plans, err := rec.Round(ctx)
		printPlans(e.stdout, plans, *asJSON)
		if err != nil {
			fmt.Fprintf(e.stderr, "baton: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	leader, err := peeringsLeader(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return exitFailure
	}
	runner := peerings.NewRunner(rec, leader, pc.Interval, clock.Real{}, log)
	runner.OnRound = func(plans []peerings.Plan, err error) {
		for _, p := range plans {
			if len(p.Done)+len(p.Unfit)+len(p.Draining) > 0 || p.Skipped != "" {
				log.Info("peerings round", "route_server", p.RouteServer, "done", strings.Join(p.Done, "; "),
					"unfit", len(p.Unfit), "draining", len(p.Draining), "skipped", p.Skipped)
			}
		}
	}
	errc := make(chan error, 2)
	if pc.Webhook.Listen != "" {
		b, err := store.ReadSecret(pc.Webhook.TokenFile, func(w string) { log.Warn("webhook.token_file: " + w) })
		if err != nil {
			fmt.Fprintf(e.stderr, "baton: reading webhook token (bgp.peerings.webhook.token_file): %v\n", err)
			return exitFailure
		}
		wh, err := peerings.NewWebhook(strings.TrimSpace(string(b)), runner.Trigger, log)
		if err != nil {
			fmt.Fprintf(e.stderr, "baton: %v\n", err)
			return exitFailure
		}
		go func() { errc <- peerings.ServeWebhook(ctx, pc.Webhook, wh) }()
	}
	go func() { errc <- runner.Run(ctx) }()
	select {
	case <-ctx.Done():
		return exitOK
	case err := <-errc:
		if err != nil {
			fmt.Fprintf(e.stderr, "baton: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
}

func printPlans(w io.Writer, plans []peerings.Plan, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(plans)
		return
	}
	for _, p := range plans {
		fmt.Fprintf(w, "%s:\n", p.RouteServer)
		if p.Skipped != "" {
			fmt.Fprintf(w, "  skipped: %s\n", p.Skipped)
		}
		for _, x := range p.Delete {
			fmt.Fprintf(w, "  delete  %s (%s)\n", x.Name, x.IP)
		}
		for _, x := range p.Create {
			fmt.Fprintf(w, "  create  %s (%s, AS %d)\n", x.Name, x.IP, x.ASN)
		}
		for _, x := range p.Draining {
			fmt.Fprintf(w, "  drain   %s (%s): session still up, waiting for the node to withdraw\n", x.Name, x.IP)
		}
		for _, x := range p.Unfit {
			fmt.Fprintf(w, "  unfit   %s (%s): beyond the route server's peer limit\n", x.Name, x.IP)
		}
		for _, x := range p.Done {
			fmt.Fprintf(w, "  done    %s\n", x)
		}
		for _, x := range p.Errors {
			fmt.Fprintf(w, "  error   %s\n", x)
		}
		if p.Skipped == "" && len(p.Delete)+len(p.Create)+len(p.Draining)+len(p.Unfit)+len(p.Errors) == 0 {
			fmt.Fprintln(w, "  in step")
		}
	}
}

// cmdRender writes configuration for other tools: `baton render bird`.
func cmdRender(e env, args []string) int {
	if len(args) == 0 || args[0] != "bird" {
		fmt.Fprintln(e.stderr, "usage: baton render bird [--config FILE] [--gateway IP] [--router-id IP] [--standby] [--out FILE]")
		return exitUsage
	}
	fs := newFlags(e, "render bird", "[--config FILE] [--gateway IP] [--router-id IP] [--standby] [--out FILE]")
	path := fs.String("config", defaultConfig, "configuration file")
	gw := fs.String("gateway", "", "next hop of the static routes that originate the prefixes (default: blackhole)")
	rid := fs.String("router-id", "", "BIRD router id (default: bgp.router_id)")
	standby := fs.Bool("standby", false, "active-standby: render the standby's configuration (prepended or no export)")
	out := fs.String("out", "", "write to this file instead of stdout")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	cfg, code := loadConfig(e, *path)
	if cfg == nil {
		return code
	}
	return renderBIRD(e, cfg, *path, render.BIRDOptions{Gateway: *gw, RouterID: *rid, Standby: *standby}, *out)
}

func renderBIRD(e env, cfg *config.Config, path string, opt render.BIRDOptions, out string) int {
	if cfg.BGP == nil {
		fmt.Fprintf(e.stderr, "baton: %s has no bgp section to render\n", path)
		return exitUsage
	}
	b, err := render.BIRD(*cfg.BGP, opt)
	if err != nil {
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return exitUsage
	}
	if out == "" {
		_, _ = e.stdout.Write(b)
		return exitOK
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		fmt.Fprintf(e.stderr, "baton: writing %s: %v\n", out, err)
		return exitFailure
	}
	return exitOK
}
