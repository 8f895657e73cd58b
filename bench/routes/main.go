// Command routes benchmarks the routes action: the time from the takeover
// decision (Activate called) to every route verified by a read-back, for
// 1, 10 and 100 routes across 1, 5 and 20 route tables, against the lab's
// emulated EC2 API answering in a fixed latency and throttling with a
// token bucket. It drives the real action over the real aws-sdk-go-v2
// client on loopback, and compares with a one-by-one updater (see
// README.md for the model).
//
// It prints one line per combination:
//
//	routes n=100 tables=20 api_latency_ms=100 total_ms=X calls=X serial_estimate_ms=X speedup=X
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/lab/cloud"
)

const (
	localENI = "eni-0000000000000000a"
	peerENI  = "eni-0000000000000000b"
)

type result struct {
	n, tables        int
	total            time.Duration
	calls, throttled int
	rtt              time.Duration
	serial           time.Duration
	forced           time.Duration
	err              error
}

func main() {
	latency := flag.Duration("latency", 100*time.Millisecond, "emulated API latency per request")
	rate := flag.Float64("rate", 10, "throttle: requests per second the emulated API grants (0: off)")
	burst := flag.Int("burst", 10, "throttle: token bucket capacity")
	pause := flag.Duration("table-pause", time.Second, "one-by-one model: pause after each table (aws-vpc-move-ip)")
	mode := flag.String("mode", "listed", "listed: destinations listed in the config; peer: discovered by peer_targets")
	verbose := flag.Bool("v", false, "log the action at debug level to stderr")
	flag.Parse()
	if *mode != "listed" && *mode != "peer" {
		fmt.Fprintln(os.Stderr, "bench routes: -mode must be listed or peer")
		os.Exit(2)
	}
	combos := [][2]int{{1, 1}, {10, 1}, {10, 5}, {100, 1}, {100, 5}, {100, 20}}
	failed := false
	for _, c := range combos {
		r := run(c[0], c[1], *latency, *rate, *burst, *pause, *mode, *verbose)
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "bench routes: n=%d tables=%d: %v\n", r.n, r.tables, r.err)
			os.Exit(1)
		}
		speedup := float64(r.serial) / float64(r.total)
		fmt.Printf("routes n=%d tables=%d api_latency_ms=%d total_ms=%d calls=%d serial_estimate_ms=%d speedup=%.1f\n",
			r.n, r.tables, latency.Milliseconds(), r.total.Milliseconds(), r.calls, r.serial.Milliseconds(), speedup)
		budget := 2*(*latency) + r.forced
		reads := 1
		if *mode == "peer" {
			reads = 2
		}
		ok := r.total <= budget+budget/10 && r.calls <= r.n+reads
		if r.n == 100 && speedup < 10 {
			ok = false
		}
		failed = failed || !ok
		fmt.Fprintf(os.Stderr, "  throttled=%d rtt_ms=%.1f throttle_forced_ms=%d budget_ms=%d targets_met=%t\n",
			r.throttled, float64(r.rtt.Microseconds())/1000, r.forced.Milliseconds(), budget.Milliseconds(), ok)
	}
	if failed {
		fmt.Fprintln(os.Stderr, "bench routes: some targets missed (see targets_met above)")
	}
}

// run measures one combination on a fresh emulator.
func run(n, tables int, latency time.Duration, rate float64, burst int, pause time.Duration, mode string, verbose bool) result {
	r := result{n: n, tables: tables}
	api := cloud.New(cloud.Options{Latency: latency, Rate: rate, Burst: burst})
	defer api.Close()
	f := api.EC2()
	f.AddENI(localENI, "10.0.1.10")
	f.AddENI(peerENI, "10.0.1.11")
	// n routes in all: n/tables destinations present in every table (a
	// default route and a few prefixes in every subnet's table).
	perTable := n / tables
	var ids, dests []string
	for d := range perTable {
		dests = append(dests, fmt.Sprintf("10.%d.%d.0/24", 100+d/256, d%256))
	}
	for i := range tables {
		id := fmt.Sprintf("rtb-%017x", i+1)
		ids = append(ids, id)
		rs := map[string]string{"10.0.0.0/16": "local"}
		for _, d := range dests {
			rs[d] = peerENI
		}
		f.AddTable(id, "vpc-00000001", nil, rs)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.err = fmt.Errorf("listening on loopback: %w", err)
		return r
	}
	go func() { _ = api.Serve(ln) }()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
	client := ec2.New(ec2.Options{
		Region: "us-east-1", BaseEndpoint: awssdk.String("http://" + ln.Addr().String()), RetryMaxAttempts: 1, HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", ""),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The round trip of one call on this emulator, for the serial model
	// (measured before the bucket is used, then refilled).
	var rtts []time.Duration
	for range 3 {
		t0 := time.Now()
		if _, err := client.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: ids[:1]}); err != nil {
			r.err = fmt.Errorf("measuring the round trip: %w", err)
			return r
		}
		rtts = append(rtts, time.Since(t0))
	}
	slices.Sort(rtts)
	r.rtt = rtts[1]
	// One-by-one updater: per route describe + replace + read back, in
	// sequence, then a pause per table.
	r.serial = time.Duration(n)*3*r.rtt + time.Duration(tables)*pause

	cfg := routes.Config{Cloud: "aws", StateDir: mustTemp(), Concurrency: 128, Attempts: 30, AWS: &routes.AWS{
		Region: "us-east-1", TableIDs: ids, LocalENI: localENI, PeerENI: peerENI,
	}}
	defer os.RemoveAll(cfg.StateDir)
	if mode == "peer" {
		cfg.AWS.PeerTargets = true
	} else {
		cfg.AWS.Destinations = dests
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		r.err = fmt.Errorf("config: %v", errs)
		return r
	}
	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if verbose {
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	a, err := routes.NewAWS(cfg, client, routes.Options{Logger: slog.New(h), Backoff: routes.Backoff{Max: 2 * time.Second}})
	if err != nil {
		r.err = err
		return r
	}
	api.ResetCounts()
	t0 := time.Now()
	err = a.Activate(ctx, action.Takeover{Term: 2, Reason: "bench"})
	r.total = time.Since(t0)
	if err != nil {
		r.err = fmt.Errorf("takeover: %w", err)
		return r
	}
	for _, id := range ids {
		for _, d := range dests {
			if got := f.Target(id, d); got != localENI {
				r.err = fmt.Errorf("route %s in %s points at %s after the takeover", d, id, got)
				return r
			}
		}
	}
	cnt := api.Counts()
	r.calls, r.throttled = cnt.Total-cnt.Throttled, cnt.Throttled
	if rate > 0 && r.calls > burst {
		r.forced = time.Duration(float64(r.calls-burst) / rate * float64(time.Second))
	}
	return r
}

func mustTemp() string {
	d, err := os.MkdirTemp("", "bench-routes-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench routes:", err)
		os.Exit(1)
	}
	return d
}
