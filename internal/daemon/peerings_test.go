package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/config"
	"github.com/batonha/baton/internal/peerings"
	"github.com/batonha/baton/internal/role"
)

// memRouteServer is an in-memory route server (the Azure and AWS ones
// are tested against the SDKs' fakes in internal/peerings): creations
// succeed at once.
type memRouteServer struct {
	mu    sync.Mutex
	conns map[string]peerings.Peering
}

func (m *memRouteServer) ID() string    { return "mem" }
func (m *memRouteServer) MaxPeers() int { return 8 }
func (m *memRouteServer) Managed(p peerings.Peering) bool {
	return len(p.Name) > 6 && p.Name[:6] == "baton-"
}
func (m *memRouteServer) List(context.Context) ([]peerings.Peering, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []peerings.Peering
	for _, p := range m.conns {
		out = append(out, p)
	}
	return out, nil
}
func (m *memRouteServer) Get(_ context.Context, name string) (peerings.Peering, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.conns[name]
	if !ok {
		return p, peerings.ErrNotFound
	}
	return p, nil
}
func (m *memRouteServer) Create(_ context.Context, p peerings.Peering) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p.State = peerings.StateSucceeded
	m.conns[p.Name] = p
	return nil
}
func (m *memRouteServer) Delete(_ context.Context, p peerings.Peering) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.conns, p.Name)
	return nil
}
func (m *memRouteServer) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for n := range m.conns {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

type memInventory struct {
	mu  sync.Mutex
	ips []string
}

func (m *memInventory) Instances(context.Context) ([]peerings.Instance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []peerings.Instance
	for _, ip := range m.ips {
		out = append(out, peerings.Instance{Name: "vm-" + ip, IP: ip})
	}
	return out, nil
}

func (m *memInventory) add(ip string) { m.mu.Lock(); m.ips = append(m.ips, ip); m.mu.Unlock() }

const peeringsConfig = `node: {name: a}
heartbeat: {key_file: /etc/baton/heartbeat.key}
%s
bgp:
  mode: %s
  asn: 65001
  prefixes: [0.0.0.0/0]
  peers: [{address: 10.1.1.4, asn: 65515}]
  peerings:
    provider: azure
    interval: 1m
    azure: {subscription_id: 11111111-2222-4333-8444-555555555555, resource_group: hub, route_server: rs, scale_set: nva}
`

func peeringsCfg(t *testing.T, peer, mode string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(peeringsConfig, peer, mode)), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// armed waits until the runner has armed its timer again (after a round
// or at start), so that advancing the fake clock fires it.
func armed(t *testing.T, clk *clock.Fake) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for clk.Pending() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the peerings runner did not arm its timer")
		}
		time.Sleep(time.Millisecond)
	}
}

// On a pair without a witness baton run reconciles the route server's
// peerings on the ACTIVE node only: a standby skips every round, the node
// that becomes active reconciles at once and then on its interval, and
// after a failover (back to standby) it writes nothing more.
func TestPeeringsInDaemonFollowTheActiveRole(t *testing.T) {
	cfg := peeringsCfg(t, `peer: {name: b, paths: [{name: hb, address: "127.0.0.1:9"}]}`, "active-standby")
	if w := peeringWriter(cfg); w != writerActive {
		t.Fatalf("writer %q, want %q", w, writerActive)
	}
	clk := clock.NewFake(t0)
	inv, rs := &memInventory{ips: []string{"10.0.0.4", "10.0.0.5"}}, &memRouteServer{conns: map[string]peerings.Peering{}}
	d := &Daemon{cfg: cfg, log: slog.New(slog.DiscardHandler), clk: clk,
		peeringsBackends: func(context.Context, peerings.Config) (peerings.Inventory, []peerings.RouteServer, error) {
			return inv, []peerings.RouteServer{rs}, nil
		}}
	sub, err := d.buildPeerings()
	if err != nil {
		t.Fatal(err)
	}
	s := sub.(*peeringsSubsystem)
	rounds, skips := make(chan struct{}, 8), make(chan struct{}, 8)
	onRound, onSkip := s.runner.OnRound, s.runner.OnSkip
	s.runner.OnRound = func(p []peerings.Plan, err error) { onRound(p, err); rounds <- struct{}{} }
	s.runner.OnSkip = func() { onSkip(); skips <- struct{}{} }
	wait := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s", what)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	s.RoleChanged(role.Snapshot{State: role.Standby})
	armed(t, clk)
	clk.Advance(0) // the first round, at start
	wait(skips, "skipped round while standby")
	if n := rs.names(); len(n) != 0 {
		t.Fatalf("a standby wrote peerings %v", n)
	}

	s.RoleChanged(role.Snapshot{State: role.Active}) // at once, no tick needed
	wait(rounds, "round on becoming active")
	if n := rs.names(); !slices.Equal(n, []string{"baton-10-0-0-4", "baton-10-0-0-5"}) {
		t.Fatalf("peerings %v after the active's first round", n)
	}

	inv.add("10.0.0.6") // the scale set grows
	armed(t, clk)
	clk.Advance(time.Minute)
	wait(rounds, "interval round while active")
	if n := rs.names(); !slices.Contains(n, "baton-10-0-0-6") {
		t.Fatalf("peerings %v: the new instance was not added", n)
	}

	s.RoleChanged(role.Snapshot{State: role.Standby}) // failover: the peer writes now
	inv.add("10.0.0.7")
	armed(t, clk)
	clk.Advance(time.Minute)
	wait(skips, "skipped round after stepping down")
	if n := rs.names(); slices.Contains(n, "baton-10-0-0-7") {
		t.Fatalf("a node that stepped down still wrote: %v", n)
	}
	st := s.Status().(peeringsStatus)
	if st.Writer != writerActive || st.Leading || st.Rounds != 2 || st.Skipped != 2 || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
}

