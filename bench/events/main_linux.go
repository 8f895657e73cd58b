// Command events measures a drain for a planned host event on the lab's
// pair with a stateful firewall and session sync: a client keeps TCP
// connections open and sends UDP requests through the active appliance
// (steered by the lab's load balancer, which follows the probe), the event
// appears on the active's metadata endpoint — AWS's amazon-ec2-metadata-mock
// (a spot interruption) or the Azure Scheduled Events fixture (a Reboot) —
// and the run reports how long until traffic went to the peer, the UDP
// requests lost, the TCP connections that survived and, for Azure, whether
// the event was acknowledged:
//
//	events cloud=aws kind=spot handover_ms=X lost_requests=X sessions_kept_pct=X
//	events cloud=azure kind=Reboot handover_ms=X lost_requests=X sessions_kept_pct=X acknowledged=1
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonha/baton/bench/internal/pairbench"
	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/hostevents"
	"github.com/batonha/baton/internal/hostevents/hosteventstest"
	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/pki"
	"github.com/batonha/baton/internal/sessionsync"
)

const (
	echoPort = 7
	udpPort  = 9
	imdsPort = "16925" // inside nva-a's namespace
)

type options struct {
	baton string
	flows int
	keep  bool
}

func main() {
	hosteventstest.RunAEMMIfChild()
	var o options
	flag.StringVar(&o.baton, "baton", "bin/baton", "baton binary")
	flag.IntVar(&o.flows, "flows", 50, "TCP connections kept open through the drain")
	flag.BoolVar(&o.keep, "keep", false, "keep the run directory")
	clouds := flag.String("clouds", "aws,azure", "clouds to run")
	flag.Parse()
	failed := false
	for _, c := range strings.Split(*clouds, ",") {
		line, err := run(o, c)
		if err != nil {
			fmt.Fprintf(os.Stderr, "events cloud=%s: %v\n", c, err)
			failed = true
			continue
		}
		fmt.Println(line)
	}
	if failed {
		os.Exit(1)
	}
}

