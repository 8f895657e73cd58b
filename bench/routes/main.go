// Command routes benchmarks the routes action: the time from the takeover
// decision (Activate called) to every route verified by a read-back, for
// 1, 10 and 100 routes across 1, 5 and 20 route tables, against the lab's
// emulated EC2 API answering in a fixed latency and throttling with a
// token bucket. It drives the real action over the real aws-sdk-go-v2
// client on loopback and, on the same emulator, Pacemaker's
// aws-vpc-move-ip (Debian's resource-agents and awscli) for the same
// routes, each timed to every route verified (see README.md).
//
// It prints one line per combination:
//
//	routes n=100 tables=20 api_latency_ms=100 total_ms=X peer=aws-vpc-move-ip peer_ms=X speedup=X
//
// and one for Azure (route tables whose writes are serialized long-running
// operations), whole-table writes against route-by-route ones:
//
//	routes cloud=azure n=100 tables=5 lro_ms=2000 total_ms=X writes=X per_route_ms=X per_route_writes=X
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
	"runtime"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/action/routes"
	"github.com/batonha/baton/internal/lab/cloud"
	"github.com/batonha/baton/internal/retry"
)

const (
	localENI = "eni-0000000000000000a"
	peerENI  = "eni-0000000000000000b"
)

type result struct {
	n, tables        int
	total            time.Duration
	calls, throttled int
	forced           time.Duration
	peer             time.Duration // aws-vpc-move-ip, every route verified
	peerCalls        int
	peerProcs        int
	err              error
}

func main() {
	latency := flag.Duration("latency", 100*time.Millisecond, "emulated API latency per request")
	rate := flag.Float64("rate", 10, "throttle: requests per second the emulated API grants (0: off)")
	burst := flag.Int("burst", 10, "throttle: token bucket capacity")
	mode := flag.String("mode", "listed", "listed: destinations listed in the config; peer: discovered by peer_targets")
	lro := flag.Duration("lro", 2*time.Second, "Azure: duration of one long-running write")
	only := flag.String("cloud", "", "aws or azure: run only that cloud's lines")
	list := flag.String("combos", "1x1,10x1,10x5,100x1,100x5,100x20", "AWS: routes x tables to run")
	parallel := flag.Int("peer-parallel", 2*runtime.NumCPU(), "aws-vpc-move-ip starts at once (Pacemaker's node-action-limit default: 2 × CPUs)")
	verbose := flag.Bool("v", false, "log the action at debug level to stderr")
	flag.Parse()
	if *mode != "listed" && *mode != "peer" {
		fmt.Fprintln(os.Stderr, "bench routes: -mode must be listed or peer")
		os.Exit(2)
	}
	var combos [][2]int
	for _, c := range strings.Split(*list, ",") {
		var n, t int
		if _, err := fmt.Sscanf(c, "%dx%d", &n, &t); err != nil || n < t || t < 1 {
			fmt.Fprintf(os.Stderr, "bench routes: -combos: %q is not ROUTESxTABLES with ROUTES ≥ TABLES ≥ 1\n", c)
			os.Exit(2)
		}
		combos = append(combos, [2]int{n, t})
	}
	failed := false
	if *only != "azure" {
		lb, err := newPeerLab()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench routes:", err)
			os.Exit(1)
		}
		for _, c := range combos {
			r := run(lb, c[0], c[1], *latency, *rate, *burst, *mode, *parallel, *verbose)
			if r.err != nil {
				lb.close()
				fmt.Fprintf(os.Stderr, "bench routes: n=%d tables=%d: %v\n", r.n, r.tables, r.err)
				os.Exit(1)
			}
			speedup := float64(r.peer) / float64(r.total)
			fmt.Printf("routes n=%d tables=%d api_latency_ms=%d total_ms=%d peer=aws-vpc-move-ip peer_ms=%d speedup=%.1f\n",
				r.n, r.tables, latency.Milliseconds(), r.total.Milliseconds(), r.peer.Milliseconds(), speedup)
			budget := 2*(*latency) + r.forced
			reads := 1
			if *mode == "peer" {
				reads = 2
			}
			ok := r.total <= budget+budget/10 && r.calls <= r.n+reads
			if (r.n == 100 && speedup < 20) || (r.n == 1 && speedup < 3) {
				ok = false
			}
			failed = failed || !ok
			fmt.Fprintf(os.Stderr, "  calls=%d throttled=%d peer_calls=%d peer_processes=%d throttle_forced_ms=%d budget_ms=%d targets_met=%t\n",
				r.calls, r.throttled, r.peerCalls, r.peerProcs, r.forced.Milliseconds(), budget.Milliseconds(), ok)
		}
		lb.close()
	}
	if *only != "aws" {
		ok, err := runAzure(100, 5, *latency, *lro, *verbose)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench routes: azure:", err)
			os.Exit(1)
		}
		failed = failed || !ok
	}
	if failed {
		fmt.Fprintln(os.Stderr, "bench routes: some targets missed (see targets_met above)")
	}
}

// run measures one combination on a fresh emulator: baton, then, with
// the routes pointed back at the peer and the bucket refilled,
// aws-vpc-move-ip.
func run(lb *peerLab, n, tables int, latency time.Duration, rate float64, burst int, mode string, parallel int, verbose bool) result {
	r := result{n: n, tables: tables}
	api := cloud.New(cloud.Options{Latency: latency, Rate: rate, Burst: burst})
	defer api.Close()
	f := api.EC2()
	f.AddENI(localENI, "10.0.1.10")
	f.AddENI(peerENI, "10.0.1.11")
	// n routes in all: n/tables destinations present in every table.
	// They are /32 overlay addresses, the only kind aws-vpc-move-ip moves
	// (one agent instance per address, across every table).
	perTable := n / tables
	var ids, dests []string
	for d := range perTable {
		dests = append(dests, fmt.Sprintf("10.100.%d.%d/32", d/250, 1+d%250))
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

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
	a, err := routes.NewAWS(cfg, client, routes.Options{Logger: slog.New(h), Backoff: retry.Backoff{Max: 2 * time.Second}})
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

	// The peer, on the same emulator with the same latency and throttle.
	for _, id := range ids {
		for _, d := range dests {
			f.SetTarget(id, d, peerENI)
		}
	}
	pln, err := lb.listen()
	if err != nil {
		r.err = err
		return r
	}
	go func() { _ = api.Serve(pln) }()
	api.ResetCounts()
	r.peer, err = lb.moveIPs(ctx, "http://"+pln.Addr().String(), ids, dests, parallel)
	if err != nil {
		r.err = fmt.Errorf("aws-vpc-move-ip: %w", err)
		return r
	}
	for _, id := range ids {
		for _, d := range dests {
			if got := f.Target(id, d); got != localENI {
				r.err = fmt.Errorf("aws-vpc-move-ip: route %s in %s points at %s after its start", d, id, got)
				return r
			}
		}
	}
	cnt = api.Counts()
	r.peerCalls, r.peerProcs = cnt.Total-cnt.Throttled, len(dests)
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
