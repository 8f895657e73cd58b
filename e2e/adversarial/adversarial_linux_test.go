package adversarial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/batonha/baton/internal/action/routes/fencerace"
	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/provider/aws/awstest"
)

// TestAdversarial runs every case against one pair and prints a line per
// case and the summary line.
func TestAdversarial(t *testing.T) {
	s := newSuite(t)
	s.write(s.outside, "x.conf", "outside x\n")
	s.start(0)
	s.start(1)
	if !eventually(20*time.Second, func() bool { return s.role(0) == "ACTIVE" && s.role(1) == "STANDBY" && s.pathsUp() }) {
		t.Fatalf("the pair did not come up: %s/%s", s.role(0), s.role(1))
	}
	if !eventually(20*time.Second, func() bool {
		st, err := s.sessions(1)
		return err == nil && st.Inbound
	}) {
		t.Fatal("session sync stream did not come up")
	}
	var res results
	run := func(cs []testCase) {
		for _, c := range cs {
			before := s.snap()
			detail, err := c.run()
			if err == nil && !c.changes {
				if d := before.diff(s.snap()); d != "" {
					err = fmt.Errorf("the attack changed: %s", d)
				}
			}
			if err == nil && (s.role(0) != "ACTIVE" || s.role(1) != "STANDBY") {
				err = fmt.Errorf("roles now %s/%s", s.role(0), s.role(1))
			}
			res.add(c.name, detail, err)
		}
	}
	run(s.configSyncCases())
	run(s.linkCases())
	run(s.sessionCases())
	run(s.heartbeatCases())
	run([]testCase{s.fenceCase(t)})
	normal, flooded, samples := s.failovers(&res)
	ratio := float64(flooded) / float64(max(normal, 1))
	var ferr error
	if ratio > 2 {
		ferr = fmt.Errorf("failover took %d ms during the flood, %.2f× the normal %d ms", flooded, ratio, normal)
	}
	res.add("flood/failover-within-2x-normal", fmt.Sprintf("median %d ms during the flood, %d ms normal (%.2f×); %s", flooded, normal, ratio, samples), ferr)
	fmt.Printf("adversarial cases=%d refused=%d failover_during_flood_ms=%d failover_normal_ms=%d\n", res.cases, res.refused, flooded, normal)
	if res.refused != res.cases {
		t.Fatalf("%d of %d cases not refused", res.cases-res.refused, res.cases)
	}
}

type results struct {
	mu             sync.Mutex
	cases, refused int
}

func (r *results) add(name, detail string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cases++
	if err != nil {
		fmt.Printf("case %-44s FAILED: %v\n", name, err)
		return
	}
	r.refused++
	fmt.Printf("case %-44s refused: %s\n", name, detail)
}

func (s *suite) pathsUp() bool {
	for i := range 2 {
		st, err := s.status(i)
		if err != nil || !st.Peer.Alive || len(st.Peer.Paths) == 0 {
			return false
		}
		for _, p := range st.Peer.Paths {
			if !p.Up {
				return false
			}
		}
	}
	return true
}

// fenceCase races a stale fenced writer against a newer one on moto, at
// every step of each (internal/action/routes/fencerace).
func (s *suite) fenceCase(t *testing.T) testCase {
	return testCase{name: "fence/stale-writer-every-interleaving", run: func() (string, error) {
		url := awstest.StartMoto(t)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		c := awstest.MotoClient(url)
		p := awstest.BuildPair(ctx, t, c)
		dests := []string{"0.0.0.0/0", "172.16.0.0/12"}
		var tables []string
		for range 2 {
			rt, err := c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: awssdk.String(p.VPC)})
			if err != nil {
				return "", fmt.Errorf("CreateRouteTable: %w", err)
			}
			for _, d := range dests {
				if _, err := c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt.RouteTable.RouteTableId,
					DestinationCidrBlock: awssdk.String(d), NetworkInterfaceId: awssdk.String(p.PeerENI)}); err != nil {
					return "", fmt.Errorf("CreateRoute %s: %w", d, err)
				}
			}
			tables = append(tables, *rt.RouteTable.RouteTableId)
		}
		rep, err := fencerace.Sweep(ctx, fencerace.AWS(c, tables, dests, p.LocalENI, p.PeerENI, t.TempDir()), 5, 6)
		if err != nil {
			return "", err
		}
		if rep.Refused != rep.Cases || rep.Cases < 10 {
			return "", fmt.Errorf("report %+v: want every one of at least 10 interleavings refused", rep)
		}
		return fmt.Sprintf("%d interleavings on moto, the stale token refused (ErrStale fault) in each, routes the newer's", rep.Cases), nil
	}}
}

