package localroutes

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/batonha/baton/internal/action"
	"github.com/batonha/baton/internal/clock"
	"github.com/batonha/baton/internal/lab"
	"github.com/batonha/baton/internal/lab/labtest"
	"github.com/batonha/baton/internal/peerlink"
	"github.com/batonha/baton/internal/pki"
	"github.com/batonha/baton/internal/role"
)

func addRoute(t *testing.T, h *lab.Host, dst, via string) {
	t.Helper()
	_, d, _ := net.ParseCIDR(dst)
	l, err := h.Handle().LinkByName(lab.IfBack)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Handle().RouteAdd(&netlink.Route{Dst: d, Gw: net.ParseIP(via), LinkIndex: l.Attrs().Index, Protocol: 4}); err != nil {
		t.Fatalf("adding %s on %s: %v", dst, h.Name(), err)
	}
}

func held(s *Sync) []Route { return s.Status().(Status).Held }

// waitFor polls cond until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling another goroutine's progress, with a deadline
	}
}

// The standby copies the active's kernel routes over the peer link (the
// first copy at once, a new route from the netlink event, not the
// interval), installs them on takeover — a client's connection to the
// copied prefix then flows through the new active — and removes them on
// leaving ACTIVE.
func TestLabCopiedRoutesCarryTrafficThroughTheNewActive(t *testing.T) {
	labtest.RequireRoot(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := lab.NewPair(lab.RandomPrefix(), log)
	if err != nil {
		labtest.Require(t, "building the lab: "+err.Error())
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A remote prefix behind the server, reached through the active's own
	// kernel route; a route outside the match is not copied.
	lo, err := p.Server.Handle().LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("10.200.0.1/32")
	if err := p.Server.Handle().AddrAdd(lo, addr); err != nil {
		t.Fatal(err)
	}
	addRoute(t, p.A, "10.200.0.0/24", lab.ServerBack)
	addRoute(t, p.A, "10.201.0.0/24", lab.ServerBack)
	if err := p.Client.AddRoute("10.200.0.0/16", lab.AFront); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := pki.Generate(dir, []string{"nva-a", "nva-b"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	mk := func(node, peer, listen, address string) *peerlink.Link {
		l, err := peerlink.New(peerlink.Config{Node: node, Peer: peer, Listen: listen, Address: address, Logger: log,
			CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, node+".crt"), KeyFile: filepath.Join(dir, node+".key")})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	cfg := Config{Match: Match{Prefixes: []string{"10.200.0.0/16"}, Table: 254}, Interval: time.Hour}
	newSync := func(h *lab.Host, dial func(ctx context.Context) (Stream, error)) *Sync {
		s, err := New(cfg, Options{Kernel: NewNetlink(h.Handle(), h.NsHandle()), Dial: dial, Clock: clock.Real{}, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	never := func(ctx context.Context) (Stream, error) { <-ctx.Done(); return nil, ctx.Err() }

	la := mk("nva-a", "nva-b", lab.AHB+":0", "")
	if err := p.A.Do(la.Listen); err != nil {
		t.Fatal(err)
	}
	go la.Run(ctx)
	syncA := newSync(p.A, never)
	syncA.RoleChanged(role.Snapshot{State: role.Active})
	la.Handle(Service, func(ctx context.Context, st *peerlink.Stream) { syncA.Serve(ctx, st) })

	lb := mk("nva-b", "nva-a", "", la.Addr().String())
	syncB := newSync(p.B, func(ctx context.Context) (Stream, error) {
		var st *peerlink.Stream
		err := p.B.Do(func() (err error) { st, err = lb.Dial(ctx, Service); return err })
		if err != nil {
			return nil, err
		}
		return st, nil
	})
	syncB.RoleChanged(role.Snapshot{State: role.Standby})
	go syncB.Run(ctx)

	waitFor(t, "the standby's first copy", func() bool { return len(held(syncB)) == 1 })
	addRoute(t, p.A, "10.200.1.0/24", lab.ServerBack) // a change: sent on the netlink event
	waitFor(t, "the copy of a new route", func() bool { return len(held(syncB)) == 2 })
	for _, r := range held(syncB) {
		if r.Dev != lab.IfBack || r.Gw != lab.ServerBack || r.Protocol != 4 {
			t.Fatalf("copied route %+v", r)
		}
	}

	ln, err := listenIn(p.Server, "10.200.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.Copy(c, c)
			c.Close()
		}
	}()
	reach := func() bool {
		var ok bool
		_ = p.Client.Do(func() error {
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 700*time.Millisecond)
			if err != nil {
				return nil
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte("ping")); err != nil {
				return nil
			}
			buf := make([]byte, 4)
			_, err = io.ReadFull(c, buf)
			ok = err == nil && string(buf) == "ping"
			return nil
		})
		return ok
	}
	if !reach() {
		t.Fatal("the client does not reach 10.200.0.1 through the first active")
	}

	// nva-a fails; traffic is steered to nva-b (the VIP's and routes' job).
	if err := p.Client.ReplaceRoute("10.200.0.0/16", lab.BFront); err != nil {
		t.Fatal(err)
	}
	if err := p.Server.ReplaceRoute("default", lab.BBack); err != nil {
		t.Fatal(err)
	}
	if reach() {
		t.Fatal("the client reaches the prefix through nva-b before it installed the copy")
	}
	syncB.RoleChanged(role.Snapshot{State: role.Active})
	if err := syncB.Activate(ctx, action.Takeover{Term: 2}); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if !reach() {
		t.Fatal("the client does not reach the copied prefix through the new active")
	}
	own, _ := NewNetlink(p.B.Handle(), p.B.NsHandle()).List(254)
	if slices.ContainsFunc(own, func(r Route) bool { return r.Dst == "10.201.0.0/24" }) {
		t.Fatal("a route outside local_routes.match was copied")
	}

	// Someone deletes a copied route: Verify puts it back.
	_, d, _ := net.ParseCIDR("10.200.0.0/24")
	if err := p.B.Handle().RouteDel(&netlink.Route{Dst: d}); err != nil {
		t.Fatal(err)
	}
	if err := syncB.Verify(ctx, true); err != nil || !reach() {
		t.Fatalf("Verify did not repair the copied route: %v", err)
	}

	// Leaving ACTIVE removes the copies.
	if err := syncB.Deactivate(ctx, action.Takeover{Term: 3}); err != nil {
		t.Fatal(err)
	}
	if reach() {
		t.Fatal("the copied route survived leaving ACTIVE")
	}
}

func listenIn(h *lab.Host, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err })
	return ln, err
}
