package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/labtest"
	"github.com/batonha/baton/internal/pki"
	"github.com/batonha/baton/internal/sessionsync"
)

const (
	echoPort = 7
	udpPort  = 9
)

// firewallRules is a stateful firewall that cannot pass by accident:
// forward policy drop, invalid dropped (and counted), new connections
// only from the client side, SNAT to the shared address.
// setupFirewall loads the lab's stateful firewall on both appliances.
func setupFirewall(t *testing.T, p *lab.Pair) {
	t.Helper()
	labtest.RequireTool(t, "nft")
	if err := p.LoadFirewall(); err != nil {
		t.Fatal(err)
	}
}

// invalidDrops reads the firewall's invalid counter on appliance i.
func invalidDrops(t *testing.T, p *lab.Pair, i int) int {
	t.Helper()
	out, err := p.Appliances()[i].Run(context.Background(), "nft", "list", "counter", "inet", "fw", "invalid")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`packets (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no packet count in %s", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// sessionYAML is the link and sessions sections of node i.
func sessionYAML(pkiDir string, i int, strategy string) string {
	me, peer := lab.ApplianceName(i), 1-i
	return fmt.Sprintf(`link:
  listen: ":5407"
  address: "%s:5407"
  ca_file: %q
  cert_file: %q
  key_file: %q
sessions:
  strategy: %s
`, lab.HBAddr(peer), filepath.Join(pkiDir, "ca.crt"), filepath.Join(pkiDir, me+".crt"), filepath.Join(pkiDir, me+".key"), strategy)
}

// servers runs a TCP echo server and a UDP echo server on the server host.
func servers(t *testing.T, p *lab.Pair) {
	t.Helper()
	tcp, err := lab.StartTCPEcho(p.Server, fmt.Sprintf(":%d", echoPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tcp.Close() })
	udp, err := lab.StartEcho(p.Server, fmt.Sprintf(":%d", udpPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = udp.Close() })
}

// flows are long-lived client connections through the appliances.
type flows struct {
	tcp []net.Conn
	rd  []*bufio.Reader
	udp []net.Conn
}

func openFlows(t *testing.T, p *lab.Pair, nTCP, nUDP int) *flows {
	t.Helper()
	f := &flows{}
	t.Cleanup(func() {
		for _, c := range append(f.tcp, f.udp...) {
			c.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range nTCP {
		c, err := p.Client.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", lab.ServerBack, echoPort))
		if err != nil {
			t.Fatal(err)
		}
		f.tcp = append(f.tcp, c)
		f.rd = append(f.rd, bufio.NewReader(c))
	}
	for range nUDP {
		c, err := p.Client.DialContext(ctx, "udp", fmt.Sprintf("%s:%d", lab.ServerBack, udpPort))
		if err != nil {
			t.Fatal(err)
		}
		f.udp = append(f.udp, c)
	}
	return f
}

// exchange sends one message on every flow and counts the flows whose
// echo came back within limit.
func (f *flows) exchange(round int, limit time.Duration) (okTCP, okUDP int) {
	var nTCP, nUDP atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for i, c := range f.tcp {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			msg := fmt.Sprintf("r%d-c%d\n", round, i)
			_ = c.SetDeadline(time.Now().Add(limit))
			if _, err := io.WriteString(c, msg); err != nil {
				return
			}
			line, err := f.rd[i].ReadString('\n')
			if err == nil && line == msg {
				nTCP.Add(1)
			}
		}()
	}
	for i, c := range f.udp {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf("r%d-u%d", round, i)
			buf := make([]byte, 64)
			deadline := time.Now().Add(limit)
			// UDP may lose a datagram during the switch: retry until the deadline.
			for time.Now().Before(deadline) {
				_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
				if _, err := io.WriteString(c, msg); err != nil {
					return
				}
				n, err := c.Read(buf)
				if err == nil && string(buf[:n]) == msg {
					nUDP.Add(1)
					return
				}
			}
		}()
	}
	wg.Wait()
	return int(nTCP.Load()), int(nUDP.Load())
}

func (e *env) sessions(i int) (sessionsync.Status, error) {
	var st sessionsync.Status
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(e.nodes[i].Dir, "baton.sock"))
	}}}
	resp, err := hc.Get("http://baton/v1/sessions")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /v1/sessions: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (e *env) held(i int) int {
	st, err := e.sessions(i)
	if err != nil {
		return -1
	}
	return st.Held
}

// failTo makes node `to` active by a switchover on the other node, waits
// for its probe to answer 200 (the commit has happened by then: it runs
// before the probe flips) and steers the client and server to it, as a
// load balancer would.
func (e *env) failTo(to int) time.Duration {
	e.t.Helper()
	start := time.Now()
	out, err := exec.Command(e.bin, "switchover", "--socket", filepath.Join(e.nodes[1-to].Dir, "baton.sock")).CombinedOutput()
	if err != nil {
		e.t.Fatalf("switchover: %v\n%s", err, out)
	}
	e.eventually(fmt.Sprintf("%s answers the probe", lab.ApplianceName(to)), 10*time.Second, func() bool { return e.probe(to) == 200 })
	if err := e.pair.Steer(to); err != nil {
		e.t.Fatal(err)
	}
	return time.Since(start)
}

func newSessionEnv(t *testing.T, strategy string) *env {
	t.Helper()
	pkiDir := filepath.Join(t.TempDir(), "pki")
	if err := pki.Generate(pkiDir, []string{"nva-a", "nva-b"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	var extra [2]string
	if strategy != "" {
		extra = [2]string{sessionYAML(pkiDir, 0, strategy), sessionYAML(pkiDir, 1, strategy)}
	}
	// Ten missed heartbeats (1s) before a path is down: failovers here
	// are switchovers, and a loaded machine must not cause spurious ones.
	e := newEnv(t, [2]lab.NodeOptions{{Misses: 10}, {Misses: 10}}, extra)
	setupFirewall(t, e.pair)
	servers(t, e.pair)
	return e
}

// Without session sync the new active drops the old connections as
// invalid: the harness is honest.
func TestSessionsWithoutSyncConnectionsBreak(t *testing.T) {
	e := newSessionEnv(t, "")
	e.start(0)
	e.start(1)
	e.roles("ACTIVE", "STANDBY", 10*time.Second)
	f := openFlows(t, e.pair, 20, 0)
	if ok, _ := f.exchange(0, 3*time.Second); ok != 20 {
		t.Fatalf("%d/20 connections work before failover", ok)
	}
	e.failTo(1)
	ok, _ := f.exchange(1, 2*time.Second)
	if ok != 0 {
		t.Fatalf("%d/20 connections survived a failover without sync: the test topology lets state-less traffic through", ok)
	}
	if n := invalidDrops(t, e.pair, 1); n == 0 {
		t.Fatal("the new active dropped nothing as invalid")
	}
	// New connections work through the new active.
	if f2 := openFlows(t, e.pair, 1, 0); true {
		if ok, _ := f2.exchange(0, 3*time.Second); ok != 1 {
			t.Fatal("a new connection through the new active fails")
		}
	}
}

func TestSessionsSurviveFailoverAndFailback(t *testing.T) {
	for _, strategy := range []string{sessionsync.StrategyInject, sessionsync.StrategyCommit} {
		t.Run(strategy, func(t *testing.T) { surviveFailoverAndFailback(t, strategy) })
	}
}

func surviveFailoverAndFailback(t *testing.T, strategy string) {
	const nTCP, nUDP = 1000, 20
	e := newSessionEnv(t, strategy)
	e.start(0)
	e.start(1)
	e.roles("ACTIVE", "STANDBY", 10*time.Second)
	f := openFlows(t, e.pair, nTCP, nUDP)
	if tc, uc := f.exchange(0, 5*time.Second); tc != nTCP || uc != nUDP {
		t.Fatalf("before failover: %d/%d tcp, %d/%d udp", tc, nTCP, uc, nUDP)
	}
	e.eventually("standby holds every connection", 15*time.Second, func() bool { return e.held(1) >= nTCP+nUDP })

	// A bulk transfer runs across the failovers.
	iperf := startIperf(t, e.pair, 12*time.Second)

	round := 1
	for cycle := range 2 {
		for _, to := range []int{1, 0} {
			d := e.failTo(to)
			tc, uc := f.exchange(round, 5*time.Second)
			round++
			t.Logf("cycle %d: active %s after %v: %d/%d tcp, %d/%d udp survive", cycle, lab.ApplianceName(to), d.Round(time.Millisecond), tc, nTCP, uc, nUDP)
			if tc != nTCP || uc != nUDP {
				st, _ := e.sessions(to)
				t.Fatalf("connections lost on failover to %s: %d/%d tcp, %d/%d udp (sessions %+v)", lab.ApplianceName(to), tc, nTCP, uc, nUDP, st)
			}
			st, err := e.sessions(to)
			if err != nil || st.Commits == 0 || !st.Active {
				t.Fatalf("new active's session status %+v %v", st, err)
			}
			e.eventually("the new standby holds every connection", 15*time.Second, func() bool { return e.held(1-to) >= nTCP+nUDP })
		}
	}
	if out, err := iperf(); err != nil {
		t.Fatalf("iperf3 across failovers: %v\n%s", err, out)
	}
	for i := range 2 {
		if n := invalidDrops(t, e.pair, i); n != 0 {
			t.Errorf("%s dropped %d packets as invalid", lab.ApplianceName(i), n)
		}
	}

	// The standby restarts: it gets a full resync, including connections
	// opened while it was down.
	e.kill(1, syscall.SIGKILL)
	more := openFlows(t, e.pair, 10, 0)
	e.start(1)
	e.eventually("restarted standby resynced", 15*time.Second, func() bool { return e.held(1) >= nTCP+nUDP+10 })

	// The sync stream is lost (the heartbeats and the peer channel go
	// on, so no failover): the standby catches up by resync once it is
	// back.
	cut := filepath.Join(t.TempDir(), "cut.nft")
	if err := os.WriteFile(cut, []byte("table inet linkcut {\n chain out {\n  type filter hook output priority 0;\n  tcp dport 5407 reject with tcp reset\n }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := e.pair.A.Run(context.Background(), "nft", "-f", cut); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	more2 := openFlows(t, e.pair, 10, 0)
	e.eventually("sender sees the stream down", 15*time.Second, func() bool {
		st, err := e.sessions(0)
		return err == nil && !st.Connected
	})
	if out, err := e.pair.A.Run(context.Background(), "nft", "delete", "table", "inet", "linkcut"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	e.eventually("standby resynced after the link came back", 15*time.Second, func() bool { return e.held(1) >= nTCP+nUDP+20 })
	e.failTo(1)
	for name, fl := range map[string]*flows{"old": f, "opened while the standby was down": more, "opened while the link was down": more2} {
		want := len(fl.tcp)
		if tc, uc := fl.exchange(round, 5*time.Second); tc != want || uc != len(fl.udp) {
			for i, h := range e.pair.Appliances() {
				out, _ := h.Run(context.Background(), "sh", "-c", "conntrack -L -p tcp --dport 7 2>/dev/null | head -3; conntrack -C")
				st, _ := e.sessions(i)
				t.Logf("%s: invalid %d, sessions %+v\n%s", h.Name(), invalidDrops(t, e.pair, i), st, out)
			}
			t.Fatalf("%s connections after the last failover: %d/%d tcp, %d/%d udp", name, tc, want, uc, len(fl.udp))
		}
	}
	// The CLI shows it.
	out, err := exec.Command(e.bin, "sessions", "--socket", filepath.Join(e.nodes[0].Dir, "baton.sock"), "--dump", "--proto", "udp").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "snat "+lab.SharedSNAT) || !strings.Contains(string(out), fmt.Sprintf("%d of %d matching", nUDP, nUDP)) {
		t.Fatalf("baton sessions --dump: %v\n%s", err, out)
	}
	out, err = exec.Command(e.bin, "sessions", "--socket", filepath.Join(e.nodes[1].Dir, "baton.sock")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "active (source)") || !strings.Contains(string(out), "commits   ") {
		t.Fatalf("baton sessions: %v\n%s", err, out)
	}
}

// startIperf runs an iperf3 server on the server host and a client
// transfer of duration d; the returned function waits for the client.
func startIperf(t *testing.T, p *lab.Pair, d time.Duration) func() ([]byte, error) {
	t.Helper()
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Fatal("iperf3 not installed: run scripts/deps.sh test")
	}
	slog := filepath.Join(t.TempDir(), "iperf3-server.log")
	srv, err := p.Server.Start("iperf3-server", []string{"iperf3", "-s", "-p", "5201", "--forceflush"}, nil, slog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Signal(syscall.SIGKILL) })
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := p.Client.DialContext(context.Background(), "tcp", lab.ServerBack+":5201")
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("iperf3 server not up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	type res struct {
		out []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
		defer cancel()
		secs := strconv.Itoa(int(d.Seconds()))
		out, err := p.Client.Run(ctx, "timeout", strconv.Itoa(int(d.Seconds())+20), "iperf3", "-c", lab.ServerBack, "-p", "5201", "-t", secs, "-b", "200M")
		ch <- res{out, err}
	}()
	// The transfer is running once the server reports its data stream.
	deadline = time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(slog)
		if strings.Contains(string(b), "connected to") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("iperf3 transfer did not start:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() ([]byte, error) { r := <-ch; return r.out, r.err }
}
