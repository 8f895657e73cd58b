package hostevents_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/hostevents"
	"github.com/batonha/baton/internal/hostevents/hosteventstest"
	"github.com/batonha/baton/internal/role"
)

func TestMain(m *testing.M) {
	hosteventstest.RunAEMMIfChild()
	os.Exit(m.Run())
}

// node is a fake daemon: its commands move the role as the real one's
// do and tell the watcher.
type node struct {
	mu    sync.Mutex
	w     *hostevents.Watcher
	snap  role.Snapshot
	calls []string
}

func healthyPair() role.Snapshot {
	return role.Snapshot{State: role.Active, PeerAlive: true, PeerKnown: true,
		Peer: role.PeerInfo{Name: "nva-b", State: role.Standby, Healthy: true}}
}

func (n *node) set(s role.Snapshot) {
	n.mu.Lock()
	n.snap = s
	w := n.w
	n.mu.Unlock()
	w.RoleChanged(s)
}

func (n *node) Switchover(context.Context) error {
	n.mu.Lock()
	n.calls = append(n.calls, "switchover")
	s := n.snap
	n.mu.Unlock()
	s.State, s.Peer.State = role.Standby, role.Active
	n.set(s)
	return nil
}

func (n *node) Maintenance(_ context.Context, on bool) error {
	n.mu.Lock()
	s := n.snap
	if on {
		n.calls = append(n.calls, "maintenance on")
		s.State, s.Maintenance = role.Maintenance, true
	} else {
		n.calls = append(n.calls, "maintenance off")
		s.State, s.Maintenance = role.Standby, false
	}
	n.mu.Unlock()
	n.set(s)
	return nil
}

func (n *node) Calls() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.calls...)
}

type setup struct {
	cloud, endpoint, vmName, stateDir string
	resume, peerless                  bool
	clk                               clock.Clock
}

func newWatcher(t *testing.T, s setup, start role.Snapshot) (*hostevents.Watcher, *node) {
	t.Helper()
	cfg := hostevents.Config{Cloud: s.cloud}
	cfg.SetDefaults()
	cfg.Endpoint, cfg.VMName, cfg.Resume = s.endpoint, s.vmName, s.resume
	var problems []string
	cfg.Check(func(k, m string) { problems = append(problems, k+": "+m) })
	if len(problems) > 0 {
		t.Fatalf("config: %v", problems)
	}
	if s.clk == nil {
		s.clk = clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	n := &node{}
	w, err := hostevents.New(cfg, hostevents.Options{Node: n, Clock: s.clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LossTolerance: 3 * time.Second, StateDir: s.stateDir, Peerless: s.peerless})
	if err != nil {
		t.Fatal(err)
	}
	n.w = w
	n.set(start)
	return w, n
}

func status(w *hostevents.Watcher) hostevents.Status { return w.Status().(hostevents.Status) }
