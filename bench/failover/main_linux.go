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
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
)

type options struct {
	n          int
	intervals  []time.Duration
	variants   []pairbench.Variant
	only       string
	batonBin   string
	keepalived string
	misses     int
	footprint  time.Duration
	keep       bool
	seed       uint64
}

func main() {
	var o options
	var intervals, variants string
	flag.IntVar(&o.n, "n", 20, "failures per daemon, interval and variant")
	flag.StringVar(&intervals, "intervals", "1s,100ms", "heartbeat / advert intervals")
	flag.StringVar(&variants, "variants", "kill,linkdown", "failure variants: kill, linkdown")
	flag.StringVar(&o.only, "only", "both", "daemons to measure: baton, keepalived or both")
	flag.StringVar(&o.batonBin, "baton", "bin/baton", "baton binary")
	flag.StringVar(&o.keepalived, "keepalived", "keepalived", "keepalived binary")
	flag.IntVar(&o.misses, "misses", 3, "baton heartbeat.misses")
	flag.DurationVar(&o.footprint, "footprint", 30*time.Second, "idle CPU/RSS sampling time per daemon and interval; 0 skips")
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
	cpu, rss      float64
	measuredFoot  bool
}

func run(ctx context.Context, o options, out, progress io.Writer) error {
	rng := rand.New(rand.NewPCG(o.seed, o.seed>>1|1))
	fmt.Fprintf(progress, "bench-failover: n=%d seed=%d\n", o.n, o.seed)
	for _, iv := range o.intervals {
		res := map[string]*result{}
		for _, name := range []string{"baton", "keepalived"} {
			if o.only != "both" && o.only != name {
				continue
			}
			r, err := measure(ctx, o, name, iv, rng, progress)
			if err != nil {
				return fmt.Errorf("%s at %v: %w", name, iv, err)
			}
			res[name] = r
		}
		for _, v := range o.variants {
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
		if o.footprint > 0 {
			get := func(name string) (string, string) {
				if r := res[name]; r != nil && r.measuredFoot {
					return pairbench.Decimal1(r.cpu), pairbench.Decimal1(r.rss)
				}
				return "NaN", "NaN"
			}
			bc, br := get("baton")
			kc, kr := get("keepalived")
			fmt.Fprintf(out, "footprint interval=%s baton_cpu_pct=%s baton_rss_mb=%s keepalived_cpu_pct=%s keepalived_rss_mb=%s\n",
				intervalName(iv), bc, br, kc, kr)
		}
	}
	return nil
}

// measure runs one daemon at one interval in a fresh lab.
func measure(ctx context.Context, o options, name string, iv time.Duration, rng *rand.Rand, progress io.Writer) (res *result, err error) {
	e, err := pairbench.NewEnv(iv, o.misses, "baton-bench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if o.keep {
			fmt.Fprintf(progress, "  kept %s\n", e.Dir)
		}
		err = errors.Join(err, e.Close(o.keep))
	}()
	var d driver
	switch name {
	case "baton":
		d, err = newBaton(e, o.batonBin)
	default:
		d, err = newKeepalived(e, o.keepalived)
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "%s, interval %v, lab %s\n", name, iv, e.Pair.Prefix)
	if err := pairbench.StartBoth(ctx, d.Start); err != nil {
		return nil, err
	}
	res = &result{serving: map[pairbench.Variant][]float64{}, role: map[pairbench.Variant][]float64{}}
	for _, v := range o.variants {
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
	if o.footprint > 0 {
		if _, err := settle(ctx, d, 30*time.Second+20*iv); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "  %s %v: sampling idle footprint for %v\n", name, iv, o.footprint)
		if res.cpu, res.rss, err = footprint(ctx, d, o.footprint); err != nil {
			return nil, err
		}
		res.measuredFoot = true
	}
	return res, nil
}
