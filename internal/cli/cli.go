// Package cli implements baton's subcommands.
package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/daemon"
)

// defaultConfig is where run, validate and friends look by default.
const defaultConfig = "/etc/baton/baton.yaml"

// version is overridden by the linker: -X github.com/batonha/baton/internal/cli.version=...
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

type env struct {
	stdout, stderr io.Writer
	environ        []string
}

type subcommand struct {
	name, summary string
	run           func(e env, args []string) int
}

func commands() []subcommand {
	return []subcommand{
		{"run", "run the daemon", cmdRun},
		{"status", "show role, peer paths, probe, checks and recent transitions", cmdStatus},
		{"events", "follow the daemon's event stream (transitions, paths, actions, drops)", cmdEvents},
		{"switchover", "hand the active role to the peer (planned)", cmdSwitchover},
		{"maintenance", "on|off: keep this node from being or becoming active", cmdMaintenance},
		{"validate", "check a configuration file and list every error", cmdValidate},
		{"kvm", "plan|check: Open vSwitch bridges and libvirt interfaces for a KVM pair", cmdKVM},
		{"sessions", "session sync: counts, lag and a filtered dump of held connections", cmdSessions},
		{"sync", "now|status|diff: configuration file sync", cmdSync},
		{"peerings", "reconcile route-server BGP peerings with a scale set (--once, --dry-run)", cmdPeerings},
		{"render", "bird: generate the BIRD configuration equivalent to the bgp section", cmdRender},
		{"policy", "print the least-privilege IAM policy / Azure role for the routes, addresses, dns, bgp.peerings and witness sections", cmdPolicy},
		{"init", "write a pair's starting configuration: keys, both nodes' baton.yaml and the cloud policy", cmdInit},
		{"keygen", "create the cluster CA, node certificates and heartbeat key", cmdKeygen},
		{"version", "print the version", cmdVersion},
	}
}