// A flood target: one listener of one node, and what to send before
// falling silent (nil: nothing, an idle connection).
type target struct {
	listener string // the label of baton_listener_dropped_total, or "channel"
	port     int
	limit    int // connections the node holds at once
	partial  []byte
}

var (
	tlsPartial  = []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01} // a ClientHello's record header and first byte
	httpPartial = []byte("GET /metrics HTTP/1.1\r\nHost: nva\r\nX-Slow: ")
	targets     = []target{
		{"api", apiPort, 128, tlsPartial},
		{"ui", uiPort, 128, tlsPartial},
		{"metrics", metricsPort, 128, httpPartial},
		{"link", linkPort, 16, tlsPartial},
		{"channel", lab.ChannelPort, 8, []byte{0x00}},
	}
)

// flood holds connections from mallory to one listener.
type flood struct {
	mu      sync.Mutex
	conns   []net.Conn
	closed  atomic.Int64 // closed by the node, not by mallory
	failed  int          // dials that did not connect
	dialled int          // connections made (churn)
}

// open dials n connections to addr from mallory, each sending partial
// (if any) and then nothing.
func (s *suite) open(f *flood, addr string, n int, partial []byte) error {
	return s.mallory.Do(func() error {
		d := net.Dialer{Timeout: time.Second}
		for range n {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				f.failed++
				continue
			}
			if partial != nil {
				_, _ = c.Write(partial)
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			go func() {
				_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
				_, err := io.Copy(io.Discard, c)
				if err == nil || !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
					f.closed.Add(1)
				}
			}()
		}
		return nil
	})
}

func (f *flood) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func (s *suite) dropped(i int, t target) float64 {
	if t.listener == "channel" {
		st, err := s.status(i)
		if err != nil {
			return -1
		}
		return float64(st.Peer.Drops["channel_full"])
	}
	return s.metric(i, fmt.Sprintf(`baton_listener_dropped_total{listener=%q}`, t.listener))
}

