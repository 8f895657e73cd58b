// Package e2e runs the real baton binary in the lab's network namespaces
// and checks what a network engineer would check: who is active, what the
// load balancer's probe sees, and that failures move the role.
package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonha/baton/internal/api"
	"github.com/batonha/baton/internal/heartbeat"
	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/labtest"
	"github.com/batonha/baton/internal/role"
)

const interval = 100 * time.Millisecond

// batonBin returns the binary under test: $E2E_BIN (make test sets it)
// or one built into the test's temp dir.
func batonBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("E2E_BIN"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "baton")
	cmd := exec.Command("go", "build", "-o", out, "../cmd/baton")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building baton: %v\n%s", err, b)
	}
	return out
}

type env struct {
	t     *testing.T
	pair  *lab.Pair
	nodes [2]*lab.BatonNode
	bin   string
	hc    [2]*http.Client
}

// newEnv builds the pair topology and writes both nodes' configurations;
// extra YAML is appended to node i's configuration.
func newEnv(t *testing.T, opts [2]lab.NodeOptions, extra [2]string) *env {
	t.Helper()
	labtest.RequireRoot(t)
	bin := batonBin(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := lab.NewPair(lab.RandomPrefix(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("tearing down lab: %v", err)
		}
	})
	for i := range opts {
		if opts[i].Interval == 0 {
			opts[i].Interval = interval
		}
		if opts[i].Misses == 0 {
			opts[i].Misses = 3
		}
		if opts[i].Priority == 0 {
			opts[i].Priority = 200 - 100*i
		}
	}
	dir := t.TempDir()
	nodes, err := lab.SetupBatonNodes(p, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, pair: p, nodes: nodes, bin: bin}
	for i, n := range nodes {
		if extra[i] != "" {
			f, err := os.OpenFile(n.Config, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(f, extra[i])
			f.Close()
		}
	}
	e.hc[0] = e.client(p.Client)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				b, _ := os.ReadFile(n.LogPath)
				lines := strings.Split(string(b), "\n")
				if len(lines) > 60 {
					lines = lines[len(lines)-60:]
				}
				t.Logf("--- %s log (tail) ---\n%s", lab.ApplianceName(n.Index), strings.Join(lines, "\n"))
			}
		}
	})
	return e
}

func (e *env) client(h *lab.Host) *http.Client {
	return &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{
		DialContext: h.DialContext, DisableKeepAlives: true,
	}}
}

func (e *env) start(i int) {
	e.t.Helper()
	// A SIGKILLed daemon leaves its socket behind; the daemon handles it.
	if err := e.nodes[i].Start(e.bin); err != nil {
		e.t.Fatal(err)
	}
	n := e.nodes[i]
	e.t.Cleanup(func() {
		if n.Running() {
			_ = n.Proc.Signal(syscall.SIGKILL)
			_ = n.Proc.Wait()
		}
	})
}

func (e *env) kill(i int, sig syscall.Signal) {
	e.t.Helper()
	if err := e.nodes[i].Proc.Signal(sig); err != nil {
		e.t.Fatal(err)
	}
	select {
	case <-e.nodes[i].Proc.Done():
	case <-time.After(15 * time.Second):
		e.t.Fatalf("%s did not exit after %v", lab.ApplianceName(i), sig)
	}
}

func (e *env) status(i int) (api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return api.NewClient(filepath.Join(e.nodes[i].Dir, "baton.sock"), "").Status(ctx)
}

func (e *env) role(i int) string {
	if !e.nodes[i].Running() {
		return "DEAD"
	}
	st, err := e.status(i)
	if err != nil {
		return "?"
	}
	return st.Role
}

// probe returns the HTTP code node i's probe answers to the client.
func (e *env) probe(i int) int {
	resp, err := e.hc[0].Get(fmt.Sprintf("http://%s:%d/", lab.FrontAddr(i), lab.ProbePort))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// eventually polls cond until it holds or the deadline passes.
func (e *env) eventually(what string, limit time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("timed out after %v waiting for %s (roles %s/%s)", limit, what, e.role(0), e.role(1))
}

// roles waits until the nodes hold want (e.g. ACTIVE, STANDBY).
func (e *env) roles(want0, want1 string, limit time.Duration) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("roles %s/%s", want0, want1), limit, func() bool {
		return e.role(0) == want0 && e.role(1) == want1
	})
}

// allPathsUp waits until both nodes see every path to the peer up (the
// channel included: it is dialled once the peer listens).
func (e *env) allPathsUp(limit time.Duration) {
	e.t.Helper()
	e.eventually("every path up on both nodes", limit, func() bool {
		for i := range e.nodes {
			st, err := e.status(i)
			if err != nil || len(st.Peer.Paths) == 0 {
				return false
			}
			for _, p := range st.Peer.Paths {
				if !p.Up {
					return false
				}
			}
		}
		return true
	})
}

