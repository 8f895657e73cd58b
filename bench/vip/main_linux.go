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
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/batonha/baton/internal/lab"
)

// Addresses and ports of the benchmark on the lab's front segment.
const (
	vipAddr  = "10.100.1.100"
	vipCIDR  = vipAddr + "/24"
	echoPort = 7009
	// period is how often the client sends a request to the VIP.
	period = 5 * time.Millisecond
)

// variant is how the active node fails.
type variant string

const (
	variantKill     variant = "kill"     // SIGKILL the active daemon
	variantLinkDown variant = "linkdown" // set every link of the active node down
)

type options struct {
	n          int
	interval   time.Duration
	variants   []variant
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
	for _, v := range strings.Split(variants, ",") {
		switch vv := variant(strings.TrimSpace(v)); vv {
		case variantKill, variantLinkDown:
			o.variants = append(o.variants, vv)
		default:
			return fmt.Errorf("unknown variant %q (want kill or linkdown)", v)
		}
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
	var err error
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
	gaps := map[string]map[variant][]float64{}
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
		get := func(name string, p float64) float64 { return percentile(gaps[name][v], p) }
		tag := ""
		if v != variantKill {
			tag = " variant=" + string(v)
		}
		bp50, kp50 := get("baton", 50), get("keepalived", 50)
		fmt.Fprintf(out, "vip interval=%s%s baton_gap_p50_ms=%s baton_gap_p95_ms=%s keepalived_gap_p50_ms=%s keepalived_gap_p95_ms=%s ratio_p50=%s\n",
			o.interval, tag, f1(bp50), f1(get("baton", 95)), f1(kp50), f1(get("keepalived", 95)), f2(bp50/kp50))
	}
	return nil
}

// driver runs one HA daemon (baton or keepalived) holding the VIP on both
// appliances of a pair, and knows how to fail and restore a node.
type driver interface {
	name() string
	start(node int) error
	// settled reports the active node when the daemons agree right now:
	// both up, one active, the other standing by. Otherwise it says why.
	settled() (active int, ok bool, why string)
	// stableFor is how long settled must hold before a failure.
	stableFor() time.Duration
	fail(node int, v variant) error
	restore(node int, v variant) error
	logTail(node int) string
	// mark remembers where the node's records (log, notifications) end,
	// and detail describes, relative to t0, what the node recorded since:
	// when it became active and, for baton, when it added the VIP.
	mark(node int)
	detail(node int, t0 time.Time) string
}

// env is one daemon's run in one lab.
type env struct {
	pair     *lab.Pair
	dir      string
	interval time.Duration
	misses   int
	client   *client
	resp     [2]*responder
}

func newEnv(interval time.Duration, misses int) (e *env, err error) {
	p, err := lab.NewPair(lab.RandomPrefix(), nil)
	if err != nil {
		return nil, err
	}
	e = &env{pair: p, interval: interval, misses: misses}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.close(false))
		}
	}()
	if e.dir, err = os.MkdirTemp("", "baton-bench-vip-"); err != nil {
		return e, fmt.Errorf("creating bench directory: %w", err)
	}
	for i, h := range p.Appliances() {
		if e.resp[i], err = startResponder(h, i, echoPort); err != nil {
			return e, err
		}
	}
	e.client, err = startClient(p.Client.NsHandle(), netip.AddrPortFrom(netip.MustParseAddr(vipAddr), echoPort), period)
	return e, err
}

func (e *env) close(keep bool) error {
	if e.client != nil {
		e.client.Close()
	}
	for _, r := range e.resp {
		if r != nil {
			r.Close()
		}
	}
	err := e.pair.Close()
	if !keep && e.dir != "" {
		err = errors.Join(err, os.RemoveAll(e.dir))
	}
	return err
}

func (e *env) nodeDir(i int) string { return filepath.Join(e.dir, lab.ApplianceName(i)) }

// setLinks sets every link of appliance i up or down.
func (e *env) setLinks(i int, up bool) error {
	h := e.pair.Appliances()[i]
	links, err := h.Links()
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := h.SetLink(l, up); err != nil {
			return err
		}
	}
	return nil
}

// holder returns the appliance holding the VIP, or why there is not
// exactly one.
func (e *env) holder() (int, string) {
	holder := -1
	for i, h := range e.pair.Appliances() {
		has, err := h.HasAddr(vipAddr)
		if err != nil {
			return -1, err.Error()
		}
		if has {
			if holder >= 0 {
				return -1, "both nodes hold the VIP"
			}
			holder = i
		}
	}
	if holder < 0 {
		return -1, "no node holds the VIP"
	}
	return holder, ""
}