func run(o options, cloud string) (line string, err error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := lab.NewPair(lab.RandomPrefix(), log)
	if err != nil {
		return "", err
	}
	defer func() { err = errors.Join(err, p.Close()) }()
	dir, err := os.MkdirTemp("", "baton-bench-events-")
	if err != nil {
		return "", err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	if err := p.LoadFirewall(); err != nil {
		return "", err
	}

	// The active's metadata endpoint, inside its namespace.
	var endpoint string
	var fx *hosteventstest.Azure
	var eventAt time.Time
	switch cloud {
	case "azure":
		fx = hosteventstest.NewAzure("nva-a")
		ln, err := p.A.Listen("tcp", "127.0.0.1:"+imdsPort)
		if err != nil {
			return "", err
		}
		srv := &http.Server{Handler: fx, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	case "aws":
		// The spot notice appears at a whole second (the mock's trigger
		// resolution), late enough for the pair to settle first.
		eventAt = time.Now().Add(12 * time.Second).Truncate(time.Second)
		if _, err := p.A.Start("ec2-metadata-mock", []string{mustSelf()},
			[]string{hosteventstest.AEMMEnv("127.0.0.1", imdsPort, "spot", "-a", "terminate",
				"--mock-trigger-time", eventAt.UTC().Format(time.RFC3339), "--rebalance-trigger-time", eventAt.UTC().Format(time.RFC3339))},
			filepath.Join(dir, "aemm.log")); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("unknown cloud %q", cloud)
	}
	endpoint = "http://127.0.0.1:" + imdsPort

	pkiDir := filepath.Join(dir, "pki")
	if err := pki.Generate(pkiDir, []string{"nva-a", "nva-b"}, time.Hour, false); err != nil {
		return "", err
	}
	nodes, err := lab.SetupBatonNodes(p, dir, [2]lab.NodeOptions{
		{Priority: 150, Interval: 100 * time.Millisecond, Misses: 3},
		{Priority: 100, Interval: 100 * time.Millisecond, Misses: 3},
	})
	if err != nil {
		return "", err
	}
	for i, n := range nodes {
		me, peer := lab.ApplianceName(i), 1-i
		extra := fmt.Sprintf(`link:
  listen: ":5407"
  address: "%s:5407"
  ca_file: %q
  cert_file: %q
  key_file: %q
sessions:
  strategy: inject
events:
  cloud: %s
  endpoint: %q
  poll: 200ms
`, lab.HBAddr(peer), filepath.Join(pkiDir, "ca.crt"), filepath.Join(pkiDir, me+".crt"), filepath.Join(pkiDir, me+".key"), cloud, endpoint)
		f, err := os.OpenFile(n.Config, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return "", err
		}
		_, err = f.WriteString(extra)
		f.Close()
		if err != nil {
			return "", err
		}
		if err := n.Start(o.baton); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clients := [2]*api.Client{api.NewClient(filepath.Join(nodes[0].Dir, "baton.sock"), ""), api.NewClient(filepath.Join(nodes[1].Dir, "baton.sock"), "")}
	if err := waitUntil(ctx, 30*time.Second, func() bool {
		a, errA := clients[0].Status(ctx)
		b, errB := clients[1].Status(ctx)
		return errA == nil && errB == nil && a.Role == "ACTIVE" && b.Role == "STANDBY" && b.Healthy
	}); err != nil {
		return "", fmt.Errorf("the pair did not settle (nva-a ACTIVE, nva-b STANDBY): %w\n%s", err, pairbench.Tail(nodes[0].LogPath, 10))
	}

	bal := lab.NewBalancer(p, 20*time.Millisecond, log)
	go bal.Run(ctx)
	tcp, err := lab.StartTCPEcho(p.Server, fmt.Sprintf(":%d", echoPort))
	if err != nil {
		return "", err
	}
	defer tcp.Close()
	udp, err := lab.StartEcho(p.Server, fmt.Sprintf(":%d", udpPort))
	if err != nil {
		return "", err
	}
	defer udp.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range o.flows {
		c, err := p.Client.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", lab.ServerBack, echoPort))
		if err != nil {
			return "", fmt.Errorf("opening a flow: %w", err)
		}
		conns = append(conns, c)
	}
	readers := make([]*bufio.Reader, len(conns))
	for i, c := range conns {
		readers[i] = bufio.NewReader(c)
	}
	if kept := exchange(conns, readers, 0, 2*time.Second); kept != len(conns) {
		return "", fmt.Errorf("only %d of %d flows answer before the event", kept, len(conns))
	}
	// Session sync has the flows on the standby.
	if err := waitUntil(ctx, 20*time.Second, func() bool {
		raw, code, err := clients[1].Raw(ctx, http.MethodGet, "/v1/sessions")
		var st sessionsync.Status
		return err == nil && code == 200 && json.Unmarshal(raw, &st) == nil && st.Held >= o.flows
	}); err != nil {
		return "", fmt.Errorf("the standby holds no sessions: %w", err)
	}

	traffic, err := lab.NewTraffic(p.Client, fmt.Sprintf("%s:%d", lab.ServerBack, udpPort), 10*time.Millisecond)
	if err != nil {
		return "", err
	}
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	go traffic.Run(tctx)

	const id = "C7061BAC-AFDC-4513-B24B-AA5F13A16123"
	kind := hostevents.KindSpot
	if cloud == "azure" {
		kind = hostevents.KindReboot
		time.Sleep(time.Second) // traffic flows for a second before the event; not synchronisation
		eventAt = time.Now()
		fx.Post(hostevents.AzureEvent{EventID: id, EventType: "Reboot", ResourceType: "VirtualMachine", Resources: []string{"nva-a"},
			EventStatus: "Scheduled", NotBefore: eventAt.Add(15 * time.Minute).UTC().Format(time.RFC1123), EventSource: "Platform", DurationInSeconds: -1})
	}
	var steered time.Time
	if err := waitUntil(ctx, time.Until(eventAt)+10*time.Second, func() bool {
		for _, e := range bal.Events() {
			if e.Steer && e.Node == 1 {
				steered = e.Time
				return true
			}
		}
		return false
	}); err != nil {
		return "", fmt.Errorf("traffic never went to nva-b: %w\n%s", err, pairbench.Tail(nodes[0].LogPath, 15))
	}
	if err := waitUntil(ctx, 10*time.Second, func() bool {
		st, err := clients[0].Status(ctx)
		return err == nil && st.Role == "MAINTENANCE"
	}); err != nil {
		return "", fmt.Errorf("nva-a did not enter MAINTENANCE: %w", err)
	}
	time.Sleep(time.Second) // a second of traffic after the handover counts too
	tcancel()
	sent, answers := traffic.Stats()
	// Requests of the last 300ms may still be in flight: not counted.
	cut := time.Now().Add(-300 * time.Millisecond)
	counted := sent - traffic.SentSince(cut)
	answered := 0
	for _, a := range answers {
		if a.Seq < uint64(counted) {
			answered++
		}
	}
	kept := exchange(conns, readers, 1, 3*time.Second)
	handover := steered.Sub(eventAt)
	line = fmt.Sprintf("events cloud=%s kind=%s handover_ms=%d lost_requests=%d sessions_kept_pct=%d",
		cloud, kind, handover.Milliseconds(), counted-answered, 100*kept/len(conns))
	if cloud == "azure" {
		acked := 0
		for _, a := range fx.Acks() {
			if a == id {
				acked = 1
			}
		}
		line += fmt.Sprintf(" acknowledged=%d", acked)
	}
	return line, nil
}

func mustSelf() string {
	p, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return p
}

// exchange sends one line on every flow and counts the echoes.
func exchange(conns []net.Conn, rd []*bufio.Reader, round int, limit time.Duration) int {
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			msg := fmt.Sprintf("r%d-c%d\n", round, i)
			_ = c.SetDeadline(time.Now().Add(limit))
			if _, err := io.WriteString(c, msg); err != nil {
				return
			}
			if line, err := rd[i].ReadString('\n'); err == nil && line == msg {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return int(ok.Load())
}

// waitUntil polls cond every 10ms until it holds or limit passes.
func waitUntil(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