func fdCount(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// failovers measures three failovers without a flood and three during a
// flood of every listener of both nodes, alternating; the first flood's
// listeners are cases. It returns the median of each, in ms.
func (s *suite) failovers(res *results) (normal, flooded int64, samples string) {
	var ns, fs []int64
	churned := 0
	for round := range 6 {
		withFlood := round%2 == 1
		active := 0
		if s.role(1) == "ACTIVE" {
			active = 1
		}
		var floods map[[3]int]*flood
		if withFlood {
			floods = s.floodAll(res, round == 1)
		}
		var churn *flood
		if withFlood {
			churn = &flood{}
			floods[[3]int{-1, -1, -1}] = churn
		}
		ms, err := s.failover(active, churn)
		for _, f := range floods {
			f.stop()
		}
		if err != nil {
			s.t.Fatalf("failover round %d: %v", round, err)
		}
		if withFlood {
			fs = append(fs, ms)
			churned += churn.dialled
		} else {
			ns = append(ns, ms)
		}
	}
	samples = fmt.Sprintf("flood %v ms, normal %v ms, %d connections dialled during the flooded failovers", fs, ns, churned)
	slices.Sort(ns)
	slices.Sort(fs)
	return ns[len(ns)/2], fs[len(fs)/2], samples
}

// floodAll opens idle and half-open floods on every listener of both
// nodes; with asCases each (listener, kind) is checked and recorded.
func (s *suite) floodAll(res *results, asCases bool) map[[3]int]*flood {
	floods := map[[3]int]*flood{}
	var before [2][]float64
	for i := range 2 {
		for _, t := range targets {
			before[i] = append(before[i], s.dropped(i, t))
		}
	}
	snap := s.snap()
	for kind := range 2 {
		for ti, t := range targets {
			for i := range 2 {
				f := &flood{}
				floods[[3]int{i, ti, kind}] = f
				var partial []byte
				if kind == 1 {
					partial = t.partial
				}
				if err := s.open(f, net.JoinHostPort(lab.FrontAddr(i), fmt.Sprint(t.port)), t.limit+32, partial); err != nil {
					s.t.Fatal(err)
				}
			}
		}
	}
	if !asCases {
		return floods
	}
	for kind, kname := range []string{"idle", "half-open"} {
		for ti, t := range targets {
			name := fmt.Sprintf("flood/%s-%s", t.listener, kname)
			var err error
			var detail string
			for i := range 2 {
				f := floods[[3]int{i, ti, kind}]
				n := t.limit + 32
				// The node closes what it cannot hold at once: at least the
				// connections past its limit.
				if !eventually(5*time.Second, func() bool { return f.closed.Load() >= 32 }) {
					err = fmt.Errorf("%s: only %d of %d connections (%d failed to connect) closed by the node, limit %d",
						lab.ApplianceName(i), f.closed.Load(), n, f.failed, t.limit)
					break
				}
				var d float64
				if !eventually(5*time.Second, func() bool { d = s.dropped(i, t) - before[i][ti]; return d >= 32 }) {
					err = fmt.Errorf("%s: the drop counter moved %v", lab.ApplianceName(i), d)
					break
				}
				if fds := fdCount(s.nodes[i].Proc.PID); fds > 1024 {
					err = fmt.Errorf("%s holds %d descriptors", lab.ApplianceName(i), fds)
					break
				}
				detail = fmt.Sprintf("%d of %d closed at once per node, drop counter +%v (both kinds), %d fds held",
					f.closed.Load(), n, d, fdCount(s.nodes[i].Proc.PID))
			}
			if err == nil && !s.pathsUp() {
				err = errors.New("a heartbeat path went down during the flood")
			}
			if err == nil {
				if d := snap.diff(s.snap()); d != "" {
					err = fmt.Errorf("the flood changed: %s", d)
				}
			}
			res.add(name, detail, err)
		}
	}
	return floods
}

// failover freezes the active node (SIGSTOP: its sockets stay open, so
// only missed heartbeats tell), measures until the other's probe answers
// 200 to the client, then kills and restarts the frozen node and waits
// for the pair to settle. With churn, mallory keeps dialling every
// listener of the surviving node until its probe answers (at most 4000
// connections, 10 s).
func (s *suite) failover(active int, churn *flood) (int64, error) {
	other := 1 - active
	hc := &http.Client{Timeout: 200 * time.Millisecond, Transport: &http.Transport{DialContext: s.p.Client.DialContext, DisableKeepAlives: true}}
	url := fmt.Sprintf("http://%s:%d/", lab.FrontAddr(other), lab.ProbePort)
	stop := make(chan struct{})
	churned := make(chan struct{})
	if churn != nil {
		go func() {
			defer close(churned)
			_ = s.mallory.Do(func() error {
				d := net.Dialer{Timeout: 100 * time.Millisecond}
				deadline := time.Now().Add(10 * time.Second)
				for n := 0; n < 4000 && time.Now().Before(deadline); n++ {
					select {
					case <-stop:
						return nil
					default:
					}
					t := targets[n%len(targets)]
					c, err := d.Dial("tcp", net.JoinHostPort(lab.FrontAddr(other), fmt.Sprint(t.port)))
					if err != nil {
						continue
					}
					if n%2 == 1 {
						_, _ = c.Write(t.partial)
					}
					churn.mu.Lock()
					churn.conns = append(churn.conns, c)
					churn.dialled++
					churn.mu.Unlock()
				}
				return nil
			})
		}()
	} else {
		close(churned)
	}
	start := time.Now()
	if err := s.nodes[active].Proc.Signal(syscall.SIGSTOP); err != nil {
		return 0, err
	}
	ok := eventually(10*time.Second, func() bool {
		resp, err := hc.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	ms := time.Since(start).Milliseconds()
	close(stop)
	<-churned
	s.kill(active)
	if !ok {
		return 0, fmt.Errorf("%s's probe did not answer 200 within 10s of %s's freeze", lab.ApplianceName(other), lab.ApplianceName(active))
	}
	s.start(active)
	if !eventually(20*time.Second, func() bool { return s.role(active) == "STANDBY" && s.role(other) == "ACTIVE" && s.pathsUp() }) {
		_, e0 := s.status(0)
		_, e1 := s.status(1)
		return 0, fmt.Errorf("after restarting %s: roles %s/%s (%v, %v), paths up %t", lab.ApplianceName(active), s.role(0), s.role(1), e0, e1, s.pathsUp())
	}
	return ms, nil
}