// measure runs one daemon in a fresh lab: every variant, n failures each.
func measure(ctx context.Context, o options, name string, rng *rand.Rand, progress io.Writer) (gaps map[variant][]float64, err error) {
	e, err := newEnv(o.interval, o.misses)
	if err != nil {
		return nil, err
	}
	defer func() {
		if o.keep {
			fmt.Fprintf(progress, "  kept %s\n", e.dir)
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
	fmt.Fprintf(progress, "%s, interval %v, lab %s\n", name, o.interval, e.pair.Prefix)
	// The preferred node first, so that the first election is not a race.
	if err := d.start(0); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
		return nil, err
	}
	if err := d.start(1); err != nil {
		return nil, err
	}
	gaps = map[variant][]float64{}
	for _, v := range o.variants {
		g, err := runFailures(ctx, d, e, v, o.n, rng, progress)
		if err != nil {
			return nil, fmt.Errorf("%s: %w\n%s%s", v, err, d.logTail(0), d.logTail(1))
		}
		gaps[v] = g
		fmt.Fprintf(progress, "  %s %s: gap p50 %s ms, p95 %s ms\n", name, v, f1(percentile(g, 50)), f1(percentile(g, 95)))
	}
	return gaps, nil
}

// settle waits until the daemons agree on an active node that holds the
// VIP alone and answers the client, continuously for d.stableFor().
func settle(ctx context.Context, d driver, e *env, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	cur, since, why := -1, time.Time{}, ""
	for {
		a, ok, w := d.settled()
		if !ok {
			a, why = -1, w
		} else if h, w := e.holder(); h != a {
			a, why = -1, fmt.Sprintf("%s is active but: %s (holder %d)", lab.ApplianceName(a), w, h)
		} else if last, ok := e.client.last(); !ok || last.from != a || time.Since(last.at) > 4*period+20*time.Millisecond {
			a, why = -1, fmt.Sprintf("the client is not served by %s (last answer %+v)", lab.ApplianceName(h), last)
		}
		if a != cur {
			cur, since = a, time.Now()
		}
		if cur >= 0 && time.Since(since) >= d.stableFor() {
			return cur, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("%s did not settle within %v: %s", d.name(), limit, why)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return -1, err
		}
	}
}

// runFailures fails the active node n times and measures the client's
// interruption each time.
func runFailures(ctx context.Context, d driver, e *env, v variant, n int, rng *rand.Rand, progress io.Writer) ([]float64, error) {
	settleLimit := 30*time.Second + 20*e.interval
	limit := 5*time.Second + time.Duration(4*e.misses)*e.interval
	var out []float64
	failures := 0
	for i := 0; i < n; i++ {
		active, err := settle(ctx, d, e, settleLimit)
		if err != nil {
			return out, err
		}
		standby := 1 - active
		e.client.trim(time.Now().Add(-time.Second))
		// Random phase of the heartbeat / advert timer.
		if err := sleepCtx(ctx, time.Duration(rng.Float64()*float64(e.interval))); err != nil {
			return out, err
		}
		d.mark(standby)
		t0 := time.Now()
		if err := d.fail(active, v); err != nil {
			return out, err
		}
		gap, err := waitServed(ctx, e.client, t0, standby, limit)
		detail := d.detail(standby, t0) + oldAnswers(e.client.snapshot(), t0, active)
		if rerr := d.restore(active, v); rerr != nil {
			return out, errors.Join(err, rerr)
		}
		if err != nil {
			failures++
			fmt.Fprintf(progress, "  %s %s #%d: %v (%s)\n%s", d.name(), v, i+1, err, detail, d.logTail(standby))
			if failures >= 3 {
				return out, fmt.Errorf("%s %s: %d takeovers failed", d.name(), v, failures)
			}
			i--
			continue
		}
		fmt.Fprintf(progress, "  %s %s #%d: %s -> %s gap %.1f ms (%s)\n", d.name(), v, i+1,
			lab.ApplianceName(active), lab.ApplianceName(standby), ms(gap), detail)
		out = append(out, ms(gap))
	}
	return out, nil
}

// waitServed waits until the client gets an answer from newNode after t0
// and returns the interruption.
func waitServed(ctx context.Context, c *client, t0 time.Time, newNode int, limit time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(limit)
	for {
		if gap, ok := interruption(c.snapshot(), t0, newNode); ok {
			return gap, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the client got no answer from %s within %v", lab.ApplianceName(newNode), limit)
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tail returns the last n lines of a file, indented, for error reports.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var out strings.Builder
	for _, l := range lines {
		out.WriteString("      | " + l + "\n")
	}
	return out.String()
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
	return fmt.Sprintf("%+.1f ms", ms(t.Sub(t0)))
}

// oldAnswers describes the answers the failed node still sent after t0
// (its kernel keeps the VIP after a SIGKILL until the client's neighbour
// entry moves).
func oldAnswers(as []answer, t0 time.Time, old int) string {
	n, last := 0, time.Time{}
	for _, a := range as {
		if a.from == old && !a.at.Before(t0) {
			n++
			last = a.at
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", old node answered %d times until %s", n, rel(last, t0))
}