// Run runs baton with args (without the program name) and returns the
// process exit code.
func Run(args []string, stdout, stderr io.Writer, environ []string) int {
	e := env{stdout: stdout, stderr: stderr, environ: environ}
	if len(args) == 2 && args[0] == "help" {
		return help(e, args[1])
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(stderr, "baton: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

// help prints one command's summary and flags (baton help COMMAND).
func help(e env, name string) int {
	for _, c := range commands() {
		if c.name == name {
			fmt.Fprintf(e.stdout, "baton %s: %s\n\n", c.name, c.summary)
			// Every command prints its usage and flags for -h.
			c.run(env{stdout: e.stdout, stderr: e.stdout, environ: e.environ}, []string{"-h"})
			return exitOK
		}
	}
	fmt.Fprintf(e.stderr, "baton: unknown command %q\n", name)
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: baton COMMAND [flags]\n\ncommands:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRun 'baton help COMMAND' (or 'baton COMMAND -h') for a command's flags.")
}

func newFlags(e env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: baton %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

func loadConfig(e env, path string) (*config.Config, int) {
	cfg, err := config.Load(path, e.environ)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			fmt.Fprintf(e.stderr, "baton: %s: %d error(s):\n", path, len(errs))
			for _, fe := range errs {
				fmt.Fprintf(e.stderr, "  %s\n", fe.Error())
			}
			return nil, exitUsage
		}
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return nil, exitUsage
	}
	return cfg, exitOK
}

func newLogger(w io.Writer, cfg config.Log) *slog.Logger {
	var level slog.Level
	switch cfg.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdRun(e env, args []string) int {
	fs := newFlags(e, "run", "[--config FILE]")
	path := fs.String("config", defaultConfig, "configuration file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE` (for benchmarks)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, code := loadConfig(e, *path)
	if cfg == nil {
		return code
	}
	log := newLogger(e.stderr, cfg.Log)
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(e.stderr, "baton: %v\n", err)
			return exitFailure
		}
		defer stopProfile()
	}
	d, err := daemon.New(daemon.Options{Config: cfg, Logger: log, Environ: e.environ, Version: version})
	if err != nil {
		log.Error("cannot start", "err", err)
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return exitFailure
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := d.Run(ctx); err != nil {
		log.Error("stopped with error", "err", err)
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func cmdValidate(e env, args []string) int {
	fs := newFlags(e, "validate", "[--config FILE]")
	path := fs.String("config", defaultConfig, "configuration file")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, code := loadConfig(e, *path)
	if cfg == nil {
		return code
	}
	warnings, err := daemon.CheckSecrets(cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "baton: %s: %v\n", *path, err)
		return exitUsage
	}
	for _, w := range warnings {
		fmt.Fprintf(e.stderr, "baton: warning: %s\n", w)
	}
	if cfg.Peer.Name == "" {
		fmt.Fprintf(e.stdout, "%s: ok (node %s, no peer: announces over BGP while healthy, %d check(s))\n", *path, cfg.Node.Name, len(cfg.Checks))
		return exitOK
	}
	fmt.Fprintf(e.stdout, "%s: ok (node %s, peer %s, %d path(s), %d check(s))\n", *path, cfg.Node.Name, cfg.Peer.Name,
		len(cfg.Peer.Paths)+len(cfg.Peer.Checks)+boolInt(cfg.Peer.Channel.Enabled), len(cfg.Checks))
	return exitOK
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func cmdVersion(e env, args []string) int {
	if err := newFlags(e, "version", "").Parse(args); err != nil {
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "baton %s\n", version)
	return exitOK
}

// clientFlags adds the flags that say how to reach a daemon.
type clientFlags struct {
	socket, url, tokenFile, caFile, config *string
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		socket:    fs.String("socket", "", "API unix socket (default: api.socket from --config, else /run/baton/baton.sock)"),
		url:       fs.String("url", "", "API URL of a TCP listener, e.g. https://10.0.0.4:8446 (needs --token-file)"),
		tokenFile: fs.String("token-file", "", "bearer token file for --url"),
		caFile:    fs.String("ca-file", "", "CA bundle the --url server's certificate chains to (the cluster's ca.crt from baton keygen)"),
		config:    fs.String("config", "", "configuration file to read api.socket from"),
	}
}

func (c clientFlags) client(e env) (*api.Client, error) {
	if *c.url != "" {
		tok := ""
		if *c.tokenFile != "" {
			b, err := os.ReadFile(*c.tokenFile)
			if err != nil {
				return nil, fmt.Errorf("reading token: %w", err)
			}
			tok = strings.TrimSpace(string(b))
		}
		var roots *x509.CertPool
		if *c.caFile != "" {
			b, err := os.ReadFile(*c.caFile)
			if err != nil {
				return nil, fmt.Errorf("reading CA bundle: %w", err)
			}
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("no PEM certificate in %s", *c.caFile)
			}
		}
		return api.NewClient(*c.url, tok, roots), nil
	}
	sock := *c.socket
	if sock == "" && *c.config != "" {
		cfg, err := config.Load(*c.config, e.environ)
		if err != nil {
			return nil, err
		}
		sock = cfg.API.Socket
	}
	if sock == "" {
		sock = "/run/baton/baton.sock"
	}
	return api.NewClient(sock, ""), nil
}

// call runs fn against the daemon cf points at and prints its error.
func call(e env, cf clientFlags, timeout time.Duration, fn func(c *api.Client, ctx context.Context) (api.Status, error)) (api.Status, bool) {
	c, err := cf.client(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return api.Status{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := fn(c, ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "baton: %v\n", err)
		return api.Status{}, false
	}
	return st, true
}

func cmdStatus(e env, args []string) int {
	fs := newFlags(e, "status", "[--json | --watch] [--socket PATH | --config FILE | --url URL --token-file F]")
	asJSON := fs.Bool("json", false, "print JSON")
	watch := fs.Bool("watch", false, "redraw in place on every event until interrupted")
	cf := addClientFlags(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *watch {
		c, err := cf.client(e)
		if err != nil {
			fmt.Fprintf(e.stderr, "baton: %v\n", err)
			return exitFailure
		}
		return watchStatus(e, c)
	}
	st, ok := call(e, cf, 10*time.Second, (*api.Client).Status)
	if !ok {
		return exitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return exitOK
	}
	printStatus(e.stdout, st, time.Now())
	return exitOK
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms ago", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs ago", d.Seconds())
	default:
		return d.Truncate(time.Second).String() + " ago"
	}
}

func printStatus(w io.Writer, st api.Status, now time.Time) {
	flags := []string{}
	if st.Maintenance {
		flags = append(flags, "maintenance")
	}
	if st.Handover {
		flags = append(flags, "handover pending")
	}
	if !st.Healthy {
		flags = append(flags, "unhealthy")
	}
	fmt.Fprintf(w, "node   %s  %s  term %d  since %s (%s)  reason %s", st.Node, st.Role, st.Term,
		st.Since.Local().Format("15:04:05.000"), ago(now, st.Since), st.Reason)
	if len(flags) > 0 {
		fmt.Fprintf(w, "  [%s]", strings.Join(flags, ", "))
	}
	fmt.Fprintln(w)
	if st.LastError != "" {
		fmt.Fprintf(w, "error  %s\n", st.LastError)
	}
	if len(st.LinksDown)+len(st.LinksRising) > 0 {
		fmt.Fprintf(w, "links  down: %s  rising: %s\n", strings.Join(st.LinksDown, ", "), strings.Join(st.LinksRising, ", "))
	}
	if r := st.LastReassertion; r != nil {
		var n uint64
		for _, c := range st.Reassertions {
			n += c
		}
		fmt.Fprintf(w, "reassert  %d times, last %s (%s, term %d)\n", n, ago(now, r.At), r.Cause, r.Term)
	}
	p := st.Peer
	if p.Alive {
		fmt.Fprintf(w, "peer   %s  alive  %s  term %d  priority %d  healthy %v\n", p.Name, p.Role, p.Term, p.Priority, p.Healthy)
	} else {
		what := "DOWN"
		if p.Gone {
			what = "DOWN (process gone)"
		}
		fmt.Fprintf(w, "peer   %s  %s  last heard %s\n", p.Name, what, ago(now, p.LastHeard))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  path\tkind\tstate\trtt\tlast heard\tsent/recv\terror")
	for _, pa := range p.Paths {
		state := "down"
		if pa.Up {
			state = "up"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%.2fms\t%s\t%d/%d\t%s\n", pa.Name, pa.Kind, state, pa.RTTMillis, ago(now, pa.LastHeard), pa.Sent, pa.Received, pa.LastError)
	}
	tw.Flush()
	if len(p.Drops) > 0 {
		keys := make([]string, 0, len(p.Drops))
		for k := range p.Drops {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := []string{}
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, p.Drops[k]))
		}
		fmt.Fprintf(w, "  dropped: %s\n", strings.Join(parts, " "))
	}
	if wi := st.Witness; wi != nil {
		state := "not holding"
		switch {
		case wi.Holding:
			state = fmt.Sprintf("HOLDING (token %d, %.1fs left)", wi.Token, wi.TimeLeftMs/1000)
		case wi.HoldingByPeer:
			state = "unreachable, holding by peer agreement"
		case wi.Waiting:
			state = "waiting for the lease"
			if wi.Holder != "" {
				state += " (held by " + wi.Holder + ")"
			}
		case wi.Holder != "":
			state = "held by " + wi.Holder
		}
		if wi.HoldingByPeer {
			fmt.Fprintf(w, "witness: %s (%s)  renewals %d, failures %d", state, wi.Type, wi.Renewals, wi.RenewFailures)
		} else {
			fmt.Fprintf(w, "witness %s  %s  renewals %d, failures %d", wi.Type, state, wi.Renewals, wi.RenewFailures)
		}
		if wi.LastError != "" {
			fmt.Fprintf(w, "  last error: %s", wi.LastError)
		}
		fmt.Fprintln(w)
	}
	if pr := st.Probe; pr != nil {
		fmt.Fprintf(w, "probe  %s %s  answering %d  %s  (last probe %s", pr.Mode, pr.Listen, pr.Answering, pr.State, ago(now, pr.LastProbe))
		if pr.LastSource != "" {
			fmt.Fprintf(w, " from %s", pr.LastSource)
		}
		fmt.Fprintf(w, "; 200s %d, 503s %d)\n", pr.Count200, pr.Count503)
	}
	for _, c := range st.Checks {
		state := "healthy"
		if !c.Healthy {
			state = "FAILING"
		}
		fmt.Fprintf(w, "check  %s (%s)  %s  %s  %s\n", c.Name, c.Type, state, ago(now, c.LastRun), c.LastResult)
	}
	for _, a := range st.Actions {
		res := "ok"
		if !a.OK {
			res = "FAILED: " + a.Error
		}
		fmt.Fprintf(w, "action %s  %s  %s  %.1fms  attempt %d\n", a.Name, a.Op, res, a.DurationMs, a.Attempts)
	}
	if len(st.Transitions) > 0 {
		fmt.Fprintln(w, "transitions (newest last):")
		trs := st.Transitions
		if len(trs) > 10 {
			trs = trs[len(trs)-10:]
		}
		for _, t := range trs {
			fmt.Fprintf(w, "  %s  %-11s -> %-11s term %-4d %s", t.At.Local().Format("15:04:05.000"), t.From, t.To, t.Term, t.Reason)
			if t.DetectedMs > 0 {
				fmt.Fprintf(w, "  detected %.1fms before", t.DetectedMs)
			}
			if len(t.Steps) > 0 {
				parts := []string{}
				for _, s := range t.Steps {
					r := ""
					if !s.OK {
						r = " FAILED"
					}
					parts = append(parts, fmt.Sprintf("%s %s done at %.1fms%s", s.Action, s.Op, s.DoneAtMs, r))
				}
				fmt.Fprintf(w, "  [%s; total %.1fms]", strings.Join(parts, ", "), t.TotalMs)
			}
			fmt.Fprintln(w)
		}
	}
	for _, h := range st.Hooks {
		fmt.Fprintf(w, "hook   %s (%s) exit %d %.0fms %s\n", h.Path, h.State, h.ExitCode, h.DurationMs, h.Error)
	}
	if st.HooksDropped > 0 {
		fmt.Fprintf(w, "hooks  %d transitions dropped (the hook queue was full)\n", st.HooksDropped)
	}
}

func cmdSwitchover(e env, args []string) int {
	fs := newFlags(e, "switchover", "[--socket PATH | --config FILE]")
	cf := addClientFlags(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	st, ok := call(e, cf, 60*time.Second, (*api.Client).Switchover)
	if !ok {
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "switchover done: %s is now %s (term %d)\n", st.Node, st.Role, st.Term)
	return exitOK
}

func cmdMaintenance(e env, args []string) int {
	fs := newFlags(e, "maintenance", "on|off [--socket PATH | --config FILE]")
	cf := addClientFlags(fs)
	if len(args) == 0 || (args[0] != "on" && args[0] != "off") {
		fmt.Fprintln(e.stderr, "usage: baton maintenance on|off [--socket PATH | --config FILE]")
		return exitUsage
	}
	on := args[0] == "on"
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	st, ok := call(e, cf, 60*time.Second, func(c *api.Client, ctx context.Context) (api.Status, error) {
		return c.Maintenance(ctx, on)
	})
	if !ok {
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "maintenance %s: %s is %s (term %d)\n", args[0], st.Node, st.Role, st.Term)
	return exitOK
}

// startCPUProfile profiles the process into path until the returned
// function is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
