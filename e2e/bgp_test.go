package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/labtest"
	"github.com/batonha/baton/internal/lab/rslab"
	"github.com/batonha/baton/internal/peerings"
)

// newRSLab builds a route-server lab with n baton nodes (not started).
func newRSLab(t *testing.T, kind rslab.Kind, n int, neighbors []int) *rslab.Lab {
	t.Helper()
	labtest.RequireRoot(t)
	labtest.Require(t, rslab.Available(kind))
	bin := batonBin(t)
	l, err := rslab.New(lab.RandomPrefix(), rslab.Options{Kind: kind, Nodes: n, Dir: t.TempDir(), Neighbors: neighbors,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		if l != nil {
			_ = l.Close()
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, nd := range l.Nodes {
				b, _ := os.ReadFile(nd.LogPath)
				lines := strings.Split(string(b), "\n")
				if len(lines) > 30 {
					lines = lines[len(lines)-30:]
				}
				t.Logf("--- %s log (tail) ---\n%s", nd.Name, strings.Join(lines, "\n"))
			}
		}
		if err := l.Close(); err != nil {
			t.Errorf("tearing down lab: %v", err)
		}
	})
	l.Bin = bin
	return l
}

func startNode(t *testing.T, l *rslab.Lab, i int) {
	t.Helper()
	if err := l.StartNode(i, l.Bin); err != nil {
		t.Fatal(err)
	}
}

func signalNode(t *testing.T, l *rslab.Lab, i int, sig syscall.Signal) {
	t.Helper()
	p := l.Nodes[i].Proc
	if err := p.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not exit after %v", l.Nodes[i].Name, sig)
	}
}

// hops waits until the route server's next hops are exactly the nodes in
// want.
func hops(t *testing.T, l *rslab.Lab, what string, limit time.Duration, want ...int) {
	t.Helper()
	var exp []string
	for _, i := range want {
		exp = append(exp, rslab.NodeAddr(i))
	}
	slices.Sort(exp)
	at, last, err := l.WaitHops(limit, 20*time.Millisecond, func(h []string) bool { return slices.Equal(h, exp) })
	if err != nil {
		t.Fatal(err)
	}
	if at.IsZero() {
		t.Fatalf("%s: next hops %v after %v, want %v", what, last, limit, exp)
	}
}

