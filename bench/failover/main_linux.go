// Command failover measures takeover time and idle footprint of baton and
// of keepalived (VRRPv3, unicast) in the same network-namespace topology;
// see README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
	"github.com/batonha/baton/internal/heartbeat"
)

type options struct {
	n          int
	intervals  []time.Duration
	variants   []pairbench.Variant
	scenarios  map[string]bool
	flaps      int
	toggles    int
	only       string
	batonBin   string
	keepalived string
	misses     int
	footprint  time.Duration
	pprof      bool
	fast       time.Duration
	soak       time.Duration
	keep       bool
	seed       uint64
}

// The scenarios -scenarios selects from.
var allScenarios = []string{"failover", "footprint", "failback", "flap", "fast"}

func main() {
	var o options
	var intervals, variants, scenarios string
	flag.IntVar(&o.n, "n", 20, "failures per daemon, interval and variant (failover, failback, fast)")
	flag.StringVar(&scenarios, "scenarios", strings.Join(allScenarios, ","), "scenarios to run: "+strings.Join(allScenarios, ", "))
	flag.IntVar(&o.flaps, "flaps", 20, "flap sequences per daemon and interval")
	flag.IntVar(&o.toggles, "toggles", 20, "link state changes per flap sequence (even: it ends up)")
	flag.StringVar(&intervals, "intervals", "1s,100ms", "heartbeat / advert intervals")
	flag.StringVar(&variants, "variants", "kill,linkdown", "failure variants: kill, linkdown")
	flag.StringVar(&o.only, "only", "both", "daemons to measure: baton, keepalived or both")
	flag.StringVar(&o.batonBin, "baton", "bin/baton", "baton binary")
	flag.StringVar(&o.keepalived, "keepalived", "keepalived", "keepalived binary")
	flag.IntVar(&o.misses, "misses", 3, "baton heartbeat.misses")
	flag.DurationVar(&o.footprint, "footprint", 30*time.Second, "idle CPU/RSS sampling time per daemon and interval; 0 skips")
	flag.BoolVar(&o.pprof, "pprof", false, "write each baton daemon's CPU profile of the footprint run (kept with -keep; the paths are printed)")
	flag.DurationVar(&o.fast, "fast", 20*time.Millisecond, "baton's short interval for the fast-detection line (failover, idle CPU, false failovers)")
	flag.DurationVar(&o.soak, "soak", 2*time.Minute, "idle time at -fast counting false failovers (the issue asks for 10m)")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's directory (configs, logs) for inspection")
	flag.Uint64Var(&o.seed, "seed", 0, "random seed for failure phases (0: from the clock)")
	flag.Parse()

	var err error
	if o.intervals, err = parseIntervals(intervals); err != nil {
		fatal(err)
	}
	if o.variants, err = pairbench.ParseVariants(variants); err != nil {
		fatal(err)
	}
	if o.scenarios, err = parseScenarios(scenarios); err != nil {
		fatal(err)
	}
	if o.flaps < 1 || o.toggles < 2 || o.toggles%2 != 0 {
		fatal(errors.New("-flaps must be at least 1 and -toggles even and at least 2"))
	}
	if o.fast < heartbeat.MinInterval {
		fatal(fmt.Errorf("-fast %v: below baton's minimum %v", o.fast, heartbeat.MinInterval))
	}
	if o.only != "both" && o.only != "baton" && o.only != "keepalived" {
		fatal(fmt.Errorf("-only=%q: want baton, keepalived or both", o.only))
	}
	if o.n < 1 {
		fatal(errors.New("-n must be at least 1"))
	}
	if os.Geteuid() != 0 {
		fatal(errors.New("needs root: it builds network namespaces"))
	}
	if o.only != "keepalived" {
		if o.batonBin, err = exec.LookPath(o.batonBin); err != nil {
			fatal(fmt.Errorf("baton binary: %w (build it with `go build -o bin/baton ./cmd/baton`)", err))
		}
	}
	if o.only != "baton" {
		if o.keepalived, err = exec.LookPath(o.keepalived); err != nil {
			fatal(fmt.Errorf("keepalived: %w (apt-get install -y keepalived)", err))
		}
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	o.keep = o.keep || o.pprof // the profiles are in the run's directory
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench-failover:", err)
	os.Exit(1)
}

// result is what one daemon produced at one interval.
type result struct {
	serving, role map[pairbench.Variant][]float64 // milliseconds
	foot          *usage
}

func run(ctx context.Context, o options, out, progress io.Writer) error {
	rng := rand.New(rand.NewPCG(o.seed, o.seed>>1|1))
	fmt.Fprintf(progress, "bench-failover: n=%d seed=%d\n", o.n, o.seed)
	daemons := []string{}
	for _, name := range []string{"baton", "keepalived"} {
		if o.only == "both" || o.only == name {
			daemons = append(daemons, name)
		}
	}
	keepalived100 := math.NaN() // keepalived's idle CPU at 100ms, for the fast line
	for _, iv := range o.intervals {
		if o.scenarios["failover"] || o.scenarios["footprint"] {
			res := map[string]*result{}
			for _, name := range daemons {
				r, err := measure(ctx, o, name, iv, rng, progress)
				if err != nil {
					return fmt.Errorf("%s at %v: %w", name, iv, err)
				}
				res[name] = r
			}
			if o.scenarios["failover"] {
				printFailover(out, iv, o.variants, res)
			}
			if o.scenarios["footprint"] {
				printFootprint(out, iv, res)
				if r := res["keepalived"]; r != nil && r.foot != nil && iv == 100*time.Millisecond {
					keepalived100 = r.foot.cpuPct
				}
			}
		}
		if o.scenarios["failback"] || o.scenarios["flap"] {
			res := map[string]*faultResult{}
			for _, name := range daemons {
				r, err := measureFaults(ctx, o, name, iv, rng, progress)
				if err != nil {
					return fmt.Errorf("%s at %v: %w", name, iv, err)
				}
				res[name] = r
			}
			printFaults(out, o, iv, res)
		}
	}
	if o.scenarios["fast"] && o.only != "keepalived" {
		r, err := measureFast(ctx, o, rng, progress)
		if err != nil {
			return fmt.Errorf("baton at %v: %w", o.fast, err)
		}
		fmt.Fprintf(out, "failover interval=%s variant=linkdown baton_p50_ms=%s baton_p95_ms=%s baton_cpu_pct=%s keepalived_100ms_cpu_pct=%s false_failovers=%d\n",
			intervalName(o.fast), pairbench.Decimal1(pairbench.Percentile(r.serving, 50)), pairbench.Decimal1(pairbench.Percentile(r.serving, 95)),
			pairbench.Decimal3(r.cpuPct), pairbench.Decimal3(keepalived100), r.falseFailovers)
	}
	return nil
}

func printFailover(out io.Writer, iv time.Duration, variants []pairbench.Variant, res map[string]*result) {
	for _, v := range variants {
		get := func(name string, serving bool, p float64) float64 {
			r := res[name]
			if r == nil {
				return pairbench.Percentile(nil, p)
			}
			if serving {
				return pairbench.Percentile(r.serving[v], p)
			}
			return pairbench.Percentile(r.role[v], p)
		}
		for _, serving := range []bool{true, false} {
			prefix := "failover"
			if !serving {
				prefix = "role-change"
			}
			bp50, kp50 := get("baton", serving, 50), get("keepalived", serving, 50)
			fmt.Fprintf(out, "%s interval=%s variant=%s baton_p50_ms=%s baton_p95_ms=%s keepalived_p50_ms=%s keepalived_p95_ms=%s ratio_p50=%s\n",
				prefix, intervalName(iv), v, pairbench.Decimal1(bp50), pairbench.Decimal1(get("baton", serving, 95)),
				pairbench.Decimal1(kp50), pairbench.Decimal1(get("keepalived", serving, 95)), pairbench.Decimal2(bp50/kp50))
		}
	}
}

func printFootprint(out io.Writer, iv time.Duration, res map[string]*result) {
	get := func(name string) *usage {
		if r := res[name]; r != nil && r.foot != nil {
			return r.foot
		}
		return &usage{cpuPct: math.NaN(), pssMB: math.NaN()}
	}
	b, k := get("baton"), get("keepalived")
	fmt.Fprintf(out, "footprint interval=%s baton_cpu_pct=%s baton_pss_mb=%s keepalived_cpu_pct=%s keepalived_pss_mb=%s cpu_ratio=%s\n",
		intervalName(iv), pairbench.Decimal3(b.cpuPct), pairbench.Decimal1(b.pssMB), pairbench.Decimal3(k.cpuPct), pairbench.Decimal1(k.pssMB),
		pairbench.Decimal2(b.cpuPct/k.cpuPct))
}

// benchLab is one daemon's run in a fresh lab: the environment, the
// daemon and, for the fault scenarios, the client probing the VIP.
type benchLab struct {
	e    *pairbench.Env
	d    driver
	echo *pairbench.Echo
}

// labOptions say how startLab sets a lab up.
type labOptions struct {
	profile bool // baton's daemons write CPU profiles
	// faults: baton preempts and holds the VIP with its vip action (as
	// keepalived always does), and a client probes the VIP every
	// probePeriod.
	faults bool
}

// startLab builds a fresh lab at interval iv and starts name's daemons in
// it.
func startLab(ctx context.Context, o options, name string, iv time.Duration, lo labOptions, progress io.Writer) (l *benchLab, err error) {
	e, err := pairbench.NewEnv(iv, o.misses, "baton-bench-")
	if err != nil {
		return nil, err
	}
	e.Preempt = lo.faults
	l = &benchLab{e: e}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.close(o, progress))
		}
	}()
	switch name {
	case "baton":
		b, err := newBaton(e, o.batonBin)
		if err != nil {
			return l, err
		}
		if lo.faults {
			if err := b.AddVIP(); err != nil {
				return l, err
			}
		}
		b.Profile = lo.profile
		l.d = b
	default:
		if l.d, err = newKeepalived(e, o.keepalived); err != nil {
			return l, err
		}
	}
	if lo.faults {
		if l.echo, err = pairbench.StartEcho(e, probePeriod); err != nil {
			return l, err
		}
	}
	fmt.Fprintf(progress, "%s, interval %v, lab %s\n", name, iv, e.Pair.Prefix)
	return l, pairbench.StartBoth(ctx, l.d.Start)
}

