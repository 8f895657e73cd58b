// Command vip measures the interruption a client sees on a virtual IP when
// the active appliance fails, with baton's vip action and with keepalived
// (VRRPv3, unicast) at the same interval, in the same network-namespace
// topology; see README.md.
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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/lab"
)

// How often the client sends a request to the VIP.
const period = 5 * time.Millisecond

type options struct {
	n          int
	interval   time.Duration
	variants   []pairbench.Variant
	only       string
	batonBin   string
	keepalived string
	misses     int
	keep       bool
	seed       uint64
}

func main() {
	var o options
	var variants string
	flag.IntVar(&o.n, "n", 20, "failures per daemon and variant")
	flag.DurationVar(&o.interval, "interval", 100*time.Millisecond, "heartbeat / VRRP advert interval (multiple of 10ms, >= 50ms)")
	flag.StringVar(&variants, "variants", "kill,linkdown", "failure variants: kill (the issue's line), linkdown")
	flag.StringVar(&o.only, "only", "both", "daemons to measure: baton, keepalived or both")
	flag.StringVar(&o.batonBin, "baton", "bin/baton", "baton binary")
	flag.StringVar(&o.keepalived, "keepalived", "keepalived", "keepalived binary")
	flag.IntVar(&o.misses, "misses", 3, "baton heartbeat.misses")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's directory (configs, logs) for inspection")
	flag.Uint64Var(&o.seed, "seed", 0, "random seed for failure phases (0: from the clock)")
	flag.Parse()

	if err := o.check(variants); err != nil {
		fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fatal(err)
	}
}