// steady asserts that the roles stay as they are for d.
func (e *env) steady(want0, want1 string, d time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if r0, r1 := e.role(0), e.role(1); r0 != want0 || r1 != want1 {
			e.t.Fatalf("roles changed to %s/%s, want %s/%s", r0, r1, want0, want1)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestStartElectsOneActiveAndProbeFollows(t *testing.T) {
	e := newEnv(t, [2]lab.NodeOptions{{}, {}}, [2]string{})
	e.start(0)
	e.start(1)
	e.roles("ACTIVE", "STANDBY", 10*time.Second)
	e.eventually("probe 200 on the active and 503 on the standby", 5*time.Second, func() bool {
		return e.probe(0) == 200 && e.probe(1) == 503
	})
	resp, err := e.hc[0].Get(fmt.Sprintf("http://%s:%d/", lab.FrontAddr(0), lab.ProbePort))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := strings.TrimSpace(string(body)); got != "nva-a is active" {
		t.Fatalf("probe body %q, want %q", got, "nva-a is active")
	}
	st, err := e.status(0)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Peer.Alive || len(st.Peer.Paths) < 3 {
		t.Fatalf("status must show the peer alive on every path: %+v", st.Peer)
	}
	for _, p := range st.Peer.Paths {
		if !p.Up {
			t.Errorf("path %s (%s) down", p.Name, p.Kind)
		}
	}
	if st.Probe == nil || st.Probe.State != "connected" || st.Probe.Count200 == 0 {
		t.Fatalf("status must show the probe connected: %+v", st.Probe)
	}
	// The CLI prints the same.
	out, err := exec.Command(e.bin, "status", "--socket", filepath.Join(e.nodes[1].Dir, "baton.sock")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "STANDBY") || !strings.Contains(string(out), "nva-a  alive  ACTIVE") {
		t.Fatalf("baton status: %v\n%s", err, out)
	}
}

func TestKillActiveThenRestart(t *testing.T) {
	for _, preempt := range []bool{true, false} {
		t.Run(fmt.Sprintf("preempt=%v", preempt), func(t *testing.T) {
			e := newEnv(t, [2]lab.NodeOptions{{Preempt: preempt}, {Preempt: preempt}}, [2]string{})
			e.start(0)
			e.start(1)
			e.roles("ACTIVE", "STANDBY", 10*time.Second)
			e.allPathsUp(5 * time.Second)
			killed := time.Now()
			e.kill(0, syscall.SIGKILL)
			e.eventually("standby takes over", 5*time.Second, func() bool { return e.role(1) == "ACTIVE" && e.probe(1) == 200 })
			t.Logf("takeover after SIGKILL seen within %v", time.Since(killed))
			st, _ := e.status(1)
			if st.Reason != string(role.ReasonPeerGone) {
				t.Errorf("takeover reason %q, want %q (the channel tells a crash at once)", st.Reason, role.ReasonPeerGone)
			}
			e.start(0)
			if preempt {
				e.roles("ACTIVE", "STANDBY", 10*time.Second)
				st, _ := e.status(0)
				if st.Reason != string(role.ReasonPreempt) {
					t.Errorf("reason %q, want preempt", st.Reason)
				}
			} else {
				e.roles("STANDBY", "ACTIVE", 10*time.Second)
				e.steady("STANDBY", "ACTIVE", 1500*time.Millisecond)
			}
		})
	}
}

func TestHeartbeatPaths(t *testing.T) {
	e := newEnv(t, [2]lab.NodeOptions{{}, {}}, [2]string{})
	e.start(0)
	e.start(1)
	e.roles("ACTIVE", "STANDBY", 10*time.Second)

	// Cut the front path only: no failover, the path shows down.
	if err := e.pair.A.SetLink(lab.IfFront, false); err != nil {
		t.Fatal(err)
	}
	e.eventually("front path down in nva-b's status", 5*time.Second, func() bool {
		st, err := e.status(1)
		if err != nil {
			return false
		}
		for _, p := range st.Peer.Paths {
			if p.Name == "front" {
				return !p.Up && st.Peer.Alive
			}
		}
		return false
	})
	e.steady("ACTIVE", "STANDBY", 10*interval)

	// Cut the rest: the standby takes over (both are active while
	// partitioned; without a witness that is the documented behaviour).
	if err := e.pair.A.SetLink(lab.IfHB, false); err != nil {
		t.Fatal(err)
	}
	e.eventually("nva-b active after every path is cut", 5*time.Second, func() bool { return e.role(1) == "ACTIVE" })
	st, _ := e.status(1)
	if st.Reason != string(role.ReasonPeerLost) {
		t.Errorf("reason %q, want peer_lost", st.Reason)
	}

	// Heal: exactly one active again, the node that took over last.
	if err := e.pair.A.SetLink(lab.IfFront, true); err != nil {
		t.Fatal(err)
	}
	if err := e.pair.A.SetLink(lab.IfHB, true); err != nil {
		t.Fatal(err)
	}
	e.roles("STANDBY", "ACTIVE", 10*time.Second)
	e.steady("STANDBY", "ACTIVE", 10*interval)
}

func TestCheckFailureSwitchoverMaintenance(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "healthy")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check := fmt.Sprintf("checks:\n  - name: service\n    type: exec\n    command: [\"test\", \"-e\", %q]\n    interval: 100ms\n    timeout: 100ms\n    rise: 2\n    fall: 2\n", flag)
	e := newEnv(t, [2]lab.NodeOptions{{}, {}}, [2]string{check, ""})
	e.start(0)
	e.start(1)
	e.roles("ACTIVE", "STANDBY", 10*time.Second)

	// The active's check fails: FAULT, and the peer takes over.
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	e.roles("FAULT", "ACTIVE", 5*time.Second)
	if c := e.probe(0); c != 503 {
		t.Fatalf("faulted node's probe answers %d", c)
	}
	// It recovers as standby (no preempt).
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.roles("STANDBY", "ACTIVE", 5*time.Second)

	// Planned switchover from the active node.
	out, err := exec.Command(e.bin, "switchover", "--socket", filepath.Join(e.nodes[1].Dir, "baton.sock")).CombinedOutput()
	if err != nil {
		t.Fatalf("switchover: %v\n%s", err, out)
	}
	e.roles("ACTIVE", "STANDBY", 5*time.Second)
	st, _ := e.status(1)
	if st.Reason != string(role.ReasonSwitchover) {
		t.Errorf("old active's reason %q, want switchover", st.Reason)
	}

	// Maintenance on the standby: it will not take over even when the
	// active fails.
	out, err = exec.Command(e.bin, "maintenance", "on", "--socket", filepath.Join(e.nodes[1].Dir, "baton.sock")).CombinedOutput()
	if err != nil {
		t.Fatalf("maintenance on: %v\n%s", err, out)
	}
	e.roles("ACTIVE", "MAINTENANCE", 5*time.Second)
	// A switchover to a node in maintenance is refused with a reason.
	out, err = exec.Command(e.bin, "switchover", "--socket", filepath.Join(e.nodes[0].Dir, "baton.sock")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refused") {
		t.Fatalf("switchover to a node in maintenance must be refused: %v\n%s", err, out)
	}
	e.kill(0, syscall.SIGKILL)
	e.eventually("the node in maintenance to see its peer dead", 5*time.Second, func() bool {
		st, err := e.status(1)
		return err == nil && !st.Peer.Alive
	})
	if r := e.role(1); r != "MAINTENANCE" {
		t.Fatalf("node in maintenance became %s", r)
	}
	out, err = exec.Command(e.bin, "maintenance", "off", "--socket", filepath.Join(e.nodes[1].Dir, "baton.sock")).CombinedOutput()
	if err != nil {
		t.Fatalf("maintenance off: %v\n%s", err, out)
	}
	e.eventually("node leaving maintenance takes over from a dead peer", 5*time.Second, func() bool { return e.role(1) == "ACTIVE" })
}

func TestBadPacketsIgnoredAndCounted(t *testing.T) {
	e := newEnv(t, [2]lab.NodeOptions{{}, {}}, [2]string{})
	e.start(0)
	e.start(1)
	e.roles("ACTIVE", "STANDBY", 10*time.Second)
	// The standby adopts the active's term from its next heartbeat.
	e.eventually("standby holds the active's term", 5*time.Second, func() bool {
		a, errA := e.status(0)
		b, errB := e.status(1)
		return errA == nil && errB == nil && a.Term == b.Term
	})
	before, _ := e.status(1)

	key, err := heartbeat.LoadKeys(filepath.Join(filepath.Dir(e.nodes[0].Dir), "heartbeat.key"))
	if err != nil {
		t.Fatal(err)
	}
	// Forged takeover claims: an ACTIVE message with a huge term.
	forged := heartbeat.Message{Node: "nva-a", Path: "front", Epoch: 1, Seq: 1, Sent: time.Now().UnixNano(),
		State: role.Active, Term: 1 << 40, Priority: 254}
	wrongKey, err := heartbeat.Encode(&forged, []byte("this-is-not-the-cluster-key"))
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := heartbeat.Encode(&forged, key[0]) // right key, epoch of a long-gone process
	if err != nil {
		t.Fatal(err)
	}
	conn, err := e.pair.Client.DialContext(context.Background(), "udp", net.JoinHostPort(lab.FrontAddr(1), fmt.Sprint(lab.HeartbeatPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < 50; i++ {
		for _, b := range [][]byte{wrongKey, replayed, replayed, []byte("garbage"), {}, append(wrongKey[:20:20], 0xff)} {
			if len(b) > 0 {
				_, _ = conn.Write(b)
			}
		}
	}
	e.eventually("drops counted", 5*time.Second, func() bool {
		st, err := e.status(1)
		if err != nil {
			return false
		}
		d := st.Peer.Drops
		return d["bad_mac"] >= 50 && d["malformed"] >= 50 && d["stale_epoch"]+d["replay"] >= 100
	})
	e.steady("ACTIVE", "STANDBY", 5*interval)
	after, _ := e.status(1)
	if len(after.Transitions) != len(before.Transitions) || after.Term != before.Term {
		t.Fatalf("bad packets changed the role: before %+v after %+v", before.Transitions, after.Transitions)
	}
}