// TestBGPRouteServerECMP runs two then three baton nodes against FRR and
// BIRD as route servers and checks the route server's kernel table: ECMP
// over every healthy node, and each failure (check, SIGTERM, SIGKILL,
// silent link cut) removes that next hop until it recovers.
func TestBGPRouteServerECMP(t *testing.T) {
	for _, kind := range []rslab.Kind{rslab.FRR, rslab.BIRD} {
		t.Run(string(kind), func(t *testing.T) {
			l := newRSLab(t, kind, 3, nil)
			startNode(t, l, 0)
			startNode(t, l, 1)
			hops(t, l, "two nodes announce", 20*time.Second, 0, 1)
			startNode(t, l, 2)
			hops(t, l, "three nodes announce", 20*time.Second, 0, 1, 2)

			// A failed local check withdraws at once.
			if err := os.Remove(l.Nodes[0].Healthy); err != nil {
				t.Fatal(err)
			}
			hops(t, l, "check failed on nva-1", 2*time.Second, 1, 2)
			if err := os.WriteFile(l.Nodes[0].Healthy, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			hops(t, l, "check passes again", 5*time.Second, 0, 1, 2)

			// SIGTERM: withdraws before exit.
			signalNode(t, l, 1, syscall.SIGTERM)
			hops(t, l, "nva-2 stopped", 2*time.Second, 0, 2)
			startNode(t, l, 1)
			hops(t, l, "nva-2 back", 15*time.Second, 0, 1, 2)

			// SIGKILL: the kernel closes the TCP session.
			signalNode(t, l, 2, syscall.SIGKILL)
			hops(t, l, "nva-3 killed", 2*time.Second, 0, 1)
			startNode(t, l, 2)
			hops(t, l, "nva-3 back", 15*time.Second, 0, 1, 2)

			// Silent link cut: only the hold time (3s) tells.
			if err := l.Nodes[0].Host.SetLink("eth0", false); err != nil {
				t.Fatal(err)
			}
			hops(t, l, "nva-1 cut off", 3*time.Second+2*time.Second, 1, 2)
			if err := l.Nodes[0].Host.SetLink("eth0", true); err != nil {
				t.Fatal(err)
			}
			hops(t, l, "nva-1 link restored", 15*time.Second, 0, 1, 2)
		})
	}
}

// frrPeerings is a peerings.RouteServer over the lab's FRR route server:
// a peering is a configured neighbor.
type frrPeerings struct{ l *rslab.Lab }

func (f frrPeerings) ID() string                    { return "frr:rs" }
func (f frrPeerings) MaxPeers() int                 { return 8 }
func (f frrPeerings) Managed(peerings.Peering) bool { return true }
func (f frrPeerings) name(ip string) string         { return peerings.PeeringName("baton-", ip) }
func (f frrPeerings) Create(ctx context.Context, p peerings.Peering) error {
	return f.l.AddNeighbor(ctx, p.IP)
}
func (f frrPeerings) Delete(ctx context.Context, p peerings.Peering) error {
	return f.l.RemoveNeighbor(ctx, p.IP)
}

func (f frrPeerings) List(ctx context.Context) ([]peerings.Peering, error) {
	ns, err := f.l.Neighbors(ctx)
	if err != nil {
		return nil, err
	}
	var out []peerings.Peering
	for ip, up := range ns {
		out = append(out, peerings.Peering{Name: f.name(ip), IP: ip, ASN: rslab.NodeASN, State: peerings.StateSucceeded, SessionUp: up})
	}
	return out, nil
}

func (f frrPeerings) Get(ctx context.Context, name string) (peerings.Peering, error) {
	ps, err := f.List(ctx)
	if err != nil {
		return peerings.Peering{}, err
	}
	for _, p := range ps {
		if p.Name == name {
			return p, nil
		}
	}
	return peerings.Peering{}, fmt.Errorf("%s: %w", name, peerings.ErrNotFound)
}

// scaleSet is a mutable inventory.
type scaleSet struct {
	mu  sync.Mutex
	ips []int
}

func (s *scaleSet) set(idx ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ips = idx
}

func (s *scaleSet) Instances(context.Context) ([]peerings.Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []peerings.Instance
	for _, i := range s.ips {
		out = append(out, peerings.Instance{Name: fmt.Sprintf("nva-%d", i+1), IP: rslab.NodeAddr(i)})
	}
	return out, nil
}

// TestBGPPeeringReconcilerScales: the route server starts with no
// peerings; the reconciler adds them for the scale set, a scale-out adds
// the third node's, and a scale-in (the leaving node stops, withdrawing)
// removes its peering, each converging in one round.
func TestBGPPeeringReconcilerScales(t *testing.T) {
	l := newRSLab(t, rslab.FRR, 3, []int{})
	inv := &scaleSet{}
	inv.set(0, 1)
	rec := peerings.New(inv, []peerings.RouteServer{frrPeerings{l}}, peerings.Options{
		NamePrefix: "baton-", PeerASN: rslab.NodeASN, OperationTimeout: 30 * time.Second, DrainTimeout: 10 * time.Second,
	})
	ctx := context.Background()
	round := func(what string) peerings.Plan {
		t.Helper()
		plans, err := rec.Round(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return plans[0]
	}
	startNode(t, l, 0)
	startNode(t, l, 1)
	if p := round("initial"); len(p.Create) != 2 {
		t.Fatalf("initial plan: %+v", p)
	}
	hops(t, l, "both peered and announcing", 20*time.Second, 0, 1)
	if p := round("idempotent"); len(p.Create)+len(p.Delete) != 0 {
		t.Fatalf("second round changed something: %+v", p)
	}

	// Scale out.
	startNode(t, l, 2)
	inv.set(0, 1, 2)
	if p := round("scale out"); len(p.Create) != 1 || p.Create[0].IP != rslab.NodeAddr(2) {
		t.Fatalf("scale-out plan: %+v", p)
	}
	hops(t, l, "third node peered", 20*time.Second, 0, 1, 2)

	// Scale in: nva-2 leaves. While its session is up its peering drains;
	// it withdraws on shutdown, then the peering goes.
	inv.set(0, 2)
	if p := round("scale in, draining"); len(p.Draining) != 1 || len(p.Delete) != 0 {
		t.Fatalf("scale-in plan before the node stopped: %+v", p)
	}
	signalNode(t, l, 1, syscall.SIGTERM)
	hops(t, l, "leaving node withdrew", 2*time.Second, 0, 2)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ns, err := l.Neighbors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !ns[rslab.NodeAddr(1)] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("route server still has the leaving node's session up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p := round("scale in"); len(p.Delete) != 1 || p.Delete[0].IP != rslab.NodeAddr(1) {
		t.Fatalf("scale-in plan: %+v", p)
	}
	ns, err := l.Neighbors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ns[rslab.NodeAddr(1)]; ok || len(ns) != 2 {
		t.Fatalf("route server neighbors after scale-in: %v", ns)
	}
}