// A scale-set instance with neither a peer nor a witness cannot know it
// is the only writer: baton run leaves the peerings alone and says so in
// status; with a witness the -peerings lease elects the writer.
func TestPeeringsWriterElection(t *testing.T) {
	cfg := peeringsCfg(t, "", "active-active")
	called := false
	d := &Daemon{cfg: cfg, log: slog.New(slog.DiscardHandler), clk: clock.NewFake(t0),
		peeringsBackends: func(context.Context, peerings.Config) (peerings.Inventory, []peerings.RouteServer, error) {
			called = true
			return &memInventory{}, nil, nil
		}}
	sub, err := d.buildPeerings()
	if err != nil {
		t.Fatal(err)
	}
	st := sub.Status().(peeringsStatus)
	if st.Writer != writerNone || st.Note == "" || called {
		t.Errorf("peerless without a witness: status %+v, backends built %v; want writer none, a note, no cloud clients", st, called)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sub.Run(ctx); err != nil {
		t.Errorf("Run: %v", err)
	}

	// A scale set elects the writer with bgp.peerings.witness (a role
	// witness would let one instance announce: refused by validation).
	doc := fmt.Sprintf(peeringsConfig, "", "active-active") + "    witness: {type: etcd, etcd: {endpoints: [\"https://10.0.9.1:2379\"]}}\n"
	withWitness, err := config.Parse([]byte(doc), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := peeringWriter(withWitness); w != writerWitness {
		t.Errorf("with bgp.peerings.witness: writer %q, want %q", w, writerWitness)
	}
	if wc := withWitness.BGP.Peerings.WriterWitness(withWitness.Witness); wc == nil || wc.Etcd.Key != "/baton/witness" {
		t.Errorf("bgp.peerings.witness %+v: want the etcd witness with its default key", wc)
	}
	pair := peeringsCfg(t, "peer: {name: b, paths: [{name: hb, address: \"127.0.0.1:9\"}]}\nwitness: {type: etcd, etcd: {endpoints: [\"https://10.0.9.1:2379\"]}}", "active-standby")
	if w := peeringWriter(pair); w != writerWitness {
		t.Errorf("a pair with a role witness: writer %q, want %q (its -peerings lease)", w, writerWitness)
	}
	if _, err := config.Parse([]byte(fmt.Sprintf(peeringsConfig, "witness: {type: etcd, etcd: {endpoints: [\"https://10.0.9.1:2379\"]}}", "active-active")), "test.yaml", nil); err == nil ||
		!strings.Contains(err.Error(), "bgp.peerings.witness") {
		t.Errorf("a role witness on a node with no peer: err %v, want a refusal pointing at bgp.peerings.witness", err)
	}
	// No bgp.peerings section: no subsystem.
	plain := peeringsCfg(t, "", "active-active")
	plain.BGP.Peerings = nil
	if sub, err := (&Daemon{cfg: plain}).buildPeerings(); sub != nil || err != nil {
		t.Errorf("without bgp.peerings: %v, %v", sub, err)
	}
}