func (o *options) check(variants string) error {
	var err error
	if o.variants, err = pairbench.ParseVariants(variants); err != nil {
		return err
	}
	if o.only != "both" && o.only != "baton" && o.only != "keepalived" {
		return fmt.Errorf("-only=%q: want baton, keepalived or both", o.only)
	}
	if o.n < 1 {
		return errors.New("-n must be at least 1")
	}
	if o.interval < 50*time.Millisecond || o.interval%(10*time.Millisecond) != 0 {
		return fmt.Errorf("-interval %v: want a multiple of 10ms (VRRPv3 centiseconds), at least 50ms (baton's minimum)", o.interval)
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: it builds network namespaces")
	}
	if o.only != "keepalived" {
		if o.batonBin, err = exec.LookPath(o.batonBin); err != nil {
			return fmt.Errorf("baton binary: %w (build it with `make build`)", err)
		}
		if o.batonBin, err = filepath.Abs(o.batonBin); err != nil {
			return fmt.Errorf("baton binary: %w", err)
		}
	}
	if o.only != "baton" {
		if o.keepalived, err = exec.LookPath(o.keepalived); err != nil {
			return fmt.Errorf("keepalived: %w (apt-get install -y keepalived)", err)
		}
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	return nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench-vip:", err)
	os.Exit(1)
}

func run(ctx context.Context, o options, out, progress io.Writer) error {
	rng := rand.New(rand.NewPCG(o.seed, o.seed>>1|1))
	fmt.Fprintf(progress, "bench-vip: n=%d interval=%v seed=%d\n", o.n, o.interval, o.seed)
	gaps := map[string]map[pairbench.Variant][]float64{}
	for _, name := range []string{"baton", "keepalived"} {
		if o.only != "both" && o.only != name {
			continue
		}
		g, err := measure(ctx, o, name, rng, progress)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		gaps[name] = g
	}
	for _, v := range o.variants {
		get := func(name string, p float64) float64 { return pairbench.Percentile(gaps[name][v], p) }
		tag := ""
		if v != pairbench.Kill {
			tag = " variant=" + string(v)
		}
		bp50, kp50 := get("baton", 50), get("keepalived", 50)
		fmt.Fprintf(out, "vip interval=%s%s baton_gap_p50_ms=%s baton_gap_p95_ms=%s keepalived_gap_p50_ms=%s keepalived_gap_p95_ms=%s ratio_p50=%s\n",
			o.interval, tag, pairbench.Decimal1(bp50), pairbench.Decimal1(get("baton", 95)),
			pairbench.Decimal1(kp50), pairbench.Decimal1(get("keepalived", 95)), pairbench.Decimal2(bp50/kp50))
	}
	return nil
}

// driver runs one HA daemon (baton or keepalived) holding the VIP on both
// appliances of a pair, and knows how to fail and restore a node.
type driver interface {
	Name() string
	Start(node int) error
	// Settled reports the active node when the daemons agree right now:
	// both up, one active, the other standing by. Otherwise it says why.
	Settled() (active int, ok bool, why string)
	// StableFor is how long Settled must hold before a failure.
	StableFor() time.Duration
	Fail(node int, v pairbench.Variant) error
	Restore(node int, v pairbench.Variant) error
	LogTail(node int) string
	// Mark remembers where the node's records (log, notifications) end,
	// and Detail describes, relative to t0, what the node recorded since:
	// when it became active and, for baton, when it added the VIP.
	Mark(node int)
	Detail(node int, t0 time.Time) string
}

// env is one daemon's run in one lab, with the echo responders on both
// appliances and the client sending to the VIP.
type env struct {
	*pairbench.Env
	echo   *pairbench.Echo
	client *pairbench.Client
}

func newEnv(interval time.Duration, misses int) (*env, error) {
	pe, err := pairbench.NewEnv(interval, misses, "baton-bench-vip-")
	if err != nil {
		return nil, err
	}
	x, err := pairbench.StartEcho(pe, period)
	if err != nil {
		return nil, errors.Join(err, pe.Close(false))
	}
	return &env{Env: pe, echo: x, client: x.Client}, nil
}

func (e *env) close(keep bool) error {
	e.echo.Close()
	return e.Env.Close(keep)
}

// measure runs one daemon in a fresh lab: every variant, n failures each.
func measure(ctx context.Context, o options, name string, rng *rand.Rand, progress io.Writer) (gaps map[pairbench.Variant][]float64, err error) {
	e, err := newEnv(o.interval, o.misses)
	if err != nil {
		return nil, err
	}
	defer func() {
		if o.keep {
			fmt.Fprintf(progress, "  kept %s\n", e.Dir)
		}
		err = errors.Join(err, e.close(o.keep))
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
	fmt.Fprintf(progress, "%s, interval %v, lab %s\n", name, o.interval, e.Pair.Prefix)
	if err := pairbench.StartBoth(ctx, d.Start); err != nil {
		return nil, err
	}
	gaps = map[pairbench.Variant][]float64{}
	for _, v := range o.variants {
		g, err := runFailures(ctx, d, e, v, o.n, rng, progress)
		if err != nil {
			return nil, fmt.Errorf("%s: %w\n%s%s", v, err, d.LogTail(0), d.LogTail(1))
		}
		gaps[v] = g
		fmt.Fprintf(progress, "  %s %s: gap p50 %s ms, p95 %s ms\n", name, v,
			pairbench.Decimal1(pairbench.Percentile(g, 50)), pairbench.Decimal1(pairbench.Percentile(g, 95)))
	}
	return gaps, nil
}

// settle waits until the daemons agree on an active node that holds the
// VIP alone and answers the client, continuously for d.StableFor().
func settle(ctx context.Context, d driver, e *env, limit time.Duration) (int, error) {
	settled := func() (int, bool, string) {
		a, ok, why := d.Settled()
		if !ok {
			return -1, false, why
		}
		if h, w := e.VIPHolder(); h != a {
			return -1, false, fmt.Sprintf("%s is active but: %s (holder %d)", lab.ApplianceName(a), w, h)
		}
		if last, ok := e.client.Last(); !ok || last.From != a || time.Since(last.At) > 4*period+20*time.Millisecond {
			return -1, false, fmt.Sprintf("the client is not served by %s (last answer %+v)", lab.ApplianceName(a), last)
		}
		return a, true, ""
	}
	return pairbench.Settle(ctx, d.Name(), settled, d.StableFor(), limit)
}

// runFailures fails the active node n times and measures the client's
// interruption each time.
func runFailures(ctx context.Context, d driver, e *env, v pairbench.Variant, n int, rng *rand.Rand, progress io.Writer) ([]float64, error) {
	settleLimit := 30*time.Second + 20*e.Interval
	limit := 5*time.Second + time.Duration(4*e.Misses)*e.Interval
	var out []float64
	failures := 0
	for i := 0; i < n; i++ {
		active, err := settle(ctx, d, e, settleLimit)
		if err != nil {
			return out, err
		}
		standby := 1 - active
		e.client.Trim(time.Now().Add(-time.Second))
		// Random phase of the heartbeat / advert timer.
		if err := clock.Sleep(ctx, clock.Real{}, time.Duration(rng.Float64()*float64(e.Interval))); err != nil {
			return out, err
		}
		d.Mark(standby)
		t0 := time.Now()
		if err := d.Fail(active, v); err != nil {
			return out, err
		}
		gap, err := waitServed(ctx, e.client, t0, standby, limit)
		detail := d.Detail(standby, t0) + oldAnswers(e.client.Snapshot(), t0, active)
		if rerr := d.Restore(active, v); rerr != nil {
			return out, errors.Join(err, rerr)
		}
		if err != nil {
			failures++
			fmt.Fprintf(progress, "  %s %s #%d: %v (%s)\n%s", d.Name(), v, i+1, err, detail, d.LogTail(standby))
			if failures >= 3 {
				return out, fmt.Errorf("%s %s: %d takeovers failed", d.Name(), v, failures)
			}
			i--
			continue
		}
		fmt.Fprintf(progress, "  %s %s #%d: %s -> %s gap %.1f ms (%s)\n", d.Name(), v, i+1,
			lab.ApplianceName(active), lab.ApplianceName(standby), pairbench.Millis(gap), detail)
		out = append(out, pairbench.Millis(gap))
	}
	return out, nil
}

// waitServed waits until the client gets an answer from newNode after t0
// and returns the interruption.
func waitServed(ctx context.Context, c *pairbench.Client, t0 time.Time, newNode int, limit time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(limit)
	for {
		if gap, ok := interruption(c.Snapshot(), t0, newNode); ok {
			return gap, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the client got no answer from %s within %v", lab.ApplianceName(newNode), limit)
		}
		if err := clock.Sleep(ctx, clock.Real{}, 5*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// sinceMark reads what was appended to path after offset off, as lines.
func sinceMark(path string, off int64) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil
	}
	return strings.Split(string(b), "\n")
}

// fileSize is the size of path, 0 when it does not exist.
func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// rel formats t relative to t0 in ms, "?" when t is zero.
func rel(t, t0 time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return fmt.Sprintf("%+.1f ms", pairbench.Millis(t.Sub(t0)))
}

// oldAnswers describes the answers the failed node still sent after t0
// (its kernel keeps the VIP after a SIGKILL until the client's neighbour
// entry moves).
func oldAnswers(as []pairbench.Answer, t0 time.Time, old int) string {
	n, last := 0, time.Time{}
	for _, a := range as {
		if a.From == old && !a.At.Before(t0) {
			n++
			last = a.At
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", old node answered %d times until %s", n, rel(last, t0))
}