// close ends the run: a profiling baton is stopped cleanly first (so its
// profile is complete), then the client and the lab.
func (l *benchLab) close(o options, progress io.Writer) error {
	var err error
	if b, ok := l.d.(*baton); ok && b.Profile {
		for i := range 2 {
			if b.Nodes[i].Running() {
				err = errors.Join(err, b.Stop(i))
			}
			fmt.Fprintf(progress, "  CPU profile of %s: %s\n", b.Nodes[i].Host.Name(), b.ProfilePath(i))
		}
	}
	if l.echo != nil {
		l.echo.Close()
	}
	if o.keep {
		fmt.Fprintf(progress, "  kept %s\n", l.e.Dir)
	}
	return errors.Join(err, l.e.Close(o.keep))
}

// measure runs one daemon at one interval in a fresh lab: the failover
// variants, then the idle footprint.
func measure(ctx context.Context, o options, name string, iv time.Duration, rng *rand.Rand, progress io.Writer) (res *result, err error) {
	foot := o.scenarios["footprint"] && o.footprint > 0
	l, err := startLab(ctx, o, name, iv, labOptions{profile: o.pprof && foot}, progress)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, l.close(o, progress)) }()
	d, e := l.d, l.e
	res = &result{serving: map[pairbench.Variant][]float64{}, role: map[pairbench.Variant][]float64{}}
	for _, v := range o.variants {
		if !o.scenarios["failover"] {
			break
		}
		trials, err := runFailures(ctx, d, e, v, o.n, rng, progress)
		if err != nil {
			return nil, fmt.Errorf("%s: %w\n%s%s", v, err, d.LogTail(0), d.LogTail(1))
		}
		for _, t := range trials {
			res.serving[v] = append(res.serving[v], pairbench.Millis(t.serving))
			res.role[v] = append(res.role[v], pairbench.Millis(t.role))
		}
		fmt.Fprintf(progress, "  %s %v %s: serving p50 %s ms p95 %s ms; role change p50 %s ms\n", name, iv, v,
			pairbench.Decimal1(pairbench.Percentile(res.serving[v], 50)), pairbench.Decimal1(pairbench.Percentile(res.serving[v], 95)),
			pairbench.Decimal1(pairbench.Percentile(res.role[v], 50)))
	}
	if foot {
		if _, err := settle(ctx, d, 30*time.Second+20*iv); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "  %s %v: sampling idle footprint for %v\n", name, iv, o.footprint)
		if res.foot, err = footprint(ctx, d, o.footprint); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "  %s %v: CPU %.3f %%, PSS %.1f MB, RSS %.1f MB per node\n", name, iv, res.foot.cpuPct, res.foot.pssMB, res.foot.rssMB)
	}
	return res, nil
}

// parseScenarios parses "failover,flap" into a set of allScenarios.
func parseScenarios(s string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allScenarios, p) {
			return nil, fmt.Errorf("-scenarios: unknown %q (want %s)", p, strings.Join(allScenarios, ", "))
		}
		set[p] = true
	}
	return set, nil
}
